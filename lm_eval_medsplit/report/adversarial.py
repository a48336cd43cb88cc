"""The adversarial tables: accuracy per trace, paired drops, flips and McNemar tests, and
the reasoning-vs-knowledge drop difference.

Accepts: the :class:`~lm_eval_medsplit.report.sample_table.SampleTable` of an
:class:`~lm_eval_medsplit.report.analysis.Analyser` (this is its mixin: it uses the
analyser's ``t``, ``b`` and ``rng``).

Guarantees: rows of ``ReportData.adversarial`` (per benchmark, macro, weighted; per
trace and ``mean``) and ``ReportData.adversarial_subsets``, with the definitions of
:mod:`lm_eval_medsplit.report.analysis`: drops are paired (questions present clean and
adversarial), intervals resample questions, and the McNemar test is omitted for the
``mean`` and for repeated samples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lm_eval_medsplit.report import stats
from lm_eval_medsplit.report.intervals import _ci, _drop_ci, _r
from lm_eval_medsplit.report.sample_table import ALL, MACRO, SUBSETS, _groups, _per_question_mean

if TYPE_CHECKING:
    from lm_eval_medsplit.report.analysis import ReportData
    from lm_eval_medsplit.report.sample_table import SampleTable


class AdversarialTables:
    """The adversarial part of :class:`~lm_eval_medsplit.report.analysis.Analyser`."""

    t: SampleTable
    b: int

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
