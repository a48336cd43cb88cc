"""Options of one record, in any accepted form.

Accepts a dict letter -> text, a list of option texts, a string / iterable of letters, or an
MCQRecord; guarantees the letters are single upper-case letters, unique, in order, and the
normalised texts are computed once per record.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from .results import _LETTERS, _LETTERS_TUPLE

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


_NON_WORD = re.compile(r"[\W_]+")


def _norm_words(s: str) -> str:
    if not s.isascii():
        s = unicodedata.normalize("NFKC", s)
    return _NON_WORD.sub(" ", s.lower()).strip()
