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

import enum
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Outcome", "Extraction", "Score", "extract_answer", "score",
    "METHOD_ANSWER_TAG", "METHOD_BOXED", "METHOD_ANSWER_PHRASE", "METHOD_FINAL_LINE",
    "METHOD_OPTION_TEXT", "METHOD_FUZZY_OPTION_TEXT", "METHOD_TRUNCATED_THINK",
    "METHOD_NONE", "METHODS", "MATCH_METHODS", "UNPARSED_METHODS", "STYLES",
    "opens_think",
]

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


# --------------------------------------------------------------------------- options


class _Options:
    """Letters (and, when known, texts) of one record's options."""

    __slots__ = ("letters", "letter_set", "texts", "_norm")

    def __init__(self, letters: tuple[str, ...], texts: tuple[str, ...] | None):
        self.letters = letters
        self.letter_set = frozenset(letters)
        self.texts = texts
        self._norm: list[str] | None = None

    def text(self, i: int) -> str:
        v = self.texts[i] if self.texts else None
        return "" if v is None else str(v)

    def normalised_texts(self) -> list[str]:
        if self._norm is None:
            self._norm = [_norm_words(self.text(i)) for i in range(len(self.texts or ()))]
        return self._norm


def _as_options(options: Any) -> _Options:
    if isinstance(options, _Options):
        return options
    if not isinstance(options, (dict, list, tuple, str)) and hasattr(options, "options"):
        options = options.options  # an MCQRecord (or anything shaped like one)
    if isinstance(options, str):
        letters = tuple(dict.fromkeys(c for c in options.upper() if c in _LETTERS))
        return _Options(letters, None)
    if isinstance(options, Mapping):
        keys = tuple(options)
        values = tuple(options.values())
        if all(type(k) is str and len(k) == 1 and k in _LETTERS for k in keys) and \
                None not in values:
            return _Options(keys, values)
        letters, texts = [], []
        for k, v in options.items():
            k = str(k).strip().upper()
            if v is None:
                continue  # hub rows pad absent options with nulls
            if len(k) == 1 and k in _LETTERS and k not in letters:
                letters.append(k)
                texts.append(v)
        return _Options(tuple(letters), tuple(texts))
    if isinstance(options, (list, tuple)):
        items = tuple(options[: len(_LETTERS)])
        letters = _LETTERS_TUPLE[: len(items)]
        if items == letters and items:
            return _Options(letters, None)  # letters only: ["A", "B", "C"]
        return _Options(letters, items)
    if isinstance(options, Iterable):
        letters = tuple(dict.fromkeys(str(c).strip().upper() for c in options))
        return _Options(tuple(c for c in letters if len(c) == 1 and c in _LETTERS), None)
    raise TypeError("options must be a dict letter -> text, a list of option texts, or a "
                    f"string / iterable of letters; got {type(options).__name__}")


# --------------------------------------------------------------------------- text prep

_THINK_CLOSE = re.compile(r"</\s{0,3}think(?:ing)?\s{0,3}>")
_THINK_OPEN = re.compile(r"<\s{0,3}think(?:ing)?\s{0,3}>")

_LATEX_WRAP = re.compile(
    r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|mbox|bf|underline)"
    r"\s{0,3}\{([^{}]{0,300})\}")
_LATEX_DELIMS = re.compile(r"\\[()\[\]]|\$")


def _coerce_text(text: Any) -> str:
    if text is None:
        return ""
    if isinstance(text, str):
        return str(text)
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text).decode("utf-8", "replace")
    try:
        return str(text)
    except Exception:  # noqa: BLE001 - a hostile __str__ must not break scoring
        return ""


def opens_think(prompt: str) -> bool:
    """Whether ``prompt`` (a rendered prompt or prefill) ends inside a ``<think>`` block, so
    the model's output continues it: the last ``<think>`` has no ``</think>`` after it."""
    i = prompt.rfind("<think>")
    return i >= 0 and prompt.find("</think>", i) < 0


def _think_cut(low: str) -> int | None:
    """Index after the last ``</think>`` (0 if none); ``None`` when a ``<think>`` is
    left open after it. ``low`` is the lower-cased text."""
    closes = list(_THINK_CLOSE.finditer(low))
    start = closes[-1].end() if closes else 0
    if _THINK_OPEN.search(low, start):
        return None
    return start


def _normalise(text: str) -> str:
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
        if "\u200b" in text or "\ufeff" in text:
            text = text.replace("\u200b", "").replace("\ufeff", "")
    if "*" in text:
        text = text.replace("*", "")
    if "__" in text:  # __bold__ emphasis
        text = text.replace("__", "")
    if "`" in text:
        text = text.replace("`", "")
    if "\\" in text or "$" in text:
        for _ in range(3):  # nested wrappers: \textbf{\text{C}}
            new = _LATEX_WRAP.sub(r"\1", text)
            if new == text:
                break
            text = new
        text = _LATEX_DELIMS.sub(" ", text)
    return text


