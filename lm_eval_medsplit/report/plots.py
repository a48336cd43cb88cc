"""PNG plots of the report (matplotlib, Agg backend: no display needed).

- ``knowledge_vs_reasoning.png``: grouped bars per benchmark, knowledge vs reasoning, with
  95% intervals, one panel per model;
- ``gap_forest.png``: the gap (knowledge − reasoning) with intervals, per benchmark and
  averages, models side by side;
- ``clean_vs_adversarial.png``: clean vs adversarial accuracy per benchmark, one panel per
  model and adversarial mode;
- ``accuracy_vs_reasoning_prob.png``: accuracy per reasoning_prob bin and the gap as a
  function of the cut-off.
"""

from __future__ import annotations

import io
from pathlib import Path

from lm_eval_medsplit.fileio import write_bytes
from lm_eval_medsplit.report.analysis import ReportData
from lm_eval_medsplit.report.sample_table import ALL, MACRO

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
K_COLOR, R_COLOR = "#4C72B0", "#DD8452"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _err(est, lo, hi):
    """Asymmetric error bars (never negative, missing intervals as 0)."""
    low = [max(0.0, e - a) if (e is not None and a is not None) else 0.0 for e, a in zip(est, lo)]
    high = [max(0.0, h - e) if (e is not None and h is not None) else 0.0 for e, h in zip(est, hi)]
    return [low, high]


def _nz(xs):
    return [float("nan") if x is None else x for x in xs]


def _bench_label(b: str) -> str:
    return {MACRO: "macro", ALL: "weighted"}.get(b, b)


