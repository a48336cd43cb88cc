"""Statistics for the report: Wilson intervals for proportions, vectorised bootstrap
intervals for everything else (means over questions, gaps, drops), pass@k and maj@k for
repeated samples, and the exact McNemar test.

Proportions
-----------
An accuracy over ``n`` questions with one sample each is a binomial proportion; its
interval is the Wilson score interval (``statsmodels.stats.proportion.proportion_confint``,
``method="wilson"``), which stays honest at the boundary: 8 of 8 correct gives
[0.68, 1], not the [1, 1] a percentile bootstrap gives. Means of per-question values
(adversarial traces, repeated samples) are bootstrapped over *questions*; where every
question has the same value the bootstrap has zero width and the Wilson interval of the
mean over the questions is used instead (:func:`mean_interval`).

No zero-width intervals
-----------------------
A percentile bootstrap has zero width wherever the resampled values cannot vary (every
question right, or every question's drop the same). Each bootstrap interval therefore has
a fallback that is honest at the boundary: Wilson for a mean (:func:`mean_interval`),
Newcombe's hybrid score interval for a difference of independent proportions
(statsmodels), :func:`newcombe_paired` for a paired difference (clean vs adversarial on
the same questions), and :func:`mover_diff` (square-and-add) for a difference of two
independent estimates that already have intervals.

Bootstrap
---------
Resampling ``n`` values with replacement and averaging them only depends on how many
times each *distinct* value is drawn, and those counts are multinomial:
``counts ~ Multinomial(n, c / n)`` for the distinct values ``u`` with multiplicities
``c``. So the bootstrap distribution of a mean is drawn exactly (not approximated) as
``rng.multinomial(n, c / n, size=B) @ u / n``, one numpy call whatever ``n`` is. For the
0/1 correctness vectors of accuracies this is ``Binomial(n, k / n) / n``. Values with many
distinct levels fall back to classic index resampling, in chunks to bound memory.

Every interval is the percentile interval of ``B`` draws (default 2000) from a generator
seeded by a fixed seed and the name of the quantity, so a number does not depend on which
other numbers were computed in the same report.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np

DEFAULT_B = 2000
DEFAULT_SEED = 20250101
CONFIDENCE = 0.95
_MAX_LEVELS = 64
_CHUNK = 2_000_000  # elements per index-resampling chunk


def rng_for(key: str, seed: int = DEFAULT_SEED) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``key``."""
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])


