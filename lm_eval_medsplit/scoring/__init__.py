"""The one answer extractor and scorer.

lm-eval tasks, Inspect scorers, TRL reward functions, the ``medsplit score`` command and
the adversarial-trace checker all read model outputs through :func:`extract_answer` and
:func:`score`. Both are pure functions of ``(text, options)``; they never raise on any
text and only ever return a letter of the record's own options (or ``None``). The grading
protocol, each rule with a real example, is written down in ``docs/scoring.md``.

Stages (one module each)
------------------------
1. :mod:`.text` - normalise and cut. NFKC, markdown emphasis and LaTeX wrappers dropped.
   Only the text after the last ``</think>`` counts; an unclosed ``<think>`` is unparsed
   (method ``truncated_think``). A base model's run-on into an invented next question
   (a ``Question:`` / ``Q:`` line after some text) is cut off, and so is a list of answer
   lines echoing the few-shot answers after the model's own (a text that is nothing but
   such a list states no single answer).
2. :mod:`.tags` - explicit tags: ``<answer>X</answer>`` (``answer_tag``), ``\\boxed{X}``
   (``boxed``); with ``style="paper"`` a box holding ``X``, ``X. text`` or an option's text
   is read first, as the BioMed-R1 authors' pipeline does.
3. :mod:`.phrases` - answer phrases (``answer_phrase``): "the answer is (X)", "Answer: X",
   "I would choose X", "答案是X", "the answer is <option text>"; only without these, "X is
   correct". The last committed phrase wins, except that a summary right after the answer
   ("Final Answer: ...", "Now, combining all the answers: ...") cannot change it. A stated
   letter outside the options, or "the answer is not in the options" as the last word, is
   unparsed.
4. :mod:`.final_line` - a conclusion without an answer phrase (``final_line``): a last line
   starting with a label ("C. Purkinje fibers"), an announced option ("the most likely
   diagnosis is:\n\nB. Aortic dissection" and its justification), or a concluding
   sentence naming one letter ("Therefore, the most likely explanation is (D).").
5. :mod:`.option_text` - an option's own text in a concluding sentence (``option_text``),
   then a close rapidfuzz match (``fuzzy_option_text``, off with ``fuzzy=False``); never in
   a negated clause or a looping text.

Shared rules (:mod:`.letters`): a letter outside the record's options is never a
prediction; the pronoun "I" is never option I; negated letters ("not C", "C is
incorrect", "rules out C") do not count; a committed answer naming several letters ("the
answer is B and D") or two options equally is ambiguous and gives unparsed; lowercase
sub-part labels ("(a) ... (b) ...") are not option letters. ``truncated_think`` and
``none`` are the two unparsed methods (:data:`UNPARSED_METHODS`).

Only :mod:`re`, :mod:`unicodedata`, :mod:`enum` and :mod:`dataclasses` are imported;
:mod:`rapidfuzz` on the first fuzzy match attempt. Own regexes rather than a parser
library because they read the 21,490 real answers at ~40,000 outputs/s on one core
(``benchmarks/bench_extraction.py``).
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
    check_style,
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
    check_style(style)
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
    check_style(style)
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
