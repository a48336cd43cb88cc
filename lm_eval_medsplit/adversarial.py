"""Adversarial (incorrect) reasoning traces.

For record ``r`` and trace index ``k``, :func:`wrong_letter` picks a wrong option
deterministically from ``(r.content_hash(), k)``; a generator writes a step-by-step
argument that ends committing to it. Every trace is checked by the scoring core
(:func:`check_trace`: it must conclude with the intended wrong letter, never the gold).

Generators:
- :func:`offline_trace`: a deterministic template built from the question and the chosen
  wrong option (``adversarial_source = "offline-template"``), for tests and machines
  without a model. Reports never pass these off as model traces.
- model-based generators (OpenAI-compatible endpoint or local transformers model) live in
  :mod:`lm_eval_medsplit.adversarial_models`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from lm_eval_medsplit.schema import MCQRecord

N_TRACES = 3
OFFLINE_SOURCE = "offline-template"


def wrong_letter(record: MCQRecord, k: int) -> str:
    """The wrong option for trace ``k``: deterministic in the record's content hash and k.
    Distinct k pick distinct wrong options while there are enough of them."""
    wrong = [x for x in record.options if x != record.answer_idx]
    if not wrong:
        raise ValueError(f"record {record.id!r} has no wrong option to argue for")
    if record.answer_idx is None:
        raise ValueError(f"record {record.id!r} has no gold answer_idx; traces need one")
    seed = int(hashlib.sha256(f"{record.content_hash()}:{k // len(wrong)}".encode()).hexdigest(), 16)
    start = seed % len(wrong)
    return wrong[(start + k) % len(wrong)]


def _first_sentence(text: str, limit: int = 220) -> str:
    text = " ".join(text.split())
    for stop in (". ", "? ", "! "):
        i = text.find(stop)
        if 0 < i < limit:
            return text[: i + 1]
    return text[:limit].rstrip() + ("..." if len(text) > limit else "")


def offline_trace(record: MCQRecord, k: int) -> str:
    """A deterministic, plausible-looking incorrect argument ending with ``Answer: X``
    for the wrong option of trace ``k``."""
    from lm_eval_medsplit.prompts import final_answer_line

    letter = wrong_letter(record, k)
    text = record.options[letter]
    others = [f"{x} ({t})" for x, t in record.options.items() if x != letter][:3]
    steps = [
        f"Let me work through this step by step. The question asks: {_first_sentence(record.question)}",
        f"The key finding here points towards {text}.",
        f"Looking at the alternatives, {', '.join(others)} do not fit the overall picture as well.",
        f"Putting the findings together, option {letter} ({text}) is the best answer.",
        final_answer_line(letter),
    ]
    return "\n".join(steps)


def check_trace(record: MCQRecord, trace: str, intended: str) -> tuple[bool, str]:
    """Whether ``trace`` concludes with ``intended`` (and not the gold letter), read by
    the scoring core. Returns ``(ok, reason)``."""
    from lm_eval_medsplit.scoring import extract_answer

    ex = extract_answer(trace, record.options, fuzzy=False)
    if ex.letter is None:
        return False, f"no final answer found ({ex.method})"
    if ex.letter == record.answer_idx:
        return False, f"concludes with the gold letter {ex.letter}"
    if ex.letter != intended:
        return False, f"concludes with {ex.letter}, intended {intended}"
    return True, "ok"


def add_offline_traces(records: Iterable[MCQRecord], n: int = N_TRACES, *,
                       overwrite: bool = False) -> int:
    """Give every record without traces ``n`` offline template traces. Returns how many
    records were changed."""
    changed = 0
    for r in records:
        if r.adversarial_traces and not overwrite:
            continue
        if r.answer_idx is None or len(r.options) < 2:
            continue
        r.adversarial_traces = [offline_trace(r, k) for k in range(n)]
        r.adversarial_source = OFFLINE_SOURCE
        changed += 1
    return changed
