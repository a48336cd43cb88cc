"""Canonical record -> Inspect ``Sample``.

The input messages come from :func:`lm_eval_medsplit.prompts.build_prompt` (the same
rendering the lm-eval tasks use, in the chosen style); ``choices`` are the option texts
and ``target`` is the gold letter, in the form inspect_evals' ``medqa`` uses (so ``inspect
view`` shows the options and Inspect's ``choice`` scorer could read them), and the metadata is the
per-sample contract :func:`lm_eval_medsplit.samples.sample_metadata` plus what the
scorer and the report need: the eval set's content hash, the source revision, the
record's options (the scorer reads them, exactly as ``scoring.score(output,
record.options, record.answer_idx)``), the prompt style and the adversarial mode asked
for. The solver may later change ``adversarial`` to the mode actually used.
"""

from __future__ import annotations

from typing import Any

from inspect_ai.dataset import Sample
from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
)

from lm_eval_medsplit.prompts import build_prompt
from lm_eval_medsplit.samples import sample_metadata
from lm_eval_medsplit.schema import MCQRecord

_ROLE_TO_MESSAGE = {
    "system": ChatMessageSystem,
    "user": ChatMessageUser,
    "assistant": ChatMessageAssistant,
}


def to_chat_messages(messages: list[dict[str, str]]) -> list[ChatMessage]:
    """Prompt-module message dicts as Inspect chat messages (roles kept in order)."""
    out: list[ChatMessage] = []
    for m in messages:
        try:
            cls = _ROLE_TO_MESSAGE[m["role"]]
        except KeyError:
            raise ValueError(f"unsupported message role {m['role']!r}") from None
        out.append(cls(content=m["content"]))
    return out


def sample_id(record: MCQRecord, trace_index: int | None = None) -> str:
    """Unique within a task that mixes benchmarks and traces: ``benchmark/id[#tK]``."""
    base = f"{record.benchmark}/{record.id}"
    return base if trace_index is None else f"{base}#t{trace_index}"


def record_to_sample(record: MCQRecord, *, style: str = "cot", adversarial: str | None = None,
                     trace_index: int | None = None, content_hash: str | None = None,
                     revision: str | None = None) -> Sample:
    """One record as one Inspect sample.

    ``adversarial`` is ``None`` (clean), ``"prefill"`` or ``"reconsider"``; then
    ``trace_index`` (default 0) picks ``record.adversarial_traces[trace_index]``, and a
    record without it raises :class:`lm_eval_medsplit.prompts.MissingTraceError`.
    A record without a gold letter cannot be scored and raises :class:`ValueError`.
    """
    if record.answer_idx is None:
        raise ValueError(f"record {record.id!r} of {record.benchmark} has no gold answer_idx; "
                         f"it cannot be evaluated")
    if adversarial is not None and trace_index is None:
        trace_index = 0
    prompt = build_prompt(record, style, adversarial=adversarial,
                          trace_index=trace_index if trace_index is not None else 0)
    metadata: dict[str, Any] = sample_metadata(
        record, adversarial=adversarial, trace_index=trace_index if adversarial else None)
    metadata.update({
        "content_hash": content_hash,
        "revision": revision,
        "options": dict(record.options),
        "style": style,
        "adversarial_requested": adversarial,
    })
    return Sample(
        id=sample_id(record, trace_index if adversarial else None),
        input=to_chat_messages(prompt.messages),
        choices=list(record.options.values()),
        target=record.answer_idx,
        metadata=metadata,
    )