def knowledge_vs_reasoning(d: ReportData):
    plt = _plt()
    models = [m for m in d.models if any(r["model"] == m for r in d.gaps)]
    if not models:
        return None
    fig, axes = plt.subplots(len(models), 1, figsize=(max(7, 0.9 * len(d.benchmarks) + 3), 2.8 * len(models)),
                             squeeze=False)
    for ax, m in zip(axes[:, 0], models):
        rows = [r for r in d.gaps if r["model"] == m]
        x = list(range(len(rows)))
        w = 0.38
        for off, s, color in ((-w / 2, "knowledge", K_COLOR), (w / 2, "reasoning", R_COLOR)):
            est = [r[f"{s}_accuracy"] for r in rows]
            ax.bar([i + off for i in x], [100 * v if v is not None else 0 for v in est], w,
                   color=color, label=s,
                   yerr=[[100 * v for v in e] for e in _err(est, [r[f"{s}_ci_low"] for r in rows],
                                                            [r[f"{s}_ci_high"] for r in rows])],
                   capsize=2, error_kw={"elinewidth": 0.8})
        ax.set_xticks(x, [_bench_label(r["benchmark"]) for r in rows], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title(m, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(loc="upper right", fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def gap_forest(d: ReportData):
    plt = _plt()
    if not d.gaps:
        return None
    labels = list(dict.fromkeys(r["benchmark"] for r in d.gaps if r["level"] == "benchmark"))
    labels += [MACRO, ALL]
    models = list(dict.fromkeys(r["model"] for r in d.gaps))
    n_m = len(models)
    fig, ax = plt.subplots(figsize=(7.5, 0.35 * len(labels) * max(1, n_m) * 0.6 + 1.6))
    step = 0.7 / max(1, n_m)
    for j, m in enumerate(models):
        ys, xs, lo, hi = [], [], [], []
        for i, b in enumerate(labels):
            r = next((r for r in d.gaps if r["model"] == m and r["benchmark"] == b), None)
            if r is None or r["gap"] is None:
                continue
            ys.append(i + (j - (n_m - 1) / 2) * step)
            xs.append(100 * r["gap"])
            lo.append(100 * r["gap_ci_low"])
            hi.append(100 * r["gap_ci_high"])
        ax.errorbar(xs, ys, xerr=[[x - a for x, a in zip(xs, lo)], [b - x for x, b in zip(xs, hi)]],
                    fmt="o", ms=4, capsize=2, color=_COLORS[j % len(_COLORS)], label=m)
    ax.axvline(0, color="k", lw=0.8)
    ax.axhline(len(labels) - 2.5, color="grey", lw=0.6, ls="--")
    ax.set_yticks(range(len(labels)), [_bench_label(b) for b in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("gap: knowledge − reasoning accuracy (pp), 95% CI")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def clean_vs_adversarial(d: ReportData):
    plt = _plt()
    means = [r for r in d.adversarial if r["trace"] == "mean" and r["level"] in ("benchmark", "weighted")]
    if not means:
        return None
    panels = list(dict.fromkeys((r["model"], r["mode"]) for r in means))
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(7, 0.9 * len(d.benchmarks) + 3), 2.8 * len(panels)),
                             squeeze=False)
    for ax, (m, mode) in zip(axes[:, 0], panels):
        rows = [r for r in means if r["model"] == m and r["mode"] == mode]
        x = list(range(len(rows)))
        w = 0.38
        clean = [r["clean_accuracy"] for r in rows]
        ax.bar([i - w / 2 for i in x], [100 * v if v is not None else 0 for v in clean], w,
               color="#55A868", label="clean (paired questions)")
        adv = [r["accuracy"] for r in rows]
        ax.bar([i + w / 2 for i in x], [100 * v if v is not None else 0 for v in adv], w, color="#C44E52",
               label=f"adversarial ({mode}, mean over traces)",
               yerr=[[100 * v for v in e] for e in _err(adv, [r["ci_low"] for r in rows],
                                                        [r["ci_high"] for r in rows])],
               capsize=2, error_kw={"elinewidth": 0.8})
        ax.set_xticks(x, [_bench_label(r["benchmark"]) for r in rows], rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"{m} — {mode}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_vs_prob(d: ReportData):
    plt = _plt()
    bins = [r for r in d.prob_bins if r["benchmark"] == ALL]
    if not bins:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8))
    for j, m in enumerate(dict.fromkeys(r["model"] for r in bins)):
        c = _COLORS[j % len(_COLORS)]
        rows = [r for r in bins if r["model"] == m]
        x = [(r["bin_low"] + r["bin_high"]) / 2 for r in rows]
        a1.plot(x, [100 * r["accuracy"] for r in rows], "o-", color=c, ms=3, label=m)
        a1.fill_between(x, [100 * r["ci_low"] for r in rows], [100 * r["ci_high"] for r in rows],
                        color=c, alpha=0.15)
        sw = [r for r in d.threshold_sweep if r["model"] == m and r["gap"] is not None]
        if sw:
            xs = [r["threshold"] for r in sw]
            a2.plot(xs, [100 * r["gap"] for r in sw], "o-", color=c, ms=3, label=m)
            a2.fill_between(xs, _nz([100 * r["gap_ci_low"] for r in sw]),
                            _nz([100 * r["gap_ci_high"] for r in sw]), color=c, alpha=0.15)
    a1.set_xlabel("reasoning_prob (bin centre)")
    a1.set_ylabel("accuracy (%)")
    a1.set_xlim(0, 1)
    a1.set_title("accuracy vs reasoning_prob", fontsize=10)
    a1.grid(alpha=0.3)
    a1.legend(fontsize=7)
    a2.axhline(0, color="k", lw=0.8)
    a2.set_xlabel("cut-off: reasoning if reasoning_prob ≥ cut-off")
    a2.set_ylabel("gap K − R (pp)")
    a2.set_title("gap vs cut-off", fontsize=10)
    a2.grid(alpha=0.3)
    fig.tight_layout()
    return fig


PLOTS = {
    "knowledge_vs_reasoning": knowledge_vs_reasoning,
    "gap_forest": gap_forest,
    "clean_vs_adversarial": clean_vs_adversarial,
    "accuracy_vs_reasoning_prob": accuracy_vs_prob,
}


def render_plots(d: ReportData, out_dir: Path | None = None, *, dpi: int = 110) -> dict[str, bytes]:
    """PNG bytes of every plot that has data (also written to ``out_dir`` when given)."""
    plt = _plt()
    out: dict[str, bytes] = {}
    for name, fn in PLOTS.items():
        fig = fn(d)
        if fig is None:
            continue
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        plt.close(fig)
        out[name] = buf.getvalue()
        if out_dir is not None:
            write_bytes(out_dir / f"{name}.png", out[name])
    return out
