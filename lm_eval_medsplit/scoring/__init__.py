"""The one answer extractor and scorer.

lm-eval tasks, Inspect scorers, TRL reward functions, the ``medsplit score`` command and
the adversarial-trace checker all read model outputs through :func:`extract_answer` and
:func:`score`. Both are pure functions of ``(text, options)``; they never raise on any
text and only ever return a letter of the record's own options (or ``None``).

Reading order
-------------
1. ``<think>`` blocks: only the text after the last ``</think>`` counts (a stray
   ``</think>`` without an opening tag, as left by chat templates that put ``<think>``
   in the prompt, works the same way). An opening ``<think>`` with no closing tag after
   it means the model never finished thinking: unparsed, method ``truncated_think``.
2. Normalisation: NFKC (full-width ``Ｂ`` and ``（Ｂ）`` become ``B`` and ``(B)``), markdown
   emphasis (``*``, backticks) dropped, LaTeX ``\\text{..}``-style wrappers and math
   delimiters unwrapped.
3. The methods, in priority order (:data:`METHODS`); within one method the *last*
   committed answer in the text wins ("the answer is B ... on reflection the answer is
   D" gives D):

   ``answer_tag``         ``<answer>X</answer>``, ``<answer> (X) </answer>``, ``<answer>X. text``
   ``boxed``              ``\\boxed{X}``, ``\\boxed{\\text{X}}``, ``\\boxed{(X)}``
   ``answer_phrase``      "the answer is (X)", "Answer: X", "final answer: X", "ANSWER: X",
                          "the correct answer is: X", "the best option is X",
                          "I would choose X", "答案是X"; only when none of these is
                          present, "option X is correct" / "X is the correct answer"
                          (such sentences also occur in explanations after the answer)
   ``final_line``         a last line that starts with a letter: "C. Purkinje fibers",
                          "(C) ...", "C) ...", or just "C" (not the last item of a
                          lettered list, not a negated line)
   ``option_text``        an option's exact (normalised) text in the final one or two
                          sentences; a text that ends in a list item ("J. Hygiene -
                          ...") or in an unanswered "the most likely cause is:" has no
                          conclusion to read
   ``fuzzy_option_text``  a close (rapidfuzz) match of one option's text in the same
                          sentences, whole words only, never between look-alike words
                          of different meaning ("increase"/"decrease", "hyper"/"hypo",
                          different numbers); off with ``fuzzy=False``

   ``truncated_think`` and ``none`` are the two unparsed methods.

Rules shared by all methods: a letter that is not one of the record's options is never a
prediction; the pronoun "I" ("I think...", "I would choose C") is never option I and the
article "A" is option A only inside an answer pattern; negated letters ("not C", "the
answer is not C", "C is incorrect", "rule out C") do not count; a committed answer naming
several letters ("the answer is B and D") is ambiguous and gives unparsed, as does an
option-text match that fits two options equally well.

Only :mod:`re`, :mod:`unicodedata` and :mod:`enum`/:mod:`dataclasses` are imported here;
:mod:`rapidfuzz` is imported on the first fuzzy match attempt.
"""

from __future__ import annotations

from typing import Any

from .final_line import _from_announcement, _from_final_line, _from_final_sentence
from .option_text import _from_fuzzy, _from_option_text
from .options import _as_options
from .phrases import _from_phrases
from .results import (
    _NONE,
    _TRUNCATED,
    MATCH_METHODS,
    METHOD_ANSWER_PHRASE,
    METHOD_ANSWER_TAG,
    METHOD_BOXED,
    METHOD_FINAL_LINE,
    METHOD_FUZZY_OPTION_TEXT,
    METHOD_NONE,
    METHOD_OPTION_TEXT,
    METHOD_TRUNCATED_THINK,
    METHODS,
    STYLES,
    UNPARSED_METHODS,
    Extraction,
    Outcome,
    Score,
)
from .tags import _ANSWER_TAG, _BOXED, _from_tags, _paper_box
from .text import (
    _answer_list_cut,
    _coerce_text,
    _lower,
    _normalise,
    _run_on_cut,
    _summary_split,
    _think_cut,
    opens_think,
)

__all__ = [
    "Outcome", "Extraction", "Score", "extract_answer", "score",
    "METHOD_ANSWER_TAG", "METHOD_BOXED", "METHOD_ANSWER_PHRASE", "METHOD_FINAL_LINE",
    "METHOD_OPTION_TEXT", "METHOD_FUZZY_OPTION_TEXT", "METHOD_TRUNCATED_THINK",
    "METHOD_NONE", "METHODS", "MATCH_METHODS", "UNPARSED_METHODS", "STYLES",
    "opens_think",
]


# --------------------------------------------------------------------------- API


def _check_style(style: str) -> str:
    if style not in STYLES:
        raise ValueError(f"unknown scoring style {style!r}; choose one of {', '.join(STYLES)}")
    return style


