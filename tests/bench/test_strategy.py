"""Sweep strategies: exact launch sequences for hand-made scores, spec parsing, launch scores."""

from __future__ import annotations

import math

import pytest

from bench.stats import pooled_var, t_quantile
from bench.strategies import (
    Grid,
    Halving,
    Objective,
    Race,
    launch_score,
    make_strategy,
    parse_strategy,
)


def drive(strategy, scores: dict[str, list[float | None]]) -> list[str]:
    """Run the ask/tell loop; launch k of config c scores scores[c][k]. Returns the asks."""
    asked = []
    while (cid := strategy.ask()) is not None:
        asked.append(cid)
        assert len(asked) < 1000, "strategy never stops"
        strategy.tell(cid, scores[cid][strategy.arms[cid].launches])
    return asked


def test_grid_launches_every_config_repeats_times_in_spec_order():
    g = Grid(["a", "b", "c"], repeats=2)
    asked = drive(g, {"a": [10, 12], "b": [20, 18], "c": [5, None]})
    assert asked == ["a", "a", "b", "b", "c", "c"]
    assert g.launches == 6
    assert g.best() == "b"
    assert g.arms["b"].score == pytest.approx(math.sqrt(20 * 18))


def test_race_drops_clear_losers_once_noise_is_measured_and_repeats_the_close_ones():
    r = Race(["slow", "best", "close", "bad"], repeats=3, confirm=1)
    scores = {"slow": [60.0], "best": [100.0, 101.0, 99.0], "close": [99.0, 98.0, 99.5], "bad": [30.0]}
    asked = drive(r, scores)
    # round 1 launches everything once; then the leader and the runner-up again, so the noise
    # prior meets two degrees of freedom of real launch-to-launch spread before any drop
    assert asked[:6] == ["slow", "best", "close", "bad", "best", "close"]
    # 40 % and 70 % below are outside any margin at 3 % noise: never launched again
    assert asked[6:] == ["best", "close"]
    assert r.arms["slow"].dropped.startswith("40.3% below best")
    assert r.arms["bad"].dropped.startswith("70.1% below best")
    assert not r.arms["close"].dropped  # within noise: launched `repeats` times, never dropped
    assert r.best() == "best"
    assert r.launches == 8  # vs 12 for the grid


def test_nothing_is_dropped_on_the_prior_alone():
    r = Race(["a", "b", "c"], repeats=3, confirm=1)
    for cid, score in (("a", 100.0), ("b", 50.0), ("c", 10.0)):
        r.tell(cid, score)
    assert not any(arm.dropped for arm in r.arms.values())
    assert r.ask() == "a"  # the leader's second launch, then the runner-up's
    r.tell("a", 100.0)
    assert r.ask() == "b" and not any(arm.dropped for arm in r.arms.values())
    r.tell("b", 50.0)
    assert r.arms["c"].dropped and r.arms["b"].dropped


def _margin(factor: float) -> float:
    """Race's margin with two configurations launched twice each, identical scores (no spread)."""
    var = 4.0 * 0.03**2 / (4.0 + 2)
    return factor * t_quantile(0.95, 4.0 + 2) * math.sqrt(var * (1 / 2 + 1 / 2))


def _two_by_two(tolerance: float, b_score: float) -> Race:
    r = Race(["a", "b"], repeats=3, tolerance=tolerance, confirm=1)
    for cid, score in (("a", 100.0), ("b", b_score), ("a", 100.0), ("b", b_score)):
        assert r.ask() == cid
        r.tell(cid, score)
    return r


def test_race_margin_follows_the_t_test_on_log_scores():
    """Exactly at the boundary: prior sd 0.03 (4 df) pooled with 2 df of zero spread."""
    assert not _two_by_two(0.0, 100.0 * math.exp(-_margin(0.999))).arms["b"].dropped
    assert _two_by_two(0.0, 100.0 * math.exp(-_margin(1.001))).arms["b"].dropped


def test_race_tolerance_drops_configs_that_cannot_beat_the_leader_by_more_than_it():
    gap = _margin(1.0) + math.log(0.98)  # 2 % tolerance takes that much off the margin
    assert not _two_by_two(0.02, 100.0 * math.exp(-gap * 0.999)).arms["b"].dropped
    assert _two_by_two(0.02, 100.0 * math.exp(-gap * 1.001)).arms["b"].dropped


def test_race_confirms_the_last_survivor():
    r = Race(["a", "b"], repeats=3, confirm=3)
    asked = drive(r, {"a": [100.0, 100.0, 100.0], "b": [10.0, 10.0]})
    assert asked == ["a", "b", "a", "b", "a"]
    assert r.best() == "a"


def test_race_pools_measured_noise_so_a_noisy_box_keeps_more_contenders():
    quiet = Race(["a", "b", "c"], repeats=3, confirm=1)
    noisy = Race(["a", "b", "c"], repeats=3, confirm=1)
    # b is 7 % below a in both; a and c (leader and runner-up) are launched again first
    drive(quiet, {"a": [100, 100.5, 99.5], "b": [93, 93.4, 92.6], "c": [96, 96.2, 95.8]})
    drive(noisy, {"a": [100, 130, 75], "b": [93, 93.4, 92.6], "c": [96, 70, 125]})
    assert quiet.arms["b"].dropped and not noisy.arms["b"].dropped
    sd, df = noisy.noise()
    assert df > 4 and sd > 0.1


