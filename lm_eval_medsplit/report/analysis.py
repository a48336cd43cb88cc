"""Every number of the report, computed from scored samples.

Input: accepted :class:`~lm_eval_medsplit.samples.SampleRow` objects (one per model,
benchmark, question and condition, see :mod:`lm_eval_medsplit.report.join`). They are
packed into a columnar :class:`SampleTable` (numpy arrays of codes) so 150k samples are
grouped with a few sorts instead of Python loops.

Definitions (the README of the report and the HTML repeat them):

- accuracy: correct / all samples of the group; an unparsed output counts as wrong.
- parse rate: samples with a parsed letter / all samples.
- gap: knowledge accuracy minus reasoning accuracy (clean samples; positive when the
  reasoning questions are harder).
- macro average: mean of the per-benchmark values; size-weighted: pooled over all
  samples of the benchmarks (each question counts once).
- adversarial: per trace index, accuracy on the adversarial samples; "mean" averages
  each question's adversarial correctness over its traces. The drop is clean minus
  adversarial accuracy on the questions present in both runs (paired); flips count
  clean-correct -> adversarial-wrong and the reverse, and the exact McNemar test is done
  per trace (one adversarial sample per question, so pairs are independent).
- reasoning vs knowledge drop: the per-question drop (clean minus mean adversarial
  correctness) averaged on each subset; the difference is reasoning minus knowledge
  (positive when reasoning questions lose more).
- intervals: Wilson score intervals for accuracies with one sample per question; 95%
  percentile bootstrap over *questions* for means of per-question values (adversarial
  traces, repeated samples; Wilson where every question has the same value), gaps (the
  gap falls back to Newcombe's interval where the bootstrap cannot vary) and drops
  (paired: each question's clean and adversarial correctness resampled together; Newcombe's
  paired interval where the bootstrap cannot vary); stratified by benchmark and subset for
  averages. No interval has zero width: macro averages fall back to the mean of the
  benchmarks' Wilson bounds, differences of estimates to square-and-add (see
  :mod:`lm_eval_medsplit.report.stats`).
- repeated samples (lm-eval ``repeats``, Inspect ``--epochs``): each question's samples
  are averaged first (the accuracy is pass@1, the mean over questions of each question's
  share of correct samples); the ``repeats`` table adds maj@k (the majority answer of the
  k samples; a tie counts as the chance the gold letter wins it) and the unbiased pass@k.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lm_eval_medsplit.registry import BENCHMARKS
from lm_eval_medsplit.report import stats
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


def _r(x: float | None, nd: int = 6) -> float | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return round(float(x), nd)


def _ci(draws: np.ndarray) -> tuple[float | None, float | None]:
    lo, hi = stats.interval(draws)
    return _r(lo), _r(hi)


@dataclass
class ReportData:
    """Tidy tables (lists of dicts with stable keys) behind every output format."""

    models: list[str]
    benchmarks: list[str]
    conditions: list[str]
    accuracy: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    adversarial: list[dict[str, Any]] = field(default_factory=list)
    adversarial_subsets: list[dict[str, Any]] = field(default_factory=list)
    prob_bins: list[dict[str, Any]] = field(default_factory=list)
    threshold_sweep: list[dict[str, Any]] = field(default_factory=list)
    parse: list[dict[str, Any]] = field(default_factory=list)
    repeats: list[dict[str, Any]] = field(default_factory=list)
    gallery: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    flagged: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    """benchmark -> source, revision, content_hash, labels_from (the classifier)."""

    TABLES = ("accuracy", "gaps", "adversarial", "adversarial_subsets", "prob_bins",
              "threshold_sweep", "parse", "repeats", "runs", "flagged", "gallery")

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"settings": self.settings, "models": self.models,
                             "benchmarks": self.benchmarks, "conditions": self.conditions}
        for name in self.TABLES:
            d[name] = getattr(self, name)
        d["notes"] = self.notes
        d["provenance"] = self.provenance
        return d


class Analyser:
    """Computes :class:`ReportData` from a :class:`SampleTable`."""

    def __init__(self, table: SampleTable, *, b: int = stats.DEFAULT_B,
                 seed: int = stats.DEFAULT_SEED):
        self.t = table
        self.b = b
        self.seed = seed
        # draws kept for averages: (model, bench, subset) -> draws of clean accuracy
        self._acc_draws: dict[tuple[int, int, int], np.ndarray] = {}
        self._acc_n: dict[tuple[int, int, int], tuple[int, int]] = {}

    def rng(self, *key: Any) -> np.random.Generator:
        return stats.rng_for("|".join(str(k) for k in key), self.seed)

    # ------------------------------------------------------------------ run all
    def run(self) -> ReportData:
        t = self.t
        data = ReportData(list(t.models), list(t.benchmarks), list(t.conditions),
                          settings={"bootstrap_replicates": self.b, "seed": self.seed,
                                    "confidence": stats.CONFIDENCE,
                                    "gap": "knowledge accuracy - reasoning accuracy",
                                    "drop": "clean accuracy - adversarial accuracy (paired)",
                                    "drop_difference": "reasoning drop - knowledge drop"})
        self.accuracy(data)
        self.gaps(data)
        self.adversarial(data)
        self.prob_curves(data)
        self.parse(data)
        self.repeats(data)
        return data

    # ------------------------------------------------------------------ accuracy
    def accuracy(self, data: ReportData) -> None:
        t = self.t
        unlabelled = int((t.subset < 0).sum())
        if unlabelled:
            data.notes.append(f"{unlabelled:,} sample(s) have no reasoning/knowledge label; they count "
                              f"in the 'all' accuracies only")
        for cond_i, cond in enumerate(t.conditions):
            sel = t.cond == cond_i
            if not sel.any():
                continue
            idx_all = np.nonzero(sel)[0]
            g = _groups(t.model[idx_all], t.bench[idx_all], t.subset[idx_all])
            per_mb: dict[tuple[int, int], list[np.ndarray]] = {}
            for (m, bq, s), rows in sorted(g.items()):
                rows = idx_all[rows]
                per_mb.setdefault((m, bq), []).append(rows)
                if s < 0:
                    continue
                data.accuracy.append(self._acc_row(m, bq, SUBSETS[s], cond, rows, keep=cond == CLEAN, s=s))
            for (m, bq), parts in sorted(per_mb.items()):
                rows = np.concatenate(parts)
                data.accuracy.append(self._acc_row(m, bq, "all", cond, rows, keep=False, s=None))

    def _acc_row(self, m: int, bq: int, subset: str, cond: str, rows: np.ndarray, *,
                 keep: bool, s: int | None) -> dict[str, Any]:
        t = self.t
        n = int(rows.size)
        k = int(t.correct[rows].sum())
        p = int(t.parsed[rows].sum())
        rng = self.rng("acc", t.models[m], t.benchmarks[bq], subset, cond)
        acc = k / n
        units = n  # what the standard error counts: samples, or questions
        qv = _per_question_mean(t.qid[rows], t.correct[rows])
        if qv.size < n:
            # several samples of one question (adversarial traces, repeats): the estimate
            # is the mean over questions, and the draws resample questions
            acc = float(qv.mean())
            units = int(qv.size)
            draws = stats.bootstrap_means(qv, rng, self.b)
            se = float(qv.std(ddof=1) / np.sqrt(units)) if units > 1 else None
            lo, hi = (_r(x) for x in stats.mean_interval(qv, draws))
        else:
            draws = stats.bootstrap_proportion(k, n, rng, self.b)
            se = stats.binomial_stderr(acc, n)
            lo, hi = (_r(x) for x in stats.wilson(k, n))
        if keep and s is not None:
            self._acc_draws[(m, bq, s)] = draws
            self._acc_n[(m, bq, s)] = (acc * units, units)
        return {"model": t.models[m], "benchmark": t.benchmarks[bq], "condition": cond,
                "subset": subset, "n": n, "correct": k, "parsed": p,
                "accuracy": _r(acc), "stderr": _r(se), "questions": units, "ci_low": lo, "ci_high": hi,
                "parse_rate": _r(p / n)}

    # ------------------------------------------------------------------ gaps
    def gaps(self, data: ReportData) -> None:
        t = self.t
        parsed_by = _parse_counts(t, CLEAN)
        for m, model in enumerate(t.models):
            ks: dict[int, list[int]] = {0: [], 1: []}
            for bq, bench in enumerate(t.benchmarks):
                if (m, bq, 0) not in self._acc_n and (m, bq, 1) not in self._acc_n:
                    continue
                row = {"model": model, "benchmark": bench, "level": "benchmark"}
                est: dict[int, float] = {}
                draws: dict[int, np.ndarray] = {}
                for s in (0, 1):
                    if (m, bq, s) in self._acc_n:
                        ks[s].append(bq)
                        k, n = self._acc_n[(m, bq, s)]
                        est[s], draws[s] = k / n, self._acc_draws[(m, bq, s)]
                        row.update(_subset_cols(SUBSETS[s], est[s], n, draws[s], count=k))
                    else:
                        row.update(_subset_cols(SUBSETS[s], None, 0, None))
                row.update(_gap_cols(draws, est, counts={s: self._acc_n[(m, bq, s)] for s in est}))
                pn, pp = parsed_by.get((m, bq), (0, 0))
                row["n"] = pn
                row["parse_rate"] = _r(pp / pn) if pn else None
                data.gaps.append(row)
            if not ks[0] and not ks[1]:
                continue
            used = sorted(set(ks[0]) | set(ks[1]))
            pcounts = [parsed_by.get((m, bq), (0, 0)) for bq in used]
            # the gap compares like with like: only benchmarks that have both subsets
            paired = sorted(set(ks[0]) & set(ks[1]))
            if ks[0] and ks[1] and len(paired) < len(used):
                lone = ", ".join(t.benchmarks[bq] for bq in used if bq not in paired)
                data.notes.append(f"{model}: the macro and weighted gaps cover the {len(paired)} "
                                  f"benchmark(s) with both subsets; {lone} lack(s) one (the subset "
                                  f"accuracies include them)")
            # macro: mean over benchmarks; weighted: pooled over samples (stratified draws)
            for level in (MACRO, ALL):
                row = {"model": model, "benchmark": level,
                       "level": "macro" if level == MACRO else "weighted"}
                est, draws = {}, {}
                for s in (0, 1):
                    if not ks[s]:
                        row.update(_subset_cols(SUBSETS[s], None, 0, None))
                        row[f"{SUBSETS[s]}_benchmarks"] = 0
                        continue
                    est[s], draws[s] = self._pool(m, ks[s], s, level)
                    n_s = sum(self._acc_n[(m, bq, s)][1] for bq in ks[s])
                    row.update(_subset_cols(SUBSETS[s], est[s], n_s, draws[s],
                                            count=est[s] * n_s if level == ALL else None,
                                            fallback=self._subset_ci(m, ks[s], s, level)))
                    row[f"{SUBSETS[s]}_benchmarks"] = len(ks[s])
                if paired and len(paired) < len(used):
                    for s in (0, 1):
                        est[s], draws[s] = self._pool(m, paired, s, level)
                row.update(_gap_cols(draws, est, fallback={s: self._subset_ci(m, paired, s, level)
                                                           for s in (0, 1)})
                           if paired else _gap_cols({}, {}))
                row["gap_benchmarks"] = len(paired)
                row["n"] = int(sum(n for n, _ in pcounts))
                if level == MACRO:
                    rates = [p / n for n, p in pcounts if n]
                    row["parse_rate"] = _r(float(np.mean(rates))) if rates else None
                else:
                    row["parse_rate"] = _r(sum(p for _, p in pcounts) / row["n"]) if row["n"] else None
                data.gaps.append(row)

    def _subset_ci(self, m: int, bqs: list[int], s: int, level: str) -> tuple[float | None, float | None]:
        """The boundary-honest interval of subset ``s`` over benchmarks ``bqs`` (the
        fallback where the draws cannot vary): Wilson of the pooled count (weighted), the
        mean of the benchmarks' Wilson bounds (macro)."""
        counts = [self._acc_n[(m, bq, s)] for bq in bqs]
        if level == ALL:
            return stats.wilson(sum(k for k, _ in counts), int(sum(n for _, n in counts)))
        bounds = np.array([stats.wilson(k, int(n)) for k, n in counts], float)
        return float(bounds[:, 0].mean()), float(bounds[:, 1].mean())

    def _pool(self, m: int, bqs: list[int], s: int, level: str) -> tuple[float, np.ndarray]:
        """Accuracy of subset ``s`` over benchmarks ``bqs``, and its draws: the mean of the
        benchmarks (macro) or pooled over samples (weighted; stratified draws)."""
        counts = np.array([self._acc_n[(m, bq, s)] for bq in bqs], float)
        mats = np.stack([self._acc_draws[(m, bq, s)] for bq in bqs])
        if level == MACRO:
            return float(np.mean(counts[:, 0] / counts[:, 1])), mats.mean(axis=0)
        return (float(counts[:, 0].sum() / counts[:, 1].sum()),
                (mats * counts[:, 1:2]).sum(axis=0) / counts[:, 1].sum())

    # ------------------------------------------------------------------ adversarial
    def adversarial(self, data: ReportData) -> None:
        t = self.t
        n_q = int(t.qid.max()) + 1 if t.n else 0
        clean_sel = t.cond == 0
        for m, model in enumerate(t.models):
            # clean correctness per question, averaged over repeats (-1 = no clean sample)
            cm = clean_sel & (t.model == m)
            hits = np.bincount(t.qid[cm], weights=t.correct[cm], minlength=n_q)
            cnt = np.bincount(t.qid[cm], minlength=n_q)
            clean = np.full(n_q, -1.0)
            np.divide(hits, cnt, out=clean, where=cnt > 0)
            self._repeated = bool(t.rep is not None and (t.rep[t.model == m] > 0).any())
            for ci in range(1, len(t.conditions)):
                mode = t.conditions[ci]
                sel = np.nonzero((t.cond == ci) & (t.model == m))[0]
                if sel.size == 0:
                    continue
                pooled: dict[Any, list[dict[str, np.ndarray]]] = {}
                bench_rows: list[dict[str, Any]] = []
                for (bq,), rows in sorted(_groups(t.bench[sel]).items()):
                    rows = sel[rows]
                    parts = self._adv_parts(rows, clean)
                    pooled.setdefault("parts", []).append(parts)
                    bench_rows += self._adv_rows(model, t.benchmarks[bq], "benchmark", mode, [parts])
                    data.adversarial_subsets.append(
                        self._adv_subset_row(model, t.benchmarks[bq], "benchmark", mode, [parts]))
                data.adversarial.extend(bench_rows)
                allparts = pooled["parts"]
                data.adversarial.extend(self._adv_macro(model, mode, bench_rows))
                data.adversarial.extend(self._adv_rows(model, ALL, "weighted", mode, allparts))
                data.adversarial_subsets.append(
                    self._adv_subset_row(model, ALL, "weighted", mode, allparts))

    def _adv_parts(self, rows: np.ndarray, clean: np.ndarray) -> dict[str, np.ndarray]:
        t = self.t
        return {"qid": t.qid[rows], "trace": t.trace[rows], "correct": t.correct[rows],
                "parsed": t.parsed[rows], "clean": clean[t.qid[rows]], "subset": t.subset[rows],
                "bench": t.bench[rows]}

    def _adv_rows(self, model: str, bench: str, level: str, mode: str,
                  parts: list[dict[str, np.ndarray]]) -> list[dict[str, Any]]:
        p = {k: np.concatenate([x[k] for x in parts]) for k in parts[0]}
        # questions are distinct across benchmarks: qid is global
        out = []
        traces = sorted(int(x) for x in np.unique(p["trace"]))
        for tr in traces + ["mean"]:
            sel = np.ones(p["qid"].size, bool) if tr == "mean" else p["trace"] == tr
            q, corr, cl, pars = p["qid"][sel], p["correct"][sel], p["clean"][sel], p["parsed"][sel]
            n = int(q.size)
            qv = _per_question_mean(q, corr)
            nq = int(qv.size)
            rng = self.rng("adv", model, bench, mode, tr)
            acc = qv.mean() if n else None
            acc_draws = stats.bootstrap_means(qv, rng, self.b)
            paired = cl >= 0
            npair = int(paired.sum())
            row: dict[str, Any] = {
                "model": model, "benchmark": bench, "level": level, "mode": mode,
                "trace": str(tr), "n": n, "questions": nq,
                "accuracy": _r(acc),
                **dict(zip(("ci_low", "ci_high"), (_r(x) for x in stats.mean_interval(qv, acc_draws)))),
                "parse_rate": _r(pars.mean()) if n else None,
                "paired": npair,
            }
            if npair:
                qp, cp, clp = q[paired], corr[paired].astype(float), cl[paired].astype(float)
                drop_q = _per_question_mean(qp, clp - cp)
                clean_acc = float(_per_question_mean(qp, clp).mean())
                adv_acc = float(_per_question_mean(qp, cp).mean())
                d = stats.bootstrap_means(drop_q, rng, self.b)
                c2w = int(((clp == 1) & (cp == 0)).sum())
                w2c = int(((clp == 0) & (cp == 1)).sum())
                row.update({"clean_accuracy": _r(clean_acc), "paired_accuracy": _r(adv_acc),
                            "drop": _r(clean_acc - adv_acc),
                            **dict(zip(("drop_ci_low", "drop_ci_high"), _drop_ci(d, qp, clp, cp))),
                            "correct_to_wrong": c2w, "wrong_to_correct": w2c,
                            "mcnemar_p": None if (tr == "mean" or self._repeated)
                            else _r(stats.mcnemar_exact(c2w, w2c), 10)})
            else:
                row.update({"clean_accuracy": None, "paired_accuracy": None, "drop": None,
                            "drop_ci_low": None, "drop_ci_high": None,
                            "correct_to_wrong": None, "wrong_to_correct": None, "mcnemar_p": None})
            out.append(row)
        return out

    def _adv_macro(self, model: str, mode: str, bench_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for tr in dict.fromkeys(r["trace"] for r in bench_rows):
            rows = [r for r in bench_rows if r["trace"] == tr]
            accs = [r["accuracy"] for r in rows if r["accuracy"] is not None]
            drops = [r["drop"] for r in rows if r["drop"] is not None]
            out.append({"model": model, "benchmark": MACRO, "level": "macro", "mode": mode,
                        "trace": tr, "n": sum(r["n"] for r in rows),
                        "questions": sum(r["questions"] for r in rows),
                        "accuracy": _r(np.mean(accs)) if accs else None,
                        "ci_low": None, "ci_high": None,
                        "parse_rate": _r(np.mean([r["parse_rate"] for r in rows])) if rows else None,
                        "paired": sum(r["paired"] for r in rows),
                        "clean_accuracy": _r(np.mean([r["clean_accuracy"] for r in rows if r["drop"] is not None])) if drops else None,
                        "paired_accuracy": _r(np.mean([r["paired_accuracy"] for r in rows if r["drop"] is not None])) if drops else None,
                        "drop": _r(np.mean(drops)) if drops else None,
                        "drop_ci_low": None, "drop_ci_high": None,
                        "correct_to_wrong": sum(r["correct_to_wrong"] or 0 for r in rows) if drops else None,
                        "wrong_to_correct": sum(r["wrong_to_correct"] or 0 for r in rows) if drops else None,
                        "mcnemar_p": None, "benchmarks": len(drops)})
        return out

    def _adv_subset_row(self, model: str, bench: str, level: str, mode: str,
                        parts: list[dict[str, np.ndarray]]) -> dict[str, Any]:
        p = {k: np.concatenate([x[k] for x in parts]) for k in parts[0]}
        paired = p["clean"] >= 0
        row: dict[str, Any] = {"model": model, "benchmark": bench, "level": level, "mode": mode}
        draws = {}
        for s, name in enumerate(SUBSETS):
            sel = paired & (p["subset"] == s)
            q = p["qid"][sel]
            drop_q = _per_question_mean(q, p["clean"][sel].astype(float) - p["correct"][sel])
            d = stats.bootstrap_means(drop_q, self.rng("advsub", model, bench, mode, name), self.b)
            draws[s] = d
            lo, hi = _drop_ci(d, q, p["clean"][sel].astype(float), p["correct"][sel].astype(float))
            row.update({f"{name}_questions": int(drop_q.size),
                        f"{name}_drop": _r(drop_q.mean()) if drop_q.size else None,
                        f"{name}_drop_ci_low": lo, f"{name}_drop_ci_high": hi})
        if row["reasoning_drop"] is not None and row["knowledge_drop"] is not None:
            diff = row["reasoning_drop"] - row["knowledge_drop"]
            lo, hi = _ci(draws[1] - draws[0])
            if stats.degenerate(lo, hi):  # both subsets' drops constant: square-and-add
                lo, hi = (_r(x) for x in stats.mover_diff(
                    row["reasoning_drop"], (row["reasoning_drop_ci_low"], row["reasoning_drop_ci_high"]),
                    row["knowledge_drop"], (row["knowledge_drop_ci_low"], row["knowledge_drop_ci_high"])))
            row.update({"difference": _r(diff), "difference_ci_low": lo, "difference_ci_high": hi,
                        "larger_drop": "reasoning" if diff > 0 else "knowledge" if diff < 0 else "equal"})
        else:
            row.update({"difference": None, "difference_ci_low": None, "difference_ci_high": None,
                        "larger_drop": None})
        return row

    # ------------------------------------------------------------------ reasoning_prob
    def prob_curves(self, data: ReportData) -> None:
        t = self.t
        base = (t.cond == 0) & ~np.isnan(t.prob)
        if not base.any():
            if t.n:
                data.notes.append("no clean samples with a reasoning_prob: accuracy-vs-probability "
                                  "curves and the threshold sweep are omitted")
            return
        edges = np.array(PROB_BINS)
        for m, model in enumerate(t.models):
            sel_m = base & (t.model == m)
            if not sel_m.any():
                continue
            scopes = [(ALL, sel_m)] + [(t.benchmarks[bq], sel_m & (t.bench == bq))
                                       for bq in range(len(t.benchmarks))]
            for bench, sel in scopes:
                if not sel.any():
                    continue
                pr, corr = t.prob[sel], t.correct[sel]
                b = np.clip(np.searchsorted(edges, pr, side="right") - 1, 0, len(edges) - 2)
                for i in range(len(edges) - 1):
                    inb = b == i
                    n = int(inb.sum())
                    if not n:
                        continue
                    k = int(corr[inb].sum())
                    qv = _per_question_mean(t.qid[sel][inb], corr[inb])
                    lo, hi = (_r(x) for x in stats.wilson(float(qv.sum()), int(qv.size)))
                    data.prob_bins.append({"model": model, "benchmark": bench,
                                           "bin_low": float(edges[i]), "bin_high": float(edges[i + 1]),
                                           "n": n, "correct": k, "accuracy": _r(k / n),
                                           "ci_low": lo, "ci_high": hi})
                if bench != ALL:
                    continue
                for th in SWEEP_THRESHOLDS:
                    r = pr >= th
                    nr, nk = int(r.sum()), int((~r).sum())
                    kr, kk = int(corr[r].sum()), int(corr[~r].sum())
                    row = {"model": model, "benchmark": bench, "threshold": th,
                           "reasoning_n": nr, "knowledge_n": nk,
                           "reasoning_accuracy": _r(kr / nr) if nr else None,
                           "knowledge_accuracy": _r(kk / nk) if nk else None}
                    if nr and nk:
                        rng = self.rng("sweep", model, th)
                        d = (stats.bootstrap_proportion(kk, nk, rng, self.b)
                             - stats.bootstrap_proportion(kr, nr, rng, self.b))
                        lo, hi = _ci(d)
                        if stats.degenerate(lo, hi):
                            lo, hi = _newcombe_2indep(kk, nk, kr, nr)
                        row.update({"gap": _r(kk / nk - kr / nr), "gap_ci_low": lo, "gap_ci_high": hi})
                    else:
                        row.update({"gap": None, "gap_ci_low": None, "gap_ci_high": None})
                    data.threshold_sweep.append(row)

    # ------------------------------------------------------------------ repeats
    def repeats(self, data: ReportData) -> None:
        """pass@1, maj@k and pass@k per model, benchmark and subset, where the clean run
        drew several samples per question; intervals resample questions."""
        t = self.t
        if t.rep is None or not (t.rep > 0).any():
            return
        sel = np.nonzero(t.cond == 0)[0]
        for (m, bq), rows in sorted(_groups(t.model[sel], t.bench[sel]).items()):
            rows = sel[rows]
            q = t.qid[rows]
            uq, inv, cnt = np.unique(q, return_inverse=True, return_counts=True)
            if cnt.max() < 2:
                continue
            k = int(cnt.min())
            c = np.bincount(inv, weights=t.correct[rows], minlength=uq.size)
            maj = _majority(inv, t.pred[rows], t.correct[rows], uq.size)
            pk = stats.pass_at_k(cnt, c, k)
            sub = np.full(uq.size, -1, np.int8)
            sub[inv] = t.subset[rows]
            for name, mask in (("all", np.ones(uq.size, bool)),
                               *((SUBSETS[s], sub == s) for s in (0, 1))):
                if not mask.any():
                    continue
                row: dict[str, Any] = {"model": t.models[m], "benchmark": t.benchmarks[bq],
                                       "subset": name, "questions": int(mask.sum()), "k": k,
                                       "samples": int(cnt[mask].sum())}
                for key, vals in (("pass@1", c[mask] / cnt[mask]), (f"maj@{k}", maj[mask]),
                                  (f"pass@{k}", pk[mask])):
                    draws = stats.bootstrap_means(vals, self.rng("rep", t.models[m], t.benchmarks[bq], name, key),
                                                  self.b)
                    lo, hi = stats.mean_interval(vals, draws)
                    label = key.split("@")[0] + ("@k" if key != "pass@1" else "@1")
                    row.update({label: _r(vals.mean()), f"{label}_ci_low": _r(lo), f"{label}_ci_high": _r(hi)})
                data.repeats.append(row)
        if (t.rep[t.cond > 0] > 0).any():
            data.notes.append("adversarial samples were drawn several times per trace: each question's "
                              "samples are averaged; the per-trace McNemar test is omitted")

    # ------------------------------------------------------------------ parsing
    def parse(self, data: ReportData) -> None:
        t = self.t
        for (m, bq, c), rows in sorted(_groups(t.model, t.bench, t.cond).items()):
            counts = np.bincount(t.method[rows], minlength=len(t.methods))
            n = int(rows.size)
            p = int(t.parsed[rows].sum())
            data.parse.append({"model": t.models[m], "benchmark": t.benchmarks[bq],
                               "condition": t.conditions[c], "n": n, "parsed": p,
                               "unparsed": n - p, "parse_rate": _r(p / n),
                               "methods": {t.methods[i]: int(v) for i, v in enumerate(counts) if v}})


def _parse_counts(t: SampleTable, cond: str) -> dict[tuple[int, int], tuple[int, int]]:
    ci = t.conditions.index(cond) if cond in t.conditions else -1
    sel = np.nonzero(t.cond == ci)[0]
    out = {}
    for (m, bq), rows in _groups(t.model[sel], t.bench[sel]).items():
        rows = sel[rows]
        out[(m, bq)] = (int(rows.size), int(t.parsed[rows].sum()))
    return out


def _majority(inv: np.ndarray, pred: np.ndarray, correct: np.ndarray, nq: int) -> np.ndarray:
    """maj@k per question: 1 when the most frequent parsed answer is the gold one, 1/m
    when it ties with m - 1 others, else 0 (no parsed answer: 0). The gold letter is the
    prediction of a correct sample (unknown, so 0, when none is correct)."""
    out = np.zeros(nq)
    order = np.argsort(inv, kind="stable")
    bounds = np.searchsorted(inv[order], np.arange(nq + 1))
    for qi in range(nq):
        idx = order[bounds[qi]:bounds[qi + 1]]
        ok = correct[idx]
        if not ok.any():
            continue
        p = pred[idx]
        p = p[p >= 0]
        vals, counts = np.unique(p, return_counts=True)
        top = vals[counts == counts.max()]
        gold = pred[idx][ok][0]
        if gold in top:
            out[qi] = 1.0 / top.size
    return out


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


def _subset_cols(name: str, acc: float | None, n: int, draws: np.ndarray | None,
                 count: float | None = None,
                 fallback: tuple[float | None, float | None] | None = None) -> dict[str, Any]:
    """``count`` (correct questions) given: the Wilson interval of ``count / n``; else the
    percentile interval of ``draws`` (macro averages), or ``fallback`` where it has zero
    width."""
    if count is not None and n:
        lo, hi = (_r(x) for x in stats.wilson(count, n))
    else:
        lo, hi = _ci(draws) if draws is not None else (None, None)
        if fallback is not None and stats.degenerate(lo, hi):
            lo, hi = (_r(x) for x in fallback)
    return {f"{name}_n": n, f"{name}_accuracy": _r(acc), f"{name}_ci_low": lo, f"{name}_ci_high": hi}


def _gap_cols(draws: dict[int, np.ndarray], est: dict[int, float],
              counts: dict[int, tuple[float, int]] | None = None,
              fallback: dict[int, tuple[float | None, float | None]] | None = None) -> dict[str, Any]:
    """Knowledge minus reasoning, with the interval of the stratified draws; where those
    cannot vary (both subsets all right or all wrong): given ``counts``, Newcombe's
    hybrid score interval (``statsmodels`` ``confint_proportions_2indep``); given the
    subsets' ``fallback`` intervals, their square-and-add (the same construction)."""
    if 0 not in est or 1 not in est:
        return {"gap": None, "gap_ci_low": None, "gap_ci_high": None}
    lo, hi = _ci(draws[0] - draws[1])
    if stats.degenerate(lo, hi):
        if counts:
            (k0, n0), (k1, n1) = counts[0], counts[1]
            lo, hi = _newcombe_2indep(k0, n0, k1, n1)
        elif fallback:
            lo, hi = (_r(x) for x in stats.mover_diff(est[0], fallback[0], est[1], fallback[1]))
    return {"gap": _r(est[0] - est[1]), "gap_ci_low": lo, "gap_ci_high": hi}


def _newcombe_2indep(k0: float, n0: int, k1: float, n1: int) -> tuple[float | None, float | None]:
    """Newcombe's hybrid score interval of ``k0 / n0 - k1 / n1`` (independent samples)."""
    from statsmodels.stats.proportion import confint_proportions_2indep

    lo, hi = confint_proportions_2indep(k0, n0, k1, n1, method="newcomb", compare="diff",
                                        alpha=1 - stats.CONFIDENCE)
    return _r(float(lo)), _r(float(hi))


def _drop_ci(draws: np.ndarray, qid: np.ndarray, clean: np.ndarray,
             adv: np.ndarray) -> tuple[float | None, float | None]:
    """Interval of the paired drop (clean minus adversarial on the same questions): the
    percentile interval of the question-level ``draws``, or Newcombe's paired interval of
    the per-question correctness where those cannot vary (every question's drop the same)."""
    lo, hi = _ci(draws)
    if stats.degenerate(lo, hi):
        table = stats.paired_table(_per_question_mean(qid, clean), _per_question_mean(qid, adv))
        lo, hi = (_r(x) for x in stats.newcombe_paired(*table))
    return lo, hi


def analyse(rows: Sequence[SampleRow], *, b: int = stats.DEFAULT_B, seed: int = stats.DEFAULT_SEED,
            models: Sequence[str] | None = None) -> ReportData:
    """All numbers of the report for accepted sample rows."""
    table = SampleTable.from_rows(rows, models)
    return Analyser(table, b=b, seed=seed).run()
