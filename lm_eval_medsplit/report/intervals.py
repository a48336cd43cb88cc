"""Rounding and interval helpers behind the accuracy, gap and drop columns.

Accepts: bootstrap draws (numpy arrays from :mod:`lm_eval_medsplit.report.stats`),
estimates and counts of one table row.

Guarantees: numbers rounded to 6 places (``None`` for missing or NaN); the percentile
interval of the draws, or where it has zero width the boundary-honest fallback (Wilson,
Newcombe's independent or paired interval, square-and-add), as the definitions in
:mod:`lm_eval_medsplit.report.analysis` describe. Deterministic: no randomness here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lm_eval_medsplit.report import stats
from lm_eval_medsplit.report.sample_table import _per_question_mean


def _r(x: float | None, nd: int = 6) -> float | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return round(float(x), nd)


def _ci(draws: np.ndarray) -> tuple[float | None, float | None]:
    lo, hi = stats.interval(draws)
    return _r(lo), _r(hi)


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
