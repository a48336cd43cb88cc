"""Stage 4: a last line that starts with an option label ("C. Purkinje fibers", "(C)").

Accepts the normalised text; returns ``(letter, ambiguous)``.
"""

from __future__ import annotations

import re

from .letters import _NEG_AFTER, _is_multi, _negated_before, _skip_option_text
from .options import _Options

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


# --------------------------------------------------------------------------- concluding letter

# words of a conclusion: "Therefore, the most likely explanation is (D).", "the closest
# answer is (B)", "This makes (G) the correct answer"
_CUE = re.compile(
    r"\b(?:therefore|thus|hence|so|best|correct|right|answer|closest|accurate|appropriate|"
    r"conclusion|conclude|final|overall|makes|most\s+likely|most\s+probable|diagnosis|choice|"
    r"greatest)\b", re.I)
_PAREN_LETTER = re.compile(r"\(([A-Z])\)")
# the letter completes the sentence after a copula: "The only remaining option is (A)."
_COPULA_END = re.compile(r"\b(?:is|be)[ \t]{1,3}\([A-Z]\)[ \t]*[.!]?[ \t]*$")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")


def _from_announcement(text: str, opts: _Options) -> tuple[str | None, bool]:
    """(letter, ambiguous) for a conclusion announced with a colon and answered on the next
    line by an option label, possibly followed by a justification: "the most fitting
    diagnosis is:\\n\\nF. Tension pneumothorax\\n\\nThis condition fits ...". Two labelled
    lines after the announcement ("the correct options are:\\nE. ...\\nI. ...") are
    ambiguous."""
    lines = _last_lines(text[-1500:], 8)
    for i in range(1, len(lines)):
        head = lines[i]
        if not head.endswith(":") or not _CUE.search(head) or _NEGATION_WORDS.search(head):
            continue
        m, letter = _line_label(lines[i - 1], opts)
        if m is None:
            return None, False
        if i >= 2:
            _, nxt = _line_label(lines[i - 2], opts)
            if nxt is not None and nxt != letter:
                return None, True
        line = lines[i - 1]
        end = m.end(m.lastindex)
        if m.group(m.lastindex).islower():
            return None, False
        rest = line[_skip_option_text(line, end, letter, opts):]
        if _NEG_AFTER.match(rest) or _NEGATION_WORDS.search(rest):
            return None, False
        return letter, False
    return None, False


def _from_final_sentence(text: str, opts: _Options) -> tuple[str | None, bool]:
    """(letter, ambiguous) for a concluding sentence (one of the last two) that names one
    option letter in parentheses: "Therefore, the most likely explanation is (D).", "the
    most appropriate step would be to obtain a swallowing evaluation (I)." A sentence
    naming two letters is ambiguous; a negated one ("(C) is not correct") names none."""
    sentences: list[str] = []
    for line in _last_lines(text[-800:], 2):
        for part in reversed(_SENTENCE_SPLIT.split(line)):
            if part.strip():
                sentences.append(part)
        if len(sentences) >= 2:
            break
    for s in sentences[:2]:
        marks = [m for m in _PAREN_LETTER.finditer(s) if m.group(1) in opts.letter_set]
        if not marks:
            continue
        if len({m.group(1) for m in marks}) > 1:
            return None, True
        low = s.lower()
        if not (_CUE.search(s) or _COPULA_END.search(s)) or any(
                _negated_before(low, m.start()) or _NEG_AFTER.match(s, m.end()) for m in marks):
            return None, False  # "which rules out (I)", "The answer (J) is incorrect because"
        return marks[0].group(1), False
    return None, False
