"""Agreement of a reasoning classifier with gold labels, with bootstrap intervals.

Point estimates come from scikit-learn (accuracy, balanced accuracy, macro-F1, Cohen's
kappa, ROC-AUC, confusion matrix). Intervals are paired percentile bootstrap 95% intervals
from ``scipy.stats.bootstrap`` (labels and probabilities resampled together ``n_boot`` times
with ``numpy.random.default_rng(seed)``: the same inputs give the same intervals); every
metric is recomputed on each resample with vectorised numpy formulas equal to scikit-learn's.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "kappa", "roc_auc")
CELLS = ("tn", "fp", "fn", "tp")


def binary_metrics(y_true, prob, threshold: float) -> dict[str, Any]:
    """Point metrics of ``prob >= threshold`` against ``y_true`` (1 reasoning, 0 knowledge)."""
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        cohen_kappa_score,
        confusion_matrix,
        f1_score,
        roc_auc_score,
    )

    y = np.asarray(y_true, dtype=int)
    p = np.asarray(prob, dtype=float)
    pred = (p >= threshold).astype(int)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, pred, labels=[0, 1]).ravel())
    both = len(np.unique(y)) == 2
    return {
        "n": int(len(y)),
        "threshold": float(threshold),
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)) if both else float("nan"),
        # both classes always (a class absent from gold and prediction scores 0), as in the bootstrap
        "macro_f1": float(f1_score(y, pred, labels=[0, 1], average="macro", zero_division=0)),
        "kappa": float(cohen_kappa_score(y, pred)) if both or len(np.unique(pred)) == 2 else float("nan"),
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "tn": tn, "fp": fp, "fn": fn, "tp": tp,
        "gold_reasoning_share": float(y.mean()) if len(y) else float("nan"),
        "predicted_reasoning_share": float(pred.mean()) if len(y) else float("nan"),
    }


def _vector_metrics(y: np.ndarray, p: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics along the last axis of ``y``, ``p``, ``pred`` (e.g. shape (B, n): B resamples),
    with the formulas of scikit-learn's scorers (tested against them)."""
    from scipy.stats import rankdata

    n = y.shape[-1]
    tp = ((y == 1) & (pred == 1)).sum(-1).astype(float)
    tn = ((y == 0) & (pred == 0)).sum(-1).astype(float)
    fp = ((y == 0) & (pred == 1)).sum(-1).astype(float)
    fn = ((y == 1) & (pred == 0)).sum(-1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = (tp + tn) / n
        bal = (tp / (tp + fn) + tn / (tn + fp)) / 2
        f1_pos = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        f1_neg = np.where(2 * tn + fp + fn > 0, 2 * tn / (2 * tn + fp + fn), 0.0)
        f1 = (f1_pos + f1_neg) / 2
        pe = ((tp + fp) * (tp + fn) + (tn + fn) * (tn + fp)) / (n * n)
        kappa = (acc - pe) / (1 - pe)
        # ROC-AUC = Mann-Whitney U / (n_pos * n_neg), with average ranks for ties
        ranks = rankdata(p, axis=-1)
        n_pos = (y == 1).sum(-1).astype(float)
        auc = ((ranks * (y == 1)).sum(-1) - n_pos * (n_pos + 1) / 2) / (n_pos * (n - n_pos))
    return {"accuracy": acc, "balanced_accuracy": bal, "macro_f1": f1, "kappa": kappa,
            "roc_auc": auc, "tn": tn, "fp": fp, "fn": fn, "tp": tp}


_BOOT_KEYS = METRICS + CELLS


def bootstrap_metrics(y_true, prob, threshold: float, *, n_boot: int = 1000, seed: int = 0,
                      alpha: float = 0.05) -> dict[str, Any]:
    """Point metrics plus paired percentile bootstrap intervals (``scipy.stats.bootstrap``,
    ``paired=True``, ``numpy.random.default_rng(seed)``): ``{"point": {...}, "ci": {metric:
    [lo, hi]}, "n_boot", "seed", "level"}`` (confusion cells included). Resamples where a
    metric is undefined (one class only) are left out of its interval."""
    from scipy.stats import DegenerateDataWarning, bootstrap

    y = np.asarray(y_true, dtype=int)
    p = np.asarray(prob, dtype=float)
    if len(y) != len(p):
        raise ValueError(f"{len(y)} labels but {len(p)} probabilities")
    if len(y) == 0:
        raise ValueError("no labelled examples to evaluate")
    point = binary_metrics(y, p, threshold)
    ci: dict[str, list[float]] = {}
    if n_boot > 0:
        def stat(yb, pb, axis=-1):
            m = _vector_metrics(yb, pb, (pb >= threshold).astype(int))
            return np.stack([m[k] for k in _BOOT_KEYS])

        with warnings.catch_warnings():  # one class only: some metrics are constant or undefined
            warnings.simplefilter("ignore", DegenerateDataWarning)
            res = bootstrap((y, p), stat, paired=True, vectorized=True, n_resamples=n_boot,
                            confidence_level=1 - alpha, method="percentile",
                            rng=np.random.default_rng(seed))
        lo, hi = res.confidence_interval
        dist = res.bootstrap_distribution
        for i, k in enumerate(_BOOT_KEYS):
            if np.isfinite(lo[i]) and np.isfinite(hi[i]):
                ci[k] = [float(lo[i]), float(hi[i])]
            else:  # some resamples lack a class: the interval over those where it is defined
                v = dist[i][np.isfinite(dist[i])]
                ci[k] = ([float(x) for x in np.quantile(v, [alpha / 2, 1 - alpha / 2])] if v.size
                         else [float("nan"), float("nan")])
    return {"point": point, "ci": ci, "n_boot": int(n_boot), "seed": int(seed), "level": 1 - alpha}


def format_report(res: dict[str, Any], title: str | None = None) -> str:
    """Plain-text table of :func:`bootstrap_metrics` output."""
    pt, ci = res["point"], res["ci"]
    lvl = int(round(res["level"] * 100))
    lines = []
    if title:
        lines.append(title)
    lines.append(f"n = {pt['n']}   threshold = {pt['threshold']:.2f}   gold reasoning share = "
                 f"{pt['gold_reasoning_share']:.3f}   predicted = {pt['predicted_reasoning_share']:.3f}")
    lines.append(f"{'metric':<20}{'value':>8}   {lvl}% bootstrap interval (n={res['n_boot']}, seed={res['seed']})")
    for k in METRICS:
        lo, hi = ci.get(k, [float("nan"), float("nan")])
        lines.append(f"{k:<20}{pt[k]:>8.4f}   [{lo:.4f}, {hi:.4f}]")
    lines.append("confusion matrix (rows gold, columns predicted):")
    lines.append(f"{'':<22}{'pred knowledge':>18}{'pred reasoning':>18}")

    def cell(k):
        lo, hi = ci.get(k, [float("nan"), float("nan")])
        return f"{pt[k]:>5d} [{lo:.0f}-{hi:.0f}]".rjust(18)
    lines.append(f"{'gold knowledge':<22}{cell('tn')}{cell('fp')}")
    lines.append(f"{'gold reasoning':<22}{cell('fn')}{cell('tp')}")
    return "\n".join(lines)
