"""Result types and method names of the scoring core.

Accepts nothing; defines :class:`Extraction`, :class:`Score`, :class:`Outcome`, the method
names (:data:`METHODS`, in priority order) and the styles (:data:`STYLES`, checked by
:func:`check_style`; the prompt builder uses the same). Imports only the standard library.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LETTERS_TUPLE = tuple(_LETTERS)

METHOD_ANSWER_TAG = "answer_tag"
METHOD_BOXED = "boxed"
METHOD_ANSWER_PHRASE = "answer_phrase"
METHOD_FINAL_LINE = "final_line"
METHOD_OPTION_TEXT = "option_text"
METHOD_FUZZY_OPTION_TEXT = "fuzzy_option_text"
METHOD_TRUNCATED_THINK = "truncated_think"
METHOD_NONE = "none"

#: The methods that produce a letter, highest priority first.
MATCH_METHODS = (
    METHOD_ANSWER_TAG, METHOD_BOXED, METHOD_ANSWER_PHRASE, METHOD_FINAL_LINE,
    METHOD_OPTION_TEXT, METHOD_FUZZY_OPTION_TEXT,
)
#: The methods of an unparsed output (letter ``None``).
UNPARSED_METHODS = (METHOD_TRUNCATED_THINK, METHOD_NONE)
#: Every value :attr:`Extraction.method` can take: the matching methods in priority
#: order, then the unparsed ones. Adapters can pre-seed method counters with it.
METHODS = MATCH_METHODS + UNPARSED_METHODS

#: Scoring styles: ``cot`` and ``direct`` read outputs the same (strict) way; ``paper``
#: first matches the content of ``\\boxed{...}`` the way the BioMed-R1 authors' pipeline
#: does (the letter, ``X. text`` or the option text itself), then reads like ``cot``.
STYLES = ("cot", "direct", "paper")


def check_style(style: str, kind: str = "scoring") -> str:
    """``style`` when it is one of :data:`STYLES`, else ``ValueError`` naming the ``kind``
    of style (``scoring`` here, ``prompt`` for :func:`lm_eval_medsplit.prompts.check_style`)."""
    if style not in STYLES:
        raise ValueError(f"unknown {kind} style {style!r}; choose one of {', '.join(STYLES)}")
    return style

#: Fuzzy matching: a sentence must score at least this (0-100) against an option text,
#: and beat every other option by more than the tie margin.
FUZZY_CUTOFF = 90.0
FUZZY_TIE_MARGIN = 3.0
FUZZY_MIN_OPTION_CHARS = 4


# --------------------------------------------------------------------------- results


class Outcome(str, enum.Enum):
    CORRECT = "correct"
    INCORRECT = "incorrect"
    UNPARSED = "unparsed"


@dataclass(frozen=True, slots=True)
class Extraction:
    """What :func:`extract_answer` read: ``letter`` (one of the record's option letters,
    or ``None``) and ``method`` (one of :data:`METHODS`). Unpacks as
    ``letter, method = extract_answer(...)``."""

    letter: str | None
    method: str

    def __iter__(self):
        yield self.letter
        yield self.method

    @property
    def parsed(self) -> bool:
        return self.letter is not None


@dataclass(frozen=True, slots=True)
class Score:
    """The outcome of one output against the gold letter."""

    outcome: Outcome
    pred: str | None
    method: str

    @property
    def correct(self) -> bool:
        return self.outcome is Outcome.CORRECT


_NONE = Extraction(None, METHOD_NONE)
_TRUNCATED = Extraction(None, METHOD_TRUNCATED_THINK)
