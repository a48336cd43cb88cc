"""Stage 3: answer phrases ("the answer is (C)", "Answer: C", "I would choose C", "C is
correct").

Accepts the normalised text and its lower-cased copy; returns ``(letter, ambiguous)`` of the
last committed answer phrase, or ``(None, False)``.
"""

from __future__ import annotations

import re

from .letters import (
    _MAX_ANCHORS,
    _NEG_AFTER,
    _TOKEN_END,
    _is_multi,
    _letter_ok,
    _negated_before,
    _skip_option_text,
)
from .options import _Options
from .text import _lower

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
_LEAD = (r"\s{0,4}(?:[:=\-]\s{0,8})?(?:(?:\.{3}|…)[ \t]{0,3})?(?:(?:option|choice|letter)\s{1,3})?"
         r"(?:[(\[\"'“‘]\s{0,2})?")
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
        if _declines(low, p):
            return None, True  # the text ends by saying no option is the answer
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
        if lowercase_ok and text[start].islower() and _subpart_label(text, start, opts):
            lowercase_ok = False  # "the answer is (a) and (b)", "the answer is: a) 0 chromosomes"
    end = start + 1
    letter = _letter_ok(text, start, end, text[start], opts, lowercase_ok=lowercase_ok)
    if letter is None:
        if rx is _P_ANSWER and _foreign_letter(text, start, opts):
            return None, True  # "The answer is (E)" with options A-D: a stated non-option
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


# "The answer is not in the options provided.", "The answer is (None of the above).",
# "The answer cannot be determined from the provided options.", "Answer: None of the"
_DECLINE = re.compile(
    r"answer(?:\s{1,3}(?:is|would\s+be|will\s+be)\s{1,3}(?:not\s{1,3}(?:listed|in\b|among|provided|"
    r"given|present|available|included|one\s+of|there)|\(?none\b)"
    r"|\s{0,3}:\s{0,3}\(?none\b|\s{1,3}(?:cannot|can\s+not|can't)\s{1,3}be\s{1,3}determined)")
_MORE_TEXT = re.compile(r"[.!?\n]\s*\S")


def _declines(low: str, pos: int) -> bool:
    """Whether the answer phrase at ``pos`` says no option is the answer, in the text's last
    sentence, and nothing after it picks one anyway ("..., but the closest option is (D)")."""
    m = _DECLINE.match(low, pos)
    if m is None or _MORE_TEXT.search(low, m.end()):
        return False
    rest = low[m.end():]
    return not any(w in rest for w in ("(", "closest", "best", "choose", "pick", "select"))


_LOWER_LABEL = re.compile(r"(?<![A-Za-z0-9])\(?([a-j])\)")


def _subpart_label(text: str, start: int, opts: _Options) -> bool:
    """Whether the lowercase letter at ``start`` labels a sub-part of the question rather
    than an option: the text labels other sub-parts the same way ("(a) ... (b) ..."), or the
    letter is written "a)" and followed by something other than its option's text."""
    c = text[start]
    if any(m.group(1) != c for m in _LOWER_LABEL.finditer(text)):
        return True
    end = start + 1
    if end < len(text) and text[end] == ")" and text[start - 1] != "(":
        rest = text[end + 1: text.find("\n", end) if "\n" in text[end:] else len(text)].strip()
        return bool(rest) and _skip_option_text(text, end + 1, c.upper(), opts) == end + 1
    return False


def _foreign_letter(text: str, start: int, opts: _Options) -> bool:
    """Whether ``text[start]`` is a capital letter outside the options, written as an option
    label: "(E)", "[E]", or "E" ending the statement ("E.", "E)", end of line)."""
    c = text[start]
    if not ("A" <= c <= "Z") or c in opts.letter_set or c == "I":
        return False
    end = start + 1
    if end < len(text) and _TOKEN_END.match(text, end):
        return False  # a word: "Elizabeth"
    if start > 0 and text[start - 1] in "([":
        return True
    return end >= len(text) or text[end] in ".)]\n" and (
        end + 1 >= len(text) or text[end + 1].isspace())


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