def test_failed_launches_drop_the_config_and_nothing_is_picked_when_all_fail():
    r = Race(["a", "b", "c"], repeats=3, confirm=1)
    asked = drive(r, {"a": [None], "b": [50.0, 51.0], "c": [0.0]})
    assert asked == ["a", "b", "c"]  # b is alone after round 1; confirm=1 needs no more
    assert r.arms["a"].dropped == "launch 1 failed"
    assert r.arms["c"].dropped == "launch 1 failed"  # zero tokens/s is a failed launch too
    assert r.best() == "b"
    everything_fails = Race(["a", "b"], repeats=3)
    assert drive(everything_fails, {"a": [None], "b": [None]}) == ["a", "b"]
    assert everything_fails.best() is None


def test_halving_keeps_the_top_half_each_round():
    ids = [f"c{i}" for i in range(8)]
    h = Halving(ids, repeats=3, eta=2, confirm=1)
    scores = {c: [100.0 - 5 * i] * 3 for i, c in enumerate(ids)}
    asked = drive(h, scores)
    assert asked == [*ids, "c0", "c1", "c2", "c3", "c0", "c1"]
    assert h.best() == "c0"
    assert h.arms["c7"].dropped == "not in the top 4 after round 1"


def test_strategies_are_deterministic_so_a_resumed_sweep_replays_to_the_same_next_launch():
    scores = {"a": [100.0, 97.0, 99.0], "b": [98.0, 99.0, 101.0], "c": [50.0], "d": [99.0, 90.0, 92.0]}
    full = Race(list(scores), repeats=3)
    asked = drive(full, scores)
    resumed = Race(list(scores), repeats=3)
    for cid in asked[:5]:  # the launches a killed sweep had recorded
        assert resumed.ask() == cid
        resumed.tell(cid, scores[cid][resumed.arms[cid].launches])
    assert resumed.ask() == asked[5]


def test_parse_strategy_accepts_names_and_knobs_and_rejects_mistakes_in_one_line():
    assert parse_strategy("grid").name == "grid"
    st = parse_strategy("race", {"launch_cv": 0.02})
    assert st.launch_cv == 0.02
    assert isinstance(make_strategy(st, ["a"], 3), Race)
    assert isinstance(make_strategy(parse_strategy("halving", {"eta": 3}), ["a"], 3), Halving)
    assert make_strategy(parse_strategy("race", {"confirm": 5}), ["a"], 3).confirm == 3
    bad = {
        ("nope", ()): "strategy 'nope' is not known: use grid, race or halving",
        ("race", (("eta", 3),)): "eta applies to strategy 'halving' only: remove it or use 'halving'",
        ("grid", (("confirm", 2),)): "confirm applies to strategies 'race' and 'halving' only: remove it",
        ("race", (("launch_cv", 2),)): "strategy_options.launch_cv: Input should be less than 1 (got 2)",
        ("race", (("speed", 1),)): "unknown strategy option 'speed': use one of confidence, confirm, eta",
        ("race", (("objective", "throughput@4"),)):
            "strategy_options.objective is now [report] objective = 'throughput@4'",
    }
    for (name, opts), message in bad.items():
        with pytest.raises(ValueError) as err:
            parse_strategy(name, dict(opts))
        assert str(err.value).startswith(message)
        assert "\n" not in str(err.value)


def test_launch_score_reads_the_objectives_cell_and_fails_a_failed_launch():
    rows = [
        {"status": "ok", "concurrency": "1", "input_tokens": "64", "output_tokens": "32",
         "decode_tps": "12", "throughput_tps": "10", "ttft_ms_p90": "20", "gpu0_mem_peak_bytes": "3e9"},
        {"status": "ok", "concurrency": "4", "input_tokens": "64", "output_tokens": "32",
         "decode_tps": "9", "throughput_tps": "40", "ttft_ms_p90": "80", "gpu0_mem_peak_bytes": "4e9"},
    ]
    assert launch_score(rows, Objective("decode", "decode")) == pytest.approx(12.0)  # lowest concurrency
    assert launch_score(rows, "throughput@4") == pytest.approx(40.0)
    assert launch_score(rows, "throughput:ttft_p90<50") == pytest.approx(10.0)  # c=4 breaks the limit
    assert launch_score(rows, "decode_per_gb") == pytest.approx(12.0 / 4.0)  # the launch's peak VRAM
    assert launch_score([*rows, {"status": "oom-guard", "concurrency": "16"}], "decode") is None
    partial = [{**rows[0], "status": "partial"}, rows[1]]
    assert launch_score(partial, "decode") == pytest.approx(12.0)
    assert launch_score([{**rows[0], "decode_tps": ""}], "decode") is None
    assert launch_score(rows, "throughput@16") is None
    assert launch_score(rows, "throughput:ttft_p90<10") is None


def test_t_quantiles_and_pooled_variance_match_reference_values():
    # reference values from a Student-t table
    assert t_quantile(0.975, 2) == pytest.approx(4.302653, abs=1e-6)
    assert t_quantile(0.95, 4) == pytest.approx(2.131847, abs=1e-6)
    assert t_quantile(0.975, 10) == pytest.approx(2.228139, abs=1e-6)
    assert t_quantile(0.995, 1) == pytest.approx(63.656741, abs=1e-5)
    var, df = pooled_var([[1.0, 3.0], [5.0], [2.0, 2.0, 2.0]], prior_var=1.0, prior_df=2)
    assert (var, df) == (pytest.approx((2 + 2 + 0) / 5), 5)
    with pytest.raises(ValueError):
        t_quantile(0.4, 3)
