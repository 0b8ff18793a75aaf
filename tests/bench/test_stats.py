"""bench.stats, the one statistics module: t quantiles against published t-table values, CIs, means."""

from __future__ import annotations

import math

import pytest

from bench.stats import ci, ci95, finite, mean, pct, pooled_var, t_quantile

# two-sided 95 % (p = 0.975) Student t quantiles, df 1..30, from the standard t table (4 decimals)
T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
        2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
        2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)


@pytest.mark.parametrize("df", range(1, 31))
def test_t975_matches_the_table(df):
    assert t_quantile(0.975, df) == pytest.approx(T975[df - 1], abs=6e-5)


@pytest.mark.parametrize(("p", "df", "want"), [
    (0.975, 40, 2.0211), (0.975, 60, 2.0003), (0.975, 120, 1.9799), (0.975, 1000, 1.9623),
    (0.95, 1, 6.3138), (0.95, 10, 1.8125), (0.99, 5, 3.3649), (0.995, 30, 2.7500),
])
def test_t_quantile_beyond_the_table_and_other_levels(p, df, want):
    assert t_quantile(p, df) == pytest.approx(want, abs=6e-5)


def test_ci_mean_and_percentiles():
    xs = [10.0, 12.0, 11.0, 13.0, None, float("nan")]
    assert finite(xs) == [10.0, 12.0, 11.0, 13.0]
    assert mean(xs) == pytest.approx(11.5) and mean([]) is None and mean([None]) is None
    lo, hi = ci95(xs)
    half = 3.1824 * math.sqrt(1.6666667 / 4)  # t(0.975, 3) * s / sqrt(n), s^2 = 5/3
    assert (lo, hi) == (pytest.approx(11.5 - half, abs=1e-3), pytest.approx(11.5 + half, abs=1e-3))
    assert ci([1.0]) == (None, None)
    lo90, hi90 = ci(xs, 0.90)
    assert lo < lo90 < hi90 < hi
    assert pct(xs, 50) == pytest.approx(11.5) and pct([], 50) is None


def test_pooled_variance_weights_groups_by_their_degrees_of_freedom():
    var, df = pooled_var([[1.0, 3.0], [2.0, 2.0, 2.0], [5.0]], prior_var=1.0, prior_df=2.0)
    assert df == 2.0 + 1 + 2 and var == pytest.approx((1.0 * 2 + 2.0 * 1 + 0.0) / 5)