def extract_answer(text: str | None, options: Any, *, fuzzy: bool = True,
                   style: str = "cot") -> Extraction:
    """Read the final answer letter of ``text`` for a record with ``options``.

    ``options`` is a dict letter -> text (ordered), a list / tuple of option texts
    (lettered A, B, ...), a string or iterable of letters only (``"ABCD"``; then only
    the letter methods apply), or an :class:`~lm_eval_medsplit.schema.MCQRecord`.
    ``text`` may be anything: ``None``, bytes and non-strings are read as text and never
    raise (only an ``options`` value of none of the kinds above raises ``TypeError``).
    Returns an :class:`Extraction` whose letter is one of the option letters or
    ``None``; see the module docstring for the methods and their order. ``style`` is one
    of :data:`STYLES` (``ValueError`` otherwise): ``"paper"`` first accepts a
    ``\\boxed{...}`` holding the letter, ``X. text`` or an option's text as the authors'
    pipeline does (method ``boxed``), then reads like ``"cot"``.
    """
    _check_style(style)
    opts = _as_options(options)
    text = _coerce_text(text)
    if not text or not opts.letters:
        return _NONE
    text = _normalise(text)
    low = _lower(text)
    if "think" in low and "<" in low:
        cut = _think_cut(low)
        if cut is None:
            return _TRUNCATED
        if cut:
            text, low = text[cut:], low[cut:]
    if "\nQ" in text:
        cut = _run_on_cut(text)
        text, low = text[:cut], low[:cut]
    if low.count("answer is") >= 3:
        cut = _answer_list_cut(low)
        text, low = text[:cut], low[:cut]
    if not text.strip():
        return _NONE

    if style == "paper" and "\\boxed" in text:
        letter = _paper_box(text, opts)
        if letter is not None:
            return Extraction(letter, METHOD_BOXED)
    if "<answer" in low:
        letter, ambiguous = _from_tags(_ANSWER_TAG, "<answer", text, low, opts)
        if letter is not None:
            return Extraction(letter, METHOD_ANSWER_TAG)
        if ambiguous:
            return _NONE
    if "\\boxed" in text:
        letter, ambiguous = _from_tags(_BOXED, "\\boxed", text, low, opts)
        if letter is not None:
            return Extraction(letter, METHOD_BOXED)
        if ambiguous:
            return _NONE
    if "\n" in text and ("final" in low or "summar" in low or "all" in low or "answers" in low):
        # a summary restating the answer cannot change it: the paragraph just before the
        # summary commits to the answer; what the summary lists is read only without one
        split = _summary_split(low)
        if split is not None:
            a, b = split
            letter, ambiguous = _from_phrases(text[a:b], opts, low[a:b])
            if letter is not None:
                return Extraction(letter, METHOD_ANSWER_PHRASE)
            if ambiguous:
                return _NONE
    letter, ambiguous = _from_phrases(text, opts, low)
    if letter is not None:
        return Extraction(letter, METHOD_ANSWER_PHRASE)
    if ambiguous:
        return _NONE
    for stage in (_from_final_line, _from_announcement, _from_final_sentence):
        letter, ambiguous = stage(text, opts)
        if letter is not None:
            return Extraction(letter, METHOD_FINAL_LINE)
        if ambiguous:
            return _NONE
    letter, ambiguous = _from_option_text(text, opts)
    if letter is not None:
        return Extraction(letter, METHOD_OPTION_TEXT)
    if ambiguous or not fuzzy:
        return _NONE
    letter, _ = _from_fuzzy(text, opts)
    if letter is not None:
        return Extraction(letter, METHOD_FUZZY_OPTION_TEXT)
    return _NONE


def score(text: str | None, options: Any, gold: str | None, *, fuzzy: bool = True,
          style: str = "cot") -> Score:
    """Score ``text`` against the gold letter ``gold``.

    Returns a :class:`Score`: ``CORRECT`` when the extracted letter equals ``gold``,
    ``INCORRECT`` when another letter was read, ``UNPARSED`` when none was. ``gold`` must
    be one of the option letters: an unlabelled record (``gold=None``) or a gold letter
    outside the options raises :class:`ValueError`, since neither can be scored (use
    :func:`extract_answer` to read unlabelled outputs).
    """
    _check_style(style)
    opts = _as_options(options)
    if gold is None:
        raise ValueError("gold is None: an unlabelled record cannot be scored; "
                         "use extract_answer() to read its output")
    g = str(gold).strip().upper()
    if g not in opts.letter_set:
        raise ValueError(f"gold {gold!r} is not one of the option letters "
                         f"{', '.join(opts.letters) or '(none)'}")
    letter, method = extract_answer(text, opts, fuzzy=fuzzy, style=style)
    if letter is None:
        return Score(Outcome.UNPARSED, None, method)
    return Score(Outcome.CORRECT if letter == g else Outcome.INCORRECT, letter, method)
