"""The per-sample contract between the adapters and the report.

Every adapter (lm-eval doc, Inspect sample metadata, TRL dataset row) carries
:func:`sample_metadata` of its record, and every scored output is described by
:func:`score_fields`, so ``medsplit report`` can read any harness's per-sample logs
into :class:`SampleRow` objects and join them back to the records by id and hash.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lm_eval_medsplit.schema import MCQRecord

#: Keys of :func:`sample_metadata`; adapters must not rename them.
METADATA_KEYS = ("id", "benchmark", "subset", "reasoning_prob", "is_reasoning",
                 "record_hash", "adversarial", "trace_index", "adversarial_source")


def sample_metadata(record: MCQRecord, *, adversarial: str | None = None,
                    trace_index: int | None = None) -> dict[str, Any]:
    """Metadata every adapter attaches to a sample of ``record``."""
    return {
        "id": record.id,
        "benchmark": record.benchmark,
        "subset": record.subset,
        "reasoning_prob": record.reasoning_prob,
        "is_reasoning": record.is_reasoning,
        "record_hash": record.content_hash(),
        "adversarial": adversarial,
        "trace_index": trace_index,
        "adversarial_source": record.adversarial_source if adversarial else None,
    }


def score_fields(score) -> dict[str, Any]:
    """A :class:`lm_eval_medsplit.scoring.Score` as flat JSON fields."""
    return {"pred": score.pred, "method": score.method, "outcome": score.outcome.value,
            "correct": score.outcome.value == "correct",
            "parsed": score.pred is not None}


@dataclass
class SampleRow:
    """One scored sample, whatever harness produced it."""

    model: str
    harness: str  # "lm-eval" | "inspect"
    task: str
    benchmark: str
    id: str
    subset: str | None
    reasoning_prob: float | None
    record_hash: str | None
    adversarial: str | None
    trace_index: int | None
    pred: str | None
    method: str | None
    outcome: str  # correct | incorrect | unparsed
    output: str | None = None
    content_hash: str | None = None
    """Content hash of the evaluation set the run used (from the run's provenance)."""
    revision: str | None = None
    repeat: int | None = None
    """Which of several samples of one prompt this is (lm-eval ``repeats``, Inspect
    ``--epochs``; 0-based), ``None`` when the run drew one."""

    @property
    def correct(self) -> bool:
        return self.outcome == "correct"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