# --------------------------------------------------------------------------- letter rules

# after a letter token: not part of a word ("A-fib", "I'm", "Acetazolamide")
_TOKEN_END = re.compile(r"[A-Za-z0-9'’\-]")
# the pronoun "I" followed by a verb / contraction
_PRONOUN_I = re.compile(
    r"\s{1,3}(?:think|believe|would|will|am|guess|feel|suspect|can|could|should|must|need|"
    r"have|had|was|do|did|say|chose|choose|select|pick|go|agree|conclude|see|know|mean|"
    r"might|may|want|hope|also|still|now|just|first|initially|really|'d|'m|'ll|'ve)\b", re.I)
# a second letter right after the first: "B and D", "G, H, and J", "A or C", "B/C"
_MULTI = re.compile(
    r"[ \t]{0,3}[)\]]?[ \t]{0,3}(?:,[ \t]{0,3}(?:and|or|&)?|and|or|&|/|\+)[ \t]{0,3}"
    r"(?:(?i:maybe|possibly|perhaps)[ \t]{1,3})?"  # "B or maybe C": a hedge, not one answer
    r"(?:(?i:option|choice)[ \t]{1,3})?[(\[]?([A-Z])(?![A-Za-z0-9'’\-])")
# "... and B. Manganese" / "or (C)" later in the same line
_MULTI_LATER = re.compile(
    r"(?:\band|\bor|&)[ \t]{1,3}(?:(?i:option|choice)[ \t]{1,3})?"
    r"(?:\(([A-Z])\)|([A-Z])[.)](?:\s|$))")
# on the same line only: "(B)\n\nIncorrect options: ..." is a heading after the answer
_NEG_AFTER = re.compile(
    r"[ \t]{0,3}[)\]]?[.:,]?[ \t]{0,3}"
    r"(?:(?:is|are|was|seems|appears|would\s+be|can\s+be|should\s+be|must\s+be)"
    r"(?:\s{1,3}(?:also|clearly|definitely|therefore|thus|then))?"
    r"\s{1,3}(?:not\b|incorrect|wrong|false|unlikely|less\s+likely|ruled\s+out|excluded|eliminated)"
    r"|isn't|incorrect|wrong\b|false\b)", re.I)
_NEG_LAST_WORD = frozenset(
    "not never no nor except excluding exclude eliminate eliminating over against "
    "cannot can't won't wouldn't shouldn't don't didn't isn't".split())
_NEG_LAST_TWO = frozenset(("rule out", "ruled out", "ruling out", "rather than", "instead of",
                          "next best", "second best"))
# a qualifier right before the phrase ("the incorrect answer is C"); a word that ends a
# clause ("That is incorrect; the answer is C") is not one
_NEG_QUALIFIERS = frozenset(("incorrect", "wrong", "false", "next-best", "second-best", "distractor"))
_NEG_HINT = re.compile(r"no|n't|nev|rul|exc|elim|over|against|rather|instead|inc|wrong|false|best|distr")
_SKIP_WORDS = frozenset(("option", "choice", "answer", "the", "with"))


def _negated_before(low: str, pos: int) -> bool:
    """Whether the words just before ``pos`` negate what follows ("not C", "rule out C")."""
    window = low[max(0, pos - 32): pos]
    if not _NEG_HINT.search(window):
        return False
    words = window.replace("(", " ").replace("[", " ").split()
    while words and words[-1] in _SKIP_WORDS:
        words.pop()
    if not words:
        return False
    last = words[-1].strip(",;:")
    if last in _NEG_LAST_WORD or last.endswith("n't"):
        return True
    if words[-1] in _NEG_QUALIFIERS and "\n" not in window[window.rfind(words[-1]):]:
        return True  # "the incorrect answer is", not "B - False\nAnswer: B"
    return len(words) > 1 and f"{words[-2]} {words[-1]}" in _NEG_LAST_TWO


def _letter_ok(text: str, start: int, end: int, letter: str, opts: _Options, *,
               lowercase_ok: bool) -> str | None:
    """The option letter for the token ``text[start:end]`` or ``None``."""
    if end < len(text) and _TOKEN_END.match(text, end):
        return None
    up = letter.upper()
    if letter != up and not lowercase_ok:
        return None
    if up not in opts.letter_set:
        return None
    if up == "I" and letter == "I" and _PRONOUN_I.match(text, end):
        return None
    return up


