"""Stage 2: explicit tags, ``<answer>X</answer>`` and ``\\boxed{X}``.

Accepts the normalised text; returns ``(letter, ambiguous)`` for the last tag that names one
option (by letter, ``X. text`` or the option's own text).
"""

from __future__ import annotations

import re

from .letters import _MAX_ANCHORS, _is_multi, _letter_ok
from .options import _norm_words, _Options
from .phrases import _from_phrases

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