def bootstrap_means(values: Sequence[float] | np.ndarray, rng: np.random.Generator,
                    b: int = DEFAULT_B) -> np.ndarray:
    """``b`` bootstrap replicates of ``mean(values)`` (NaN-filled when empty)."""
    v = np.asarray(values, dtype=float)
    n = v.size
    if n == 0:
        return np.full(b, np.nan)
    levels, counts = np.unique(v, return_counts=True)
    if levels.size == 1:
        return np.full(b, levels[0])
    if levels.size <= _MAX_LEVELS:
        draws = rng.multinomial(n, counts / n, size=b)
        return draws @ levels / n
    out = np.empty(b)
    per = max(1, _CHUNK // n)
    for start in range(0, b, per):
        stop = min(b, start + per)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = v[idx].mean(axis=1)
    return out


def bootstrap_proportion(k: int, n: int, rng: np.random.Generator, b: int = DEFAULT_B) -> np.ndarray:
    """Bootstrap replicates of ``k / n`` (a 0/1 vector with ``k`` ones): ``Binomial(n, k/n)/n``."""
    if n == 0:
        return np.full(b, np.nan)
    return rng.binomial(n, k / n, size=b) / n


def binomial_stderr(p: float | None, n: int) -> float | None:
    """Standard error of a proportion ``p`` of ``n`` samples as lm-eval's ``mean`` reports
    it, ``sqrt(p(1-p)/(n-1))``; ``None`` below two samples."""
    if p is None or n < 2:
        return None
    return math.sqrt(p * (1 - p) / (n - 1))


def wilson(k: float, n: int, confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
    """Wilson score interval of ``k`` successes in ``n`` trials (``k`` may be fractional,
    a mean times ``n``); ``(None, None)`` for ``n == 0``."""
    if n <= 0:
        return None, None
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(k, n, alpha=1.0 - confidence, method="wilson")
    return float(max(0.0, lo)), float(min(1.0, hi))


def mean_interval(values: np.ndarray, draws: np.ndarray,
                  confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
    """Interval of the mean of per-question values in [0, 1]: the percentile interval
    of the question-level bootstrap ``draws``, or, when all values are equal (the
    bootstrap cannot vary), the Wilson interval of the mean over ``len(values)``."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return None, None
    lo, hi = interval(draws, confidence)
    if lo is not None and hi is not None and hi - lo > 0:
        return lo, hi
    return wilson(float(v.mean()) * v.size, int(v.size), confidence)


def degenerate(lo: float | None, hi: float | None) -> bool:
    """True for a defined interval of zero width (a bootstrap that could not vary)."""
    return lo is not None and hi is not None and hi - lo <= 0


def paired_table(first: np.ndarray, second: np.ndarray) -> tuple[float, float, float, float]:
    """The paired 2x2 table ``(a, b, c, d)`` (both right, first only, second only, neither)
    of per-question correctness in [0, 1]; a question's share of correct samples (traces,
    repeats) counts fractionally, as concordant as its shares allow, so ``(a + b) / n`` and
    ``(a + c) / n`` are the two mean accuracies."""
    x = np.asarray(first, dtype=float)
    y = np.asarray(second, dtype=float)
    a = float(np.minimum(x, y).sum())
    b = float(np.clip(x - y, 0, None).sum())
    c = float(np.clip(y - x, 0, None).sum())
    return a, b, c, max(0.0, float(x.size) - a - b - c)


def newcombe_paired(a: float, b: float, c: float, d: float,
                    confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
    """Interval of ``p1 - p2 = (b - c) / n`` for paired proportions (table ``a`` both,
    ``b`` first only, ``c`` second only, ``d`` neither): Newcombe's square-and-add of the
    two Wilson intervals with the continuity-corrected correlation (Newcombe 1998, Stat Med
    17:2635, method 10; Fagerland et al. 2017, ch. 8). Never zero width for ``n > 0``.
    Written here: statsmodels 0.15 has intervals only for independent proportions
    (``confint_proportions_2indep``) and a paired risk ratio, scipy none."""
    n = a + b + c + d
    if n <= 0:
        return None, None
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson(a + b, n, confidence)  # type: ignore[arg-type]
    l2, u2 = wilson(a + c, n, confidence)  # type: ignore[arg-type]
    prod = (a + b) * (c + d) * (a + c) * (b + d)
    cross = a * d - b * c
    if prod <= 0 or 0 <= cross <= n / 2:
        phi = 0.0
    else:
        phi = (cross - n / 2 if cross > 0 else cross) / math.sqrt(prod)
    est = p1 - p2
    lo = est - math.sqrt(max(0.0, (p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2)))
    hi = est + math.sqrt(max(0.0, (p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1)))
    return max(-1.0, lo), min(1.0, hi)


def mover_diff(est1: float, ci1: tuple[float | None, float | None], est2: float,
               ci2: tuple[float | None, float | None]) -> tuple[float | None, float | None]:
    """Interval of ``est1 - est2`` for independent estimates with intervals ``ci1`` and
    ``ci2``: square-and-add (MOVER, Zou & Donner 2008; Newcombe's hybrid score interval
    when both are Wilson intervals)."""
    (l1, u1), (l2, u2) = ci1, ci2
    if None in (l1, u1, l2, u2):
        return None, None
    d = est1 - est2
    return (d - math.sqrt((est1 - l1) ** 2 + (u2 - est2) ** 2),  # type: ignore[operator]
            d + math.sqrt((u1 - est1) ** 2 + (est2 - l2) ** 2))  # type: ignore[operator]


def pass_at_k(n: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    """Unbiased pass@k per question (Chen et al. 2021): ``1 - C(n-c, k) / C(n, k)`` for
    ``n`` samples of which ``c`` are correct (``n >= k``)."""
    from scipy.special import comb

    n = np.asarray(n, dtype=float)
    c = np.asarray(c, dtype=float)
    return 1.0 - comb(n - c, k) / comb(n, k)


def interval(draws: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
    """Percentile interval of bootstrap draws; ``(None, None)`` when undefined."""
    d = np.asarray(draws, dtype=float)
    d = d[~np.isnan(d)]
    if d.size == 0:
        return None, None
    a = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(d, [a, 1.0 - a])
    return float(lo), float(hi)


def mcnemar_exact(b: int | np.ndarray, c: int | np.ndarray) -> float | np.ndarray:
    """Two-sided exact McNemar p-value for discordant counts ``b`` and ``c``: the binomial
    test of ``min(b, c)`` in ``b + c`` trials at 1/2, doubled and capped at 1 (the same
    definition as ``statsmodels.stats.contingency_tables.mcnemar(exact=True)``). Works on
    arrays; ``b + c == 0`` gives 1."""
    from scipy.special import bdtr  # binomial cdf; scipy.stats costs a second to import

    b = np.asarray(b)
    c = np.asarray(c)
    n = b + c
    with np.errstate(invalid="ignore"):
        p = np.minimum(1.0, 2.0 * bdtr(np.minimum(b, c), n, 0.5))
    p = np.where(n == 0, 1.0, p)
    return float(p) if p.ndim == 0 else p