def _skip_option_text(text: str, pos: int, letter: str, opts: _Options) -> int:
    """Position after the option's own text when it follows ``pos`` ("C. Vitamin A and D")."""
    if opts.texts:
        own = opts.text(opts.letters.index(letter)).strip()
        if own:
            i = pos
            n = len(text)
            while i < n and i < pos + 6 and text[i] in " \t.:)]-":
                i += 1
            if text[i: i + len(own)].lower() == own.lower():
                return i + len(own)
    return pos


def _is_multi(text: str, end: int, letter: str, opts: _Options) -> bool:
    """Whether the letter ending at ``end`` is followed by another option letter
    ("B and D", "G, H, and J", "A. Potassium and B. Manganese")."""
    m = _MULTI.match(text, end)
    if m and m.group(1) in opts.letter_set and m.group(1) != letter:
        if not (m.group(1) == "I" and _PRONOUN_I.match(text, m.end())) and \
                not _NEG_AFTER.match(text, m.end()):
            return True  # but "B, and C is incorrect" names one answer
    eol = text.find("\n", end, end + 300)
    line = text[end: eol if eol >= 0 else end + 300]
    if " and " not in line and " or " not in line and "&" not in line:
        return False
    line = line[_skip_option_text(line, 0, letter, opts):]
    for m in _MULTI_LATER.finditer(line):
        other = m.group(1) or m.group(2)
        if other in opts.letter_set and other != letter and not (
                other == "I" and _PRONOUN_I.match(line, m.end())) and \
                not _NEG_AFTER.match(line, m.end()):
            return True
    return False


# --------------------------------------------------------------------------- answer tags, boxed

_ANSWER_TAG = re.compile(
    r"<answer\s{0,3}>(.{0,400}?)(?:<\s{0,3}/\s{0,3}answer\s{0,3}>|\Z)", re.I | re.S)
_BOXED = re.compile(r"\\boxed\s{0,3}\{([^{}]{0,300})\}")
# the letter at the start of a short answer slot: "C", "(C)", "C. text", "Option C"
_SLOT = re.compile(
    r"\s{0,8}(?:(?i:(?:final\s+)?answer|option|choice|letter)\s{0,3}[:.]?\s{0,3})?"
    r"[(\[]?\s{0,2}([A-Za-z])")


def _parse_slot(content: str, opts: _Options) -> tuple[str | None, bool]:
    """(letter, ambiguous) for the content of an answer tag or a box."""
    m = _SLOT.match(content)
    if m:
        raw = m.group(1)
        rest = content[m.end():].strip(" \t\n)].:")
        letter = _letter_ok(content, m.start(1), m.end(1), raw, opts,
                            lowercase_ok=not rest)
        if letter is not None:
            if _is_multi(content, m.end(1), letter, opts):
                return None, True
            return letter, False
    if opts.texts:
        norm = _norm_words(content)
        if norm:
            hits = [i for i, t in enumerate(opts.normalised_texts()) if t and t == norm]
            if len(hits) == 1:
                return opts.letters[hits[0]], False
    return None, False


#: At most this many anchors of one kind are checked, last first (bounds the work on
#: pathological inputs such as "answer answer answer ..." a million times over).
_MAX_ANCHORS = 400


def _from_tags(regex: re.Pattern, anchor: str, text: str, low: str,
               opts: _Options) -> tuple[str | None, bool]:
    """(letter, ambiguous) of the last parseable answer tag / box; ``anchor`` is the
    lower-case string each one starts with."""
    pos = low.rfind(anchor)
    for _ in range(_MAX_ANCHORS):
        if pos < 0:
            break
        m = regex.match(text, pos)
        pos = low.rfind(anchor, 0, pos)
        if m is None:
            continue
        content = m.group(1)
        letter, ambiguous = _parse_slot(content, opts)
        if ambiguous:
            return None, True
        if letter is None:
            # "<answer>The answer is C because ...</answer>"
            letter, ambiguous = _from_phrases(content, opts)
            if ambiguous:
                return None, True
        if letter is not None:
            return letter, False
    return None, False


# --------------------------------------------------------------------------- answer phrases
#
# Scanning a whole chain of thought with one big case-insensitive regex costs ~1 ms per
# output, so phrases are found from cheap substring anchors in the lower-cased text
# ("answer", "option", "choose", "correct", ...) and each anchor is checked with a small
# anchored regex, last anchor first: the first one that checks out is the last committed
# answer in the text.

_WS = r"\s{1,3}"
_ADVERB = (r"(?:\s{1,3}(?:therefore|thus|hence|then|likely|probably|clearly|definitely|indeed|"
           r"most\s+likely|option|choice|letter))?")
# what comes between a phrase and its letter: "is: ", "is (", "Answer: Option ("
_LEAD = r"\s{0,4}(?:[:=\-]\s{0,8})?(?:(?:option|choice|letter)\s{1,3})?(?:[(\[\"'“‘]\s{0,2})?"
_VERB = (r"(?:is|would\s+be|will\s+be|should\s+be|must\s+be|remains|seems\s+to\s+be|"
         r"appears\s+to\s+be|=)")
