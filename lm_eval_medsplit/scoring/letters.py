"""Letter rules shared by every stage: which tokens are option letters.

Accepts a text, a position and the options; guarantees a letter is only ever one of the
record's option letters, never the pronoun "I", never negated ("not C"), and that a
commitment naming several letters ("B and D") is reported as ambiguous.
"""

from __future__ import annotations

import re

from .options import _Options

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
_NEG_LAST_TWO = frozenset(("rule out", "ruled out", "ruling out", "rules out", "rather than", "instead of",
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


#: At most this many anchors of one kind are checked, last first (bounds the work on
#: pathological inputs such as "answer answer answer ..." a million times over).
_MAX_ANCHORS = 400
