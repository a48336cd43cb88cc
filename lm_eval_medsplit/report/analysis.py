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

Layout: :mod:`.sample_table` packs the rows (and defines the shared labels),
:mod:`.intervals` holds the rounding and interval helpers, :mod:`.adversarial` the
adversarial tables; this module computes the accuracy, gap, probability, repeat and
parse tables and assembles :class:`ReportData`. Deterministic: the same rows, ``b`` and ``seed`` give the
same numbers (each row's bootstrap generator is seeded from its labels and ``seed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lm_eval_medsplit.report import stats
from lm_eval_medsplit.report.adversarial import AdversarialTables
from lm_eval_medsplit.report.intervals import _gap_cols, _r, _subset_cols
from lm_eval_medsplit.report.sample_table import (
    ALL,
    CLEAN,
    MACRO,
    PROB_BINS,
    SUBSETS,
    SWEEP_THRESHOLDS,
    SampleTable,
    _groups,
    _per_question_mean,
    benchmark_order,
)
from lm_eval_medsplit.samples import SampleRow

__all__ = ["ALL", "CLEAN", "MACRO", "PROB_BINS", "SUBSETS", "SWEEP_THRESHOLDS", "Analyser", "ReportData",
           "SampleTable", "analyse", "benchmark_order"]


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


class Analyser(AdversarialTables):
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
                    est: dict[int, float] = {}
                    draws: dict[int, np.ndarray] = {}
                    counts: dict[int, tuple[float, int]] = {}
                    if nr and nk:  # knowledge (0) minus reasoning (1), as in the gaps table
                        rng = self.rng("sweep", model, th)
                        for s, (k, n) in enumerate(((kk, nk), (kr, nr))):
                            est[s], counts[s] = k / n, (k, n)
                            draws[s] = stats.bootstrap_proportion(k, n, rng, self.b)
                    row.update(_gap_cols(draws, est, counts=counts))
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


def analyse(rows: Sequence[SampleRow], *, b: int = stats.DEFAULT_B, seed: int = stats.DEFAULT_SEED,
            models: Sequence[str] | None = None) -> ReportData:
    """All numbers of the report for accepted sample rows."""
    table = SampleTable.from_rows(rows, models)
    return Analyser(table, b=b, seed=seed).run()