# between "answer" and its verb: "the answer to this question is", "the answer, therefore,
# is", "the answer here is"
_FILLER = (r"(?:\s{1,3}to\s{1,3}(?:this|the)\s{1,3}(?:question|problem|case|vignette)"
           r"|\s{0,3},\s{0,3}(?:therefore|thus|hence|then)\s{0,3},|\s{1,3}here)?")
# all of these run on the lower-cased text; group 1 is the letter
_P_ANSWER = re.compile(
    r"answer(?:" + _WS + r"(?:choice|option|letter))?(?:" + _FILLER + _WS + _VERB + _ADVERB
    + r"|[\"']?\s{0,3}[:=]|\s{1,3}[-–—](?=\s))" + _LEAD + r"([a-z])"
    r"|answers" + _WS + r"(?:are|would\s+be|will\s+be|should\s+be|must\s+be)" + _ADVERB
    + _LEAD + r"([a-z])")
# "the answer is Metformin": the phrase, then an option's own text
_P_ANSWER_HEAD = re.compile(
    r"answer(?:" + _FILLER + _WS + r"(?:is|remains)" + _ADVERB + r"|\s{0,3}[:=])\s{0,4}(?:the\s{1,3})?")
# a sentence that only supposes an answer: "if ..., the answer is", "students assume the
# answer is", "it is unlikely that D is the answer"
_HYPOTHETICAL = re.compile(
    r"\b(?:if|unless|whether|think|thinks|thought|assume[sd]?|assuming|believe[sd]?|suppose[sd]?|"
    r"might|may|could|would|unlikely|not|never|instead)\b")

_P_OPTION = re.compile(
    r"(?:option|choice|response|selection)(?:" + _WS + r"(?:is|would\s+be|will\s+be)|\s{0,3}:)"
    + _ADVERB + _LEAD + r"([a-z])")
_OPTION_ADJ = re.compile(
    r"(?:correct|right|best|final|appropriate|likely|accurate|suitable|my)\s{1,3}$")
_P_VERB = re.compile(r"(?:choose|select|pick|go\s+with|opt\s+for)\s" + _LEAD + r"([a-z])")
# "A common mistake is to select D", "it is tempting to choose D"
_VERB_WARNING = re.compile(
    r"\b(?:mistakes?|mistaken(?:ly)?|tempt(?:ing|ed)?|traps?|pitfalls?|distractors?|wrongly|incorrectly)\b")
_P_ZH = re.compile(r"(?:答案\s{0,2}(?:是|为|:)|选项\s{0,2}(?:是|为|:)|(?<![不误错应若未别勿筛])选(?!项))" + _LEAD + r"([a-z])")
# after the corrected letter: the statement ends, or says the letter is right ("Actually,
# no - C worsens it" and "actually it's A that ..." are prose, not a correction)
_CORRECTION_END = re.compile(
    r"[ \t]{0,2}[)\]]?[ \t]{0,2}(?:$|[!\n]|\.(?:$|\s+[A-Z]|\s*\n)|\s+is\s+(?:the\s+)?(?:correct|right|"
    r"(?:correct\s+|right\s+|best\s+)?answer)\b)")
# a self-correction after the answer: "wait, actually it's D", "Actually, no — C is
# correct", "on second thought: C"
_P_CORRECTION = re.compile(
    r"(?:actually|on\s+second\s+thought)[,:]?\s{0,3}"
    r"(?:(?:no[,.;!]?\s{0,3}[-–—]*\s{0,3})?(?:it['’]?s|it\s+is|it\s+should\s+be|the\s+answer\s+is)"
    r"|no[,.;!]?\s{0,3}[-–—]+|(?<=thought):|(?<=thought),)" + _LEAD + r"([a-z])")
# letter first, before an anchor "correct" / "right" / "best" / "most": "C is correct",
# "(C) is the best answer", "Option C is the most likely"; runs on the original text
_P_LETTER_FIRST = re.compile(
    r"(?<![A-Za-z0-9])((?i:option|choice)\s{1,3})?([(\[]\s{0,2})?([A-Z])(?:\s{0,2}[)\]])?\s{0,3}"
    r"(?i:is|would\s+be|seems\s+to\s+be|appears\s+to\s+be)\s{1,3}(?i:the\s{1,3})?$")
_P_LETTER_FIRST_END = re.compile(
    r"(?:(?:correct|best|most\s+appropriate|most\s+likely)"
    r"(?:\s{1,3}(?:answer|option|choice|response))?|answer)(?![\w-])")
