"""Student-t quantiles and pooled launch-to-launch variance, for the racing strategy.

Why hand-rolled: the strategies need one quantile function and nothing else from scipy; it is
computed by Newton's method on the t CDF (Simpson integration of the density) and cached per
(probability, degrees of freedom), which take few distinct values in a sweep.
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist

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


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def sample_var(xs: list[float]) -> float:
    m = mean(xs)
    return sum((x - m) ** 2 for x in xs) / (len(xs) - 1)


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
