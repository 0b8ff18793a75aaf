"""The one home of the bench's statistics: Student-t quantiles, means, percentiles, t-based CIs,
pooled variance. Used by the per-cell metrics, the CI across repeats in results.csv, the racing
strategy and the report.

Why hand-rolled: scipy is a heavy dependency for one quantile; the quantile is computed by
Newton's method on the t CDF (Simpson integration of the density, error < 1e-9, checked against
t-table values in tests/bench/test_stats.py) and cached per (probability, degrees of freedom),
which take few distinct values in a sweep. (It replaces a second, table-plus-expansion t975 that
disagreed with it beyond df 30.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import lru_cache
from statistics import NormalDist

import numpy as np

_SIMPSON_STEPS = 400  # even; error < 1e-9 on the quantiles we use (checked against scipy)


def _t_pdf(x: float, df: float) -> float:
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_c - (df + 1) / 2 * math.log1p(x * x / df))


def _t_cdf_pos(t: float, df: float) -> float:
    """P(T <= t) for t >= 0, by Simpson's rule on [0, t] after the substitution x = tan(u)."""
    # tan() spreads the heavy tail of small df over a finite interval; dx = sec^2(u) du.
    hi = math.atan(t)
    h = hi / _SIMPSON_STEPS
    total = 0.0
    for i in range(_SIMPSON_STEPS + 1):
        u = i * h
        w = 1 if i in (0, _SIMPSON_STEPS) else (4 if i % 2 else 2)
        total += w * _t_pdf(math.tan(u), df) / math.cos(u) ** 2
    return 0.5 + total * h / 3


@lru_cache(maxsize=512)
def t_quantile(p: float, df: float) -> float:
    """The p-quantile (0.5 < p < 1) of Student's t with `df` degrees of freedom."""
    if not 0.5 < p < 1 or df <= 0:
        raise ValueError(f"t_quantile needs 0.5 < p < 1 and df > 0, got p={p}, df={df}")
    # The CDF is concave on x > 0, so Newton's method started below the root (at the normal
    # quantile, which is smaller than t's) climbs to it monotonically.
    x = NormalDist().inv_cdf(p)
    for _ in range(100):
        step = (p - _t_cdf_pos(x, df)) / _t_pdf(x, df)
        x += step
        if step < 1e-12 * x:
            break
    return x


def finite(values: Iterable[float | None]) -> list[float]:
    """The values that are numbers (None, NaN and inf dropped): what every statistic is taken over."""
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the finite values; None when there is none."""
    xs = finite(values)
    return math.fsum(xs) / len(xs) if xs else None


def pct(values: Iterable[float | None], q: float) -> float | None:
    """The q-th percentile (numpy's linear interpolation) of the finite values; None when none."""
    xs = finite(values)
    return float(np.percentile(xs, q)) if xs else None


def ci(values: Sequence[float | None], confidence: float = 0.95) -> tuple[float | None, float | None]:
    """t-based two-sided confidence interval of the mean; (None, None) with fewer than 2 values."""
    xs = finite(values)
    if len(xs) < 2:
        return None, None
    m = math.fsum(xs) / len(xs)
    half = t_quantile(0.5 + confidence / 2, len(xs) - 1) * math.sqrt(sample_var(xs) / len(xs))
    return m - half, m + half


def ci95(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    return ci(values, 0.95)


def sample_var(xs: Sequence[float]) -> float:
    """Unbiased sample variance (n - 1) of at least two values."""
    m = math.fsum(xs) / len(xs)
    return math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1)


def pooled_var(groups: list[list[float]], prior_var: float, prior_df: float) -> tuple[float, float]:
    """Variance pooled over every group with >= 2 values, shrunk toward a prior; returns (var, df).

    The prior stands in for `prior_df` degrees of freedom, so a sweep with one launch per
    configuration still has a usable noise estimate, and real repeats take over as they arrive.
    """
    ss = prior_var * prior_df
    df = prior_df
    for g in groups:
        if len(g) >= 2:
            ss += sample_var(g) * (len(g) - 1)
            df += len(g) - 1
    return ss / df, df