# what may precede a letter-first phrase: a line or sentence start, a list bullet, a
# clause opener; never a word ("Vitamin A is the most likely...")
_LETTER_FIRST_START = re.compile(
    r"(?:^|\n|[.:;!?,]|[-•]|\b(?:so|thus|therefore|hence|then|and|that|whereas))\s{0,3}$", re.I)

_OTHER_ANCHORS = (
    ("option", _P_OPTION), ("choice", _P_OPTION), ("response", _P_OPTION),
    ("selection", _P_OPTION), ("choose", _P_VERB), ("select", _P_VERB), ("pick", _P_VERB),
    ("go with", _P_VERB), ("opt for", _P_VERB), ("答案", _P_ZH), ("选", _P_ZH),
    ("actually", _P_CORRECTION), ("on second thought", _P_CORRECTION),
)
_WEAK_ANCHORS = (("correct", None), ("best", None), ("most", None), ("answer", None))
_OTHER_HINT = re.compile("|".join(kw for kw, _ in _OTHER_ANCHORS))
_WEAK_HINT = re.compile("correct|best|most|answer")


def _lower(text: str) -> str:
    low = text.lower()
    if len(low) != len(text):  # "İ".lower() is two characters; keep positions aligned
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    return low


def _from_phrases(text: str, opts: _Options, low: str | None = None) -> tuple[str | None, bool]:
    """(letter, ambiguous) of the last answer phrase naming one of the options."""
    if low is None:
        low = _lower(text)
    # "answer" is by far the most common anchor: find the last one that checks out, then
    # look for any other anchor after it (which would be a later commitment)
    found = None
    p = low.rfind("answer")
    for _ in range(_MAX_ANCHORS):
        if p < 0:
            break
        found = _check_anchor(text, low, opts, p, _P_ANSWER)
        if found is not None:
            break
        p = low.rfind("answer", 0, p)
    else:
        p = -1
    later = _scan_anchors(text, low, opts, p + 1 if p >= 0 else 0, len(low), _OTHER_ANCHORS,
                          _OTHER_HINT)
    # "C is correct" / "(C) is the most likely" only count when no explicit phrase does:
    # they also turn up in explanations after the answer ("Answer: B. ... A is the most
    # likely cause of X, but ...")
    return (later or found
            or _scan_anchors(text, low, opts, 0, len(low), _WEAK_ANCHORS, _WEAK_HINT)
            or (None, False))


def _scan_anchors(text: str, low: str, opts: _Options, lo: int, hi: int, anchors,
                  hint: re.Pattern) -> tuple[str | None, bool] | None:
    """Check the ``anchors`` that start in ``[lo, hi)``, last first."""
    if hi - lo <= 300 and not hint.search(low, lo, hi):
        return None  # the usual case: a short tail after "The answer is (C)."
    cands: list[tuple[int, re.Pattern | None]] = []
    for kw, rx in anchors:
        i = low.find(kw, lo, hi)
        while i >= 0:
            cands.append((i, rx))
            i = low.find(kw, i + 1, hi)
    if not cands:
        return None
    if len(cands) > 1:
        cands.sort(key=_first, reverse=True)
    for pos, rx in cands[:_MAX_ANCHORS]:
        found = _check_anchor(text, low, opts, pos, rx)
        if found is not None:
            return found
    return None


