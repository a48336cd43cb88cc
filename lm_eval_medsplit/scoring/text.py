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


# a base model that runs on past its answer starts the next few-shot item on a new line:
# "The answer is (J).\n\nQuestion:\nWhich of the following ..." (whatever follows answers a
# question nobody asked)
_RUN_ON = re.compile(r"\n[ \t#>*]{0,6}(?:Question|QUESTION|Q)[ \t]{0,3}\d{0,3}[ \t]{0,3}[:.]")


def _run_on_cut(text: str) -> int:
    """Index of the first run-on ``Question:`` / ``Q:`` line that follows some text (the
    length of ``text`` when there is none)."""
    i = text.find("\n")
    while 0 <= i:
        m = _RUN_ON.search(text, i)
        if m is None:
            break
        if text[: m.start()].strip():
            return m.start()
        i = m.end()
    return len(text)


# a line that states an answer: "The answer is (B)", "Answer: The answer is (B)."
_ANSWER_LINE = re.compile(r"[ \t#>*\-]{0,6}(?:answer:[ \t]{0,3})?the[ \t]{1,3}answer[ \t]{1,3}is\b")


def _answer_list_cut(low: str) -> int:
    """End of the first line of the first run of three or more lines that each state an
    answer, the second and later ones short ("The answer is (G).\nThe answer is (B).\nThe answer is (D)."): a model
    echoing the answers of the few-shot questions after its own; 0 when the text is nothing
    but such a list (it states no single answer); the length of ``low`` when there is no
    such run."""
    lines = low.split("\n")
    pos, run_start, run = 0, 0, 0
    for line in lines:
        if run == 0 and "answer is" in line or len(line) <= 100 and _ANSWER_LINE.match(line):
            if run == 0:
                run_start = pos
            run += 1
            if run == 3:
                head = low[: low.find("answer is", run_start)].strip(" \t\n#>*-:")
                if head in ("", "the"):
                    return 0  # nothing but a list of answers: no single answer stated
                eol = low.find("\n", run_start)
                return len(low) if eol < 0 else eol
        elif line.strip():
            run = 0  # a list holds nothing but short answer lines (and blank lines)
        pos += len(line) + 1
    return len(low)


# a line that starts a summary: "Final Answer: ...", "Now, combining all the answers:",
# "Let's summarize the final answers to all questions:", "The answers are:"
_SUMMARY = re.compile(
    r"\n[ \t#>=*\-]{0,6}(?:now,?[ \t]{1,3})?(?:(?:let'?s|to|in)[ \t]{1,3})?"
    r"(?:final[ \t]{1,3}answers?\b|summar(?:y|i[sz]e)\b|combining[ \t]{1,3}all\b|"
    r"considering[ \t]{1,3}all\b|the[ \t]{1,3}(?:final[ \t]{1,3})?answers[ \t]{1,3}are\b)")


def _summary_split(low: str) -> tuple[int, int] | None:
    """(start of the paragraph before, start of the summary) for the first summary line
    that follows a paragraph of text; ``None`` when there is none."""
    m = _SUMMARY.search(low)
    if m is None:
        return None
    end = m.start()
    head = low[:end].rstrip()
    if not head:
        return None
    return max(head.rfind("\n\n"), 0), end


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
