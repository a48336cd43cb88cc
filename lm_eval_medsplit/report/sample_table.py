"""Accepted sample rows packed into columns, and the grouping helpers every table uses.

Accepts: :class:`~lm_eval_medsplit.samples.SampleRow` objects (accepted by
:mod:`lm_eval_medsplit.report.join`).

Guarantees: :class:`SampleTable` holds them as parallel numpy arrays of codes (models
in the given or sorted order, benchmarks in registry order, ``clean`` first among the
conditions), so 150k samples are grouped with a few sorts instead of Python loops;
:func:`_groups` and :func:`_per_question_mean` are deterministic (sorted keys, one value
per question). The labels shared by every table (:data:`CLEAN`, :data:`ALL`,
:data:`MACRO`, ...) are defined here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from lm_eval_medsplit.registry import BENCHMARKS
from lm_eval_medsplit.samples import SampleRow

CLEAN = "clean"
SUBSETS = ("knowledge", "reasoning")
_SUBSET_CODE = {"knowledge": 0, "reasoning": 1}
PROB_BINS = tuple(round(x, 2) for x in np.linspace(0.0, 1.0, 11))
SWEEP_THRESHOLDS = tuple(round(x, 2) for x in np.arange(0.05, 0.951, 0.05))
ALL = "all"  # benchmark label of pooled (size-weighted) rows
MACRO = "macro"  # benchmark label of macro-average rows


def benchmark_order(names: Iterable[str]) -> list[str]:
    """Registry order first (by short name), then unknown benchmarks alphabetically."""
    names = set(names)
    known = [b.name for b in BENCHMARKS if b.name in names]
    return known + sorted(names - set(known))


@dataclass
class SampleTable:
    """Accepted samples as parallel numpy arrays of codes."""

    models: list[str]
    benchmarks: list[str]
    conditions: list[str]
    """``clean`` first, then the adversarial modes."""
    methods: list[str]
    model: np.ndarray
    bench: np.ndarray
    subset: np.ndarray
    """0 knowledge, 1 reasoning, -1 unlabelled."""
    cond: np.ndarray
    trace: np.ndarray
    """trace index, -1 for clean samples."""
    qid: np.ndarray
    """question code, unique per (benchmark, id)."""
    correct: np.ndarray
    parsed: np.ndarray
    prob: np.ndarray
    """reasoning_prob, NaN when absent."""
    method: np.ndarray
    rep: np.ndarray | None = None
    """repeat index of the sample (0 when the run drew one sample per prompt)."""
    pred: np.ndarray | None = None
    """predicted letter code (index into :attr:`preds`), -1 when unparsed."""
    preds: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(self.model.size)

    @classmethod
    def from_rows(cls, rows: Sequence[SampleRow], models: Sequence[str] | None = None) -> SampleTable:
        model_names = list(models) if models is not None else sorted({r.model for r in rows})
        mcode = {m: i for i, m in enumerate(model_names)}
        benches = benchmark_order({r.benchmark for r in rows})
        bcode = {b: i for i, b in enumerate(benches)}
        modes = sorted({r.adversarial for r in rows if r.adversarial})
        conditions = [CLEAN] + modes
        ccode = {c: i for i, c in enumerate(conditions)}
        methods: dict[str, int] = {}
        qcode: dict[tuple[str, str], int] = {}
        n = len(rows)
        model = np.empty(n, np.int32)
        bench = np.empty(n, np.int32)
        subset = np.empty(n, np.int8)
        cond = np.empty(n, np.int16)
        trace = np.empty(n, np.int16)
        qid = np.empty(n, np.int64)
        correct = np.empty(n, bool)
        parsed = np.empty(n, bool)
        prob = np.empty(n, float)
        method = np.empty(n, np.int16)
        rep = np.zeros(n, np.int32)
        pred = np.full(n, -1, np.int16)
        pcode: dict[str, int] = {}
        nan = math.nan
        for i, r in enumerate(rows):
            model[i] = mcode[r.model]
            bench[i] = bcode[r.benchmark]
            subset[i] = _SUBSET_CODE.get(r.subset, -1)  # type: ignore[arg-type]
            cond[i] = ccode[r.adversarial or CLEAN]
            trace[i] = -1 if not r.adversarial else (r.trace_index if r.trace_index is not None else 0)
            qid[i] = qcode.setdefault((r.benchmark, r.id), len(qcode))
            correct[i] = r.outcome == "correct"
            parsed[i] = r.outcome != "unparsed"
            prob[i] = nan if r.reasoning_prob is None else r.reasoning_prob
            method[i] = methods.setdefault(r.method or "none", len(methods))
            if r.repeat:
                rep[i] = r.repeat
            if r.pred is not None and r.outcome != "unparsed":
                pred[i] = pcode.setdefault(r.pred, len(pcode))
        return cls(model_names, benches, conditions, list(methods), model, bench, subset,
                   cond, trace, qid, correct, parsed, prob, method, rep, pred, list(pcode))


def _groups(*keys: np.ndarray) -> dict[tuple[int, ...], np.ndarray]:
    """Index arrays of the rows of each distinct key tuple."""
    if not keys or keys[0].size == 0:
        return {}
    order = np.lexsort(keys[::-1])
    stacked = np.stack([k[order] for k in keys], axis=1)
    change = np.any(stacked[1:] != stacked[:-1], axis=1)
    starts = np.concatenate([[0], np.nonzero(change)[0] + 1])
    bounds = np.append(starts, order.size)
    return {tuple(int(x) for x in stacked[s]): order[s:e] for s, e in zip(bounds[:-1], bounds[1:])}


def _per_question_mean(qid: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean of ``values`` per distinct question (one value per question)."""
    if qid.size == 0:
        return np.zeros(0)
    uq, inv = np.unique(qid, return_inverse=True)
    if uq.size == qid.size:
        return np.asarray(values, float)
    sums = np.bincount(inv, weights=np.asarray(values, float), minlength=uq.size)
    cnt = np.bincount(inv, minlength=uq.size)
    return sums / cnt