def _check_anchor(text: str, low: str, opts: _Options, pos: int,
                  rx: re.Pattern | None) -> tuple[str | None, bool] | None:
    """(letter, ambiguous) for the phrase anchored at ``pos``, ``None`` if it is none."""
    if rx is None:
        hit = _letter_first(text, low, pos)
        if hit is None:
            return None
        phrase_start, start = hit
        if low.startswith("answer", pos) and (" would " in low[phrase_start:pos]
                                              or _hypothetical_before(low, phrase_start)):
            return None  # "If unstable, A would be the answer", "unlikely that D is the answer"
        lowercase_ok = False
    else:
        if pos > 0 and low[pos - 1].isalpha() and rx is not _P_ZH:
            return None  # inside a word ("unanswered", "adoption")
        m = rx.match(low, pos)
        if m is None:
            if rx is _P_ANSWER and opts.texts:
                return _answer_is_text(text, low, opts, pos)
            return None
        if rx is _P_OPTION and not _OPTION_ADJ.search(low, max(0, pos - 24), pos):
            return None  # "the best option is B", not "this option is..."
        if rx is _P_VERB:
            clause = max(low.rfind(". ", 0, pos), low.rfind("\n", 0, pos), pos - 60)
            if _VERB_WARNING.search(low, clause, pos):
                return None
        phrase_start, start = pos, m.start(m.lastindex)
        end = start + 1
        # a lowercase letter only as "(c)" or a bare "c." / "c" ending the statement
        lowercase_ok = text[start - 1] in "([" or end >= len(text) or (
            text[end] in ".)]:\n" and (end + 1 >= len(text) or text[end + 1].isspace()))
    end = start + 1
    letter = _letter_ok(text, start, end, text[start], opts, lowercase_ok=lowercase_ok)
    if letter is None:
        if rx is _P_ANSWER and opts.texts:  # "the answer is metformin" (no letter)
            return _answer_is_text(text, low, opts, pos)
        return None
    if end < len(text) and text[end] == "." and opts.texts:
        # "the answer is E. coli" where "E. coli" is the text of some option
        head = text[start: end + 1]
        for i, t in enumerate(opts.texts):
            if isinstance(t, str) and t[:2] == head and low.startswith(t.lower(), start):
                letter = opts.letters[i]
                break
        else:
            # "the answer is C. difficile colitis": a genus abbreviation of exactly one
            # option that reads "<C...> difficile ..." (not the letter's own option)
            w = _GENUS_WORD.match(text, end + 1)
            if w:
                owners = [i for i, t in enumerate(opts.normalised_texts())
                          if t.split()[1:2] == [w.group(1)] and t[:1] == text[start].lower()]
                if len(owners) == 1 and opts.letters[owners[0]] != letter:
                    letter = opts.letters[owners[0]]
    if rx is _P_CORRECTION and not _CORRECTION_END.match(text, end):
        return None  # "Actually, no - C worsens it": prose about C, not a correction
    if _negated_before(low, phrase_start):
        return None  # "I would not choose C"
    if rx is not None and _NEG_AFTER.match(text, end):
        return None  # "Answer: C is incorrect"
    if _is_multi(text, end, letter, opts):
        return None, True
    return letter, False


_GENUS_WORD = re.compile(r" ([a-z]{4,})\b")
_AND_OR = re.compile(r"[ \t]{0,3},?[ \t]{0,3}(?:and|or|&|/)[ \t]{1,3}")
_TEXT_END = re.compile(r"[ \t]{0,2}(?:$|[.,;:!?)\n]|\s+(?:and|or|&|/)\s)")


def _hypothetical_before(low: str, pos: int) -> bool:
    """Whether the sentence before ``pos`` (at most 300 characters of it) supposes."""
    lo = max(0, pos - 300)
    start = max(low.rfind(c, lo, pos) for c in ".?!;\n") + 1
    return bool(_HYPOTHETICAL.search(low, max(start, lo), pos))


def _answer_is_text(text: str, low: str, opts: _Options, pos: int) -> tuple[str | None, bool] | None:
    """(letter, ambiguous) for "the answer is <an option's text>" anchored at ``pos``."""
    h = _P_ANSWER_HEAD.match(low, pos)
    if h is None or _hypothetical_before(low, pos):
        return None
    start = h.end()
    texts = [opts.text(i).strip().lower() for i in range(len(opts.texts or ()))]
    best = -1
    for i, t in enumerate(texts):
        # the option's text ends the statement: "is no." / "is Metformin, since", not "is no longer"
        if t and low.startswith(t, start) and _TEXT_END.match(low, start + len(t)):
            if best < 0 or len(t) > len(texts[best]):
                best = i
    if best < 0 or _negated_before(low, pos):
        return None
    end = start + len(texts[best])
    if _NEG_AFTER.match(text, end):
        return None
    rest = low[end: end + 80]
    m = _AND_OR.match(rest)
    if m and any(t and j != best and rest.startswith(t, m.end()) for j, t in enumerate(texts)):
        return None, True  # "the answer is Metformin or insulin"
    return opts.letters[best], False


def _first(c):
    return c[0]


def _letter_first(text: str, low: str, pos: int) -> tuple[int, int] | None:
    """(phrase start, letter position) of "C is correct" ending at anchor ``pos``."""
    if not low.endswith(("is ", "the ", "be "), 0, pos):
        return None
    if not _P_LETTER_FIRST_END.match(low, pos):
        return None
    m = _P_LETTER_FIRST.search(text, max(0, pos - 40), pos)
    if m is None:
        return None
    if m.group(1) is None and m.group(2) is None and not _LETTER_FIRST_START.search(
            text, max(0, m.start() - 12), m.start()):
        return None
    return m.start(), m.start(3)


# --------------------------------------------------------------------------- final line

_FINAL_LINE = re.compile(
    r"(?:(?i:option|choice)\s{1,3})?"
    r"(?:\(\s{0,2}(?P<p>[A-Za-z])\s{0,2}\)|\[(?P<q>[A-Za-z])\]|(?P<r>[A-Za-z])\)"
    r"|(?P<u>[A-Z])(?:[.:](?!\w)|\s*$))"
)
_LINE_LEAD = " \t#>"
_NEGATION_WORDS = re.compile(
    r"\b(?:not|no|never|incorrect|wrong|false|unlikely|less\s+likely|ruled?\s+out|exclude[ds]?|"
    r"eliminated?|except|rather\s+than|instead\s+of)\b|n't\b", re.I)


