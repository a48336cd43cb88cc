"""Stage 4: a last line that starts with an option label ("C. Purkinje fibers", "(C)").

Accepts the normalised text; returns ``(letter, ambiguous)``.
"""

from __future__ import annotations

import re

from .letters import _NEG_AFTER, _is_multi, _skip_option_text
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
