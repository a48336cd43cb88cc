"""Deterministic choices over training records: selection, caps, adversarial rows.

Accepts: :class:`~lm_eval_medsplit.schema.MCQRecord` sequences (with ``reasoning_prob``
where a threshold is used) and a seed. Guarantees: every choice is a pure function of the
records' content hashes and the seed (the same input gives the same rows on any machine),
input order is kept, and rows are keyed by ``(benchmark, id)`` (:func:`row_key`), since
ids are unique within one benchmark only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from lm_eval_medsplit.schema import MCQRecord
from lm_eval_medsplit.train.arguments import TrainDataError


def _rank(record: MCQRecord, seed: int, salt: str) -> str:
    return hashlib.sha256(f"{seed}:{salt}:{record.content_hash()}".encode()).hexdigest()


def select_reasoning(records: Sequence[MCQRecord], threshold: float | None, *,
                     knowledge_ratio: float = 0.0, seed: int = 0) -> tuple[list[MCQRecord], dict[str, Any]]:
    """Rows with ``reasoning_prob`` at or above ``threshold`` (all rows when ``None``; the
    same rule as the classifier's ``is_reasoning``),
    plus knowledge rows so that they make up ``knowledge_ratio`` of the result (as many as
    there are when too few). Knowledge rows are chosen deterministically from ``seed``.
    Input order is kept. Every row's ``is_reasoning`` / ``reasoning_threshold`` is set from
    the threshold in use, so the rows say what the selection did.
    """
    if threshold is None:
        return list(records), {"threshold": None, "reasoning": len(records), "knowledge": 0,
                               "available_knowledge": 0}
    missing = [r.id for r in records if r.reasoning_prob is None]
    if missing:
        raise TrainDataError(f"{len(missing)} row(s) have no reasoning_prob (e.g. {missing[0]!r})")
    for r in records:  # a source label made at another threshold would contradict the selection
        r.is_reasoning = r.reasoning_prob >= threshold
        r.reasoning_threshold = threshold
    reasoning = [r for r in records if r.reasoning_prob >= threshold]
    knowledge = [r for r in records if r.reasoning_prob < threshold]
    n_k = 0
    if knowledge_ratio > 0 and knowledge:
        n_k = min(len(knowledge), round(len(reasoning) * knowledge_ratio / (1.0 - knowledge_ratio)))
    chosen = {id(r) for r in sorted(knowledge, key=lambda r: _rank(r, seed, "knowledge"))[:n_k]}
    out = [r for r in records if r.reasoning_prob >= threshold or id(r) in chosen]
    return out, {"threshold": threshold, "reasoning": len(reasoning), "knowledge": n_k,
                 "available_knowledge": len(knowledge)}


def cap(records: Sequence[MCQRecord], n: int | None, *, seed: int = 0,
        stratum: Callable[[MCQRecord], Any] | None = None) -> list[MCQRecord]:
    """A deterministic subset of ``n`` rows (input order kept). With ``stratum`` (e.g.
    reasoning vs knowledge), each stratum keeps its share of the rows (largest remainder),
    so a cap does not change the mix that selection made."""
    if n is None or n >= len(records):
        return list(records)
    groups: dict[Any, list[MCQRecord]] = {}
    for r in records:
        groups.setdefault(stratum(r) if stratum else None, []).append(r)
    quota = {k: n * len(v) / len(records) for k, v in groups.items()}
    take = {k: int(q) for k, q in quota.items()}
    for k in sorted(quota, key=lambda k: (quota[k] - take[k], str(k)), reverse=True)[:n - sum(take.values())]:
        take[k] += 1
    keep = set()
    for k, v in groups.items():
        keep.update(id(r) for r in sorted(v, key=lambda r: _rank(r, seed, "cap"))[:take[k]])
    return [r for r in records if id(r) in keep]


def row_key(record: MCQRecord) -> tuple[str, str]:
    """``(benchmark, id)``: ids are unique within a benchmark only (a JSONL file may mix)."""
    return record.benchmark, record.id


def choose_adversarial(records: Sequence[MCQRecord], share: float, *, seed: int = 0
                       ) -> set[tuple[str, str]]:
    """Keys (:func:`row_key`) of the ``round(share * n)`` rows rendered with an
    adversarial prefill, chosen deterministically from ``seed``."""
    n = round(share * len(records))
    ranked = sorted(records, key=lambda r: _rank(r, seed, "adversarial"))
    return {row_key(r) for r in ranked[:n]}