def _last_lines(text: str, k: int = 2) -> list[str]:
    """The last ``k`` non-empty lines (last first), markdown heading / quote marks removed."""
    out: list[str] = []
    end = len(text.rstrip())
    for _ in range(50 + k):
        if end <= 0 or len(out) == k:
            break
        start = text.rfind("\n", 0, end) + 1
        line = text[start:end].strip().lstrip(_LINE_LEAD).strip()
        if line:
            out.append(line)
        end = start - 1
    return out


def _line_label(line: str, opts: _Options):
    """(match, letter) when ``line`` starts with an option label ("C.", "(C)", "C)")."""
    m = _FINAL_LINE.match(line)
    if not m:
        return None, None
    key = next(k for k in "pqru" if m.group(k) is not None)
    raw = m.group(key)
    letter = raw.upper()
    if key == "u" and raw != letter or letter not in opts.letter_set:
        return None, None
    return m, letter


def _from_final_line(text: str, opts: _Options) -> tuple[str | None, bool]:
    lines = _last_lines(text, 2)
    if not lines:
        return None, False
    line = lines[0]
    m, letter = _line_label(line, opts)
    if m is None:
        return None, False
    if len(lines) > 1:
        _, prev = _line_label(lines[1], opts)
        if prev is not None and prev != letter:
            return None, False  # the last item of an enumeration ("I. ...\nJ. ..."), not a verdict
    end = m.end(m.lastindex)
    after = _skip_option_text(line, end, letter, opts)
    if m.group(m.lastindex).islower() and after == end and line[m.end():].strip(" .:)"):
        return None, False  # "(a) Constitutive, (b) Inducible": sub-part labels, not options
    rest = line[after:]
    if _NEG_AFTER.match(rest) or _NEGATION_WORDS.search(rest):
        return None, False  # "C. Incorrect: ...", "(C) is not the answer"
    if _is_multi(line, end, letter, opts):
        return None, True
    return letter, False


# --------------------------------------------------------------------------- option text

_NON_WORD = re.compile(r"[\W_]+")
_NEG_WORDS_BEFORE = frozenset(
    "not no never nor rather instead except excluding exclude unlike than over against "
    "eliminate eliminating isn aren t".split())
_NEG_WORDS_AFTER = frozenset(
    "not incorrect wrong false unlikely ruled excluded eliminated isn aren t".split())


def _norm_words(s: str) -> str:
    if not s.isascii():
        s = unicodedata.normalize("NFKC", s)
    return _NON_WORD.sub(" ", s.lower()).strip()


_LIST_ITEM = re.compile(r"(?:[-•+]\s|\d{1,2}[.)]\s|\(?[A-Za-z][.):]\s|\([A-Za-z]\)\s)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[^a-z])")


def _final_sentences(text: str, n: int = 2, window: int = 800) -> list[str]:
    """The conclusion: the last ``n`` sentences (last first), normalised to words. A text
    that ends with a list item ("J. Hygiene - prevents...") or with an announcement
    whose answer never came ("the most likely diagnosis is:") has none."""
    out: list[str] = []
    for line in _last_lines(text[-window:], 3):
        if _LIST_ITEM.match(line):
            break  # an option-by-option analysis is not a conclusion
        for part in reversed(_SENTENCE_END.split(line)):
            if not out and part.rstrip().endswith(":"):
                return out
            norm = _norm_words(part)
            if norm:
                out.append(norm)
                if len(out) == n:
                    return out
    return out


def _negated(words_before: list[str], words_after: list[str]) -> bool:
    return bool(_NEG_WORDS_BEFORE.intersection(words_before[-3:])
                or _NEG_WORDS_AFTER.intersection(words_after[:3]))


def _exact_hits(sentence: str, opts: _Options) -> list[int]:
    padded = f" {sentence} "
    spans: list[tuple[int, int, int]] = []
    for i, t in enumerate(opts.normalised_texts()):
        if not t:
            continue
        needle = f" {t} "
        start = padded.find(needle)
        while start >= 0:
            end = start + len(needle)
            if not _negated(padded[:start].split(), padded[end:].split()):
                spans.append((start, end - 1, i))
                break
            start = padded.find(needle, start + 1)
    # an option whose match lies inside a longer option's match ("Vitamin A" inside
    # "Vitamin A and D") is not a separate hit
    hits = [i for s, e, i in spans
            if not any(s2 <= s and e <= e2 and (e2 - s2) > (e - s) for s2, e2, _ in spans)]
    return sorted(set(hits))


