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
  :mod:`lm_eval_medsplit.trace_generation`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from lm_eval_medsplit.schema import MCQRecord

N_TRACES = 3
OFFLINE_SOURCE = "offline-template"


class TraceInputError(ValueError):
    """A record that cannot be given adversarial traces (no gold letter, fewer than two
    options, empty question). The message names the record."""


def check_trace_input(record: MCQRecord) -> None:
    """Raise :class:`TraceInputError` when ``record`` cannot get adversarial traces."""
    if not record.question or not record.question.strip():
        raise TraceInputError(f"record {record.id!r} of {record.benchmark}: field 'question' is empty")
    if len(record.options) < 2:
        raise TraceInputError(f"record {record.id!r} of {record.benchmark}: field 'options' needs at "
                              f"least 2 options to argue for a wrong one, got {len(record.options)}")
    if record.answer_idx is None:
        raise TraceInputError(f"record {record.id!r} of {record.benchmark}: field 'answer_idx' is "
                              f"missing; traces argue against the gold letter, so they need one")
    if record.answer_idx not in record.options:
        raise TraceInputError(f"record {record.id!r} of {record.benchmark}: field 'answer_idx' "
                              f"{record.answer_idx!r} is not one of {', '.join(record.options)}")


def trace_input_problems(records: Iterable[MCQRecord]) -> list[tuple[MCQRecord, str]]:
    """``(record, message)`` for each record that cannot get adversarial traces."""
    problems = []
    for r in records:
        try:
            check_trace_input(r)
        except TraceInputError as e:
            problems.append((r, str(e)))
    return problems


def raise_trace_input_problems(problems: list[tuple[MCQRecord, str]], limit: int = 20) -> None:
    """Raise one :class:`TraceInputError` listing ``problems`` (the first ``limit``)."""
    problems = [msg for _, msg in problems]
    if problems:
        more = f"\n  ... and {len(problems) - limit} more" if len(problems) > limit else ""
        raise TraceInputError(f"{len(problems)} record(s) cannot get adversarial traces:\n  "
                              + "\n  ".join(problems[:limit]) + more)


def _wrong_letter(record: MCQRecord, k: int, content_hash: str) -> str:
    wrong = [x for x in record.options if x != record.answer_idx]
    if not wrong:
        raise TraceInputError(f"record {record.id!r} has no wrong option to argue for")
    if record.answer_idx is None:
        raise TraceInputError(f"record {record.id!r} has no gold answer_idx; traces need one")
    seed = int(hashlib.sha256(f"{content_hash}:{k // len(wrong)}".encode()).hexdigest(), 16)
    start = seed % len(wrong)
    return wrong[(start + k) % len(wrong)]


def wrong_letter(record: MCQRecord, k: int) -> str:
    """The wrong option for trace ``k``: deterministic in the record's content hash and k.
    Distinct k pick distinct wrong options while there are enough of them."""
    return _wrong_letter(record, k, record.content_hash())


def wrong_letters(record: MCQRecord, n: int = N_TRACES) -> list[str]:
    """``[wrong_letter(record, k) for k in range(n)]``, hashing the record once."""
    h = record.content_hash()
    return [_wrong_letter(record, k, h) for k in range(n)]


def _first_sentence(text: str, limit: int = 220) -> str:
    text = " ".join(text.split())
    for stop in (". ", "? ", "! "):
        i = text.find(stop)
        if 0 < i < limit:
            return text[: i + 1]
    return text[:limit].rstrip() + ("..." if len(text) > limit else "")


def offline_trace(record: MCQRecord, k: int, *, letter: str | None = None, style: str = "cot") -> str:
    """A deterministic, plausible-looking incorrect argument ending with ``Answer: X``
    (``\\boxed{X}`` in the ``paper`` style) for the wrong option of trace ``k``
    (``letter``, when given, must be ``wrong_letter(record, k)``; it only saves re-hashing
    the record)."""
    from lm_eval_medsplit.prompts import final_answer_line

    if letter is None:
        letter = wrong_letter(record, k)
    text = record.options[letter]
    others = [f"{x} ({t})" for x, t in record.options.items() if x != letter][:3]
    steps = [
        f"Let me work through this step by step. The question asks: {_first_sentence(record.question)}",
        f"The key finding here points towards {text}.",
        f"Looking at the alternatives, {', '.join(others)} do not fit the overall picture as well.",
        f"Putting the findings together, option {letter} ({text}) is the best answer.",
        final_answer_line(letter, style),
    ]
    return "\n".join(steps)


def check_trace(record: MCQRecord, trace: str, intended: str) -> tuple[bool, str]:
    """Whether ``trace`` concludes with ``intended`` (and not the gold letter), read by
    the scoring core. Returns ``(ok, reason)``."""
    from lm_eval_medsplit.scoring import extract_answer

    if not isinstance(trace, str) or not trace.strip():
        return False, "empty trace"
    ex = extract_answer(trace, record.options, fuzzy=False)
    if ex.letter is None:
        return False, f"no final answer found ({ex.method})"
    if ex.letter == record.answer_idx:
        return False, f"concludes with the gold letter {ex.letter}"
    if ex.letter != intended:
        return False, f"concludes with {ex.letter}, intended {intended}"
    return True, "ok"


def add_offline_traces(records: Iterable[MCQRecord], n: int = N_TRACES, *,
                       overwrite: bool = False, style: str = "cot") -> int:
    """Give every record without traces ``n`` offline template traces, each ending with
    ``style``'s final-answer line (``Answer: X``, or ``\\boxed{X}`` for ``paper``).
    Returns how many records were changed."""
    from lm_eval_medsplit.prompts import check_style

    check_style(style)
    changed = 0
    for r in records:
        if r.adversarial_traces and not overwrite:
            continue
        if r.answer_idx is None or len(r.options) < 2:
            continue
        letters = wrong_letters(r, n)
        r.adversarial_traces = [offline_trace(r, k, letter=x, style=style)
                                for k, x in enumerate(letters)]
        r.adversarial_source = OFFLINE_SOURCE
        changed += 1
    return changed


def check_record_traces(record: MCQRecord) -> list[tuple[int, bool, str]]:
    """``(k, ok, reason)`` for every trace of ``record`` against ``wrong_letter(record, k)``
    (an empty slot, left by a rejected model trace, is reported as not ok)."""
    if not record.adversarial_traces:
        return []
    letters = wrong_letters(record, len(record.adversarial_traces))
    return [(k, *check_trace(record, t, letters[k])) for k, t in enumerate(record.adversarial_traces)]


def combined_source(model_source: str, n_offline: int) -> str:
    """``adversarial_source`` of a record whose model traces were partly replaced by
    offline templates: ``"<model_source>+offline-template"`` (never the bare model source)."""
    return f"{model_source}+{OFFLINE_SOURCE}" if n_offline else model_source


def is_model_source(source: str | None) -> bool:
    """Whether every trace of a record with this ``adversarial_source`` came from a model
    (not the offline template, not unknown)."""
    return bool(source) and OFFLINE_SOURCE not in source and (
        source.startswith("model:") or source.startswith("endpoint:"))
