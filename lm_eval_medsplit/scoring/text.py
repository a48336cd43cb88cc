"""Stage 1: normalise the text and cut it to the part that answers the question.

Accepts any object (``None``, bytes, hostile ``__str__``) and never raises; guarantees a
``str`` whose lower-cased copy has the same length (positions line up).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

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


def _lower(text: str) -> str:
    low = text.lower()
    if len(low) != len(text):  # "İ".lower() is two characters; keep positions aligned
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    return low