def _from_option_text(text: str, opts: _Options) -> tuple[str | None, bool]:
    if not opts.texts:
        return None, False
    for sentence in _final_sentences(text):
        hits = _exact_hits(sentence, opts)
        if len(hits) == 1:
            return opts.letters[hits[0]], False
        if len(hits) > 1:
            return None, True
    return None, False


_fuzz = None


def _get_fuzz():
    global _fuzz
    if _fuzz is None:
        try:
            from rapidfuzz import fuzz
        except ImportError:  # pragma: no cover - rapidfuzz is a dependency
            _fuzz = False
        else:
            _fuzz = fuzz
    return _fuzz


# word pairs that look alike but mean opposite things share their first three letters
# only in these cases; other pairs must agree on the first three letters ("increase" is
# not "decrease", "mitosis" is not "meiosis", "fibres" is "fibers")
_OPPOSED_PREFIXES = (("hyper", "hypo"), ("inter", "intra"), ("ante", "anti"))


def _opposed_words(fuzz, option: str, stretch: str) -> bool:
    """Whether an option word is matched by a look-alike word of opposite meaning."""
    words = stretch.split()
    for a in option.split():
        if a in words or not words:
            continue
        b = max(words, key=lambda w: fuzz.ratio(a, w))
        if fuzz.ratio(a, b) < 70 and not a.isdigit():
            continue  # a missing word, not a look-alike
        a2 = a.replace("ae", "e").replace("oe", "e")  # haem/hem, oesophagus/esophagus
        b2 = b.replace("ae", "e").replace("oe", "e")
        if a2 == b2:
            continue
        if a2[:3] != b2[:3] or any(c.isdigit() for c in a2 + b2):
            return True  # different stems, or different numbers ("3:1" is not "9:6:1")
        for p, q in _OPPOSED_PREFIXES:
            if a2.startswith(p) and b2.startswith(q) or a2.startswith(q) and b2.startswith(p):
                return True
    return False


def _from_fuzzy(text: str, opts: _Options) -> tuple[str | None, bool]:
    if not opts.texts:
        return None, False
    fuzz = _get_fuzz()
    if not fuzz:
        return None, False
    floor = FUZZY_CUTOFF - FUZZY_TIE_MARGIN
    for sentence in _final_sentences(text):
        if _NEGATION_WORDS.search(sentence):
            continue
        scores = []
        n = len(sentence)
        for i, t in enumerate(opts.normalised_texts()):
            if len(t) < FUZZY_MIN_OPTION_CHARS or len(t) > n:
                continue
            al = fuzz.partial_ratio_alignment(t, sentence, score_cutoff=floor)
            if al is None:
                continue
            # snap the aligned stretch to whole words, then score it as a whole: "iron"
            # must not match inside "environment"
            a, b = al.dest_start, al.dest_end
            while a > 0 and sentence[a - 1] != " ":
                a -= 1
            while b < n and sentence[b] != " ":
                b += 1
            stretch = sentence[a:b]
            s = fuzz.ratio(t, stretch)
            if s >= floor and not _opposed_words(fuzz, t, stretch):
                scores.append((s, i))
        if not scores:
            continue
        scores.sort(reverse=True)
        best, i = scores[0]
        if best < FUZZY_CUTOFF:
            continue
        if len(scores) > 1 and scores[1][0] > best - FUZZY_TIE_MARGIN:
            return None, True
        return opts.letters[i], False
    return None, False


# --------------------------------------------------------------------------- API


def _check_style(style: str) -> str:
    if style not in STYLES:
        raise ValueError(f"unknown scoring style {style!r}; choose one of {', '.join(STYLES)}")
    return style


def _paper_box(text: str, opts: _Options) -> str | None:
    """The letter of the last ``\\boxed{...}`` whose whole content, normalised (case,
    whitespace, punctuation), is an option's letter, ``X. text`` or the option's text."""
    pos = text.rfind("\\boxed")
    for _ in range(_MAX_ANCHORS):
        if pos < 0:
            return None
        m = _BOXED.match(text, pos)
        pos = text.rfind("\\boxed", 0, pos)
        if m is None:
            continue
        norm = _norm_words(m.group(1))
        if not norm:
            continue
        if len(norm) == 1 and norm.upper() in opts.letter_set:
            return norm.upper()
        texts = opts.normalised_texts() if opts.texts else []
        for i, t in enumerate(texts):
            if t and (norm == t or norm == f"{opts.letters[i].lower()} {t}"):
                return opts.letters[i]
    return None


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
    letter, ambiguous = _from_phrases(text, opts, low)
    if letter is not None:
        return Extraction(letter, METHOD_ANSWER_PHRASE)
    if ambiguous:
        return _NONE
    letter, ambiguous = _from_final_line(text, opts)
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
