"""Replaying a recorded grid (a real 6-config x 3-repeat sweep on xllamacpp) through the strategies."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from bench.objective import parse_objective
from benchmarks.strategy_eval import STRATEGIES, evaluate, grid_verdict, run_trial
from benchmarks.strategy_surfaces import recorded_surface

CSV = Path(__file__).parent / "fixtures" / "grid-record.csv"


def test_recorded_surface_has_one_score_per_launch():
    surface, repeats = recorded_surface(CSV)
    assert repeats == 3 and len(surface.ids) == 6
    assert surface.recorded is not None and surface.recorded.shape == (6, 3)
    # launch score = the one objective (default decode): decode_tps of the launch's c=1 cell
    first = surface.ids.index("c523ac848")
    assert abs(math.exp(surface.recorded[first, 0]) - 3092.76) < 1e-6
    by_throughput = recorded_surface(CSV, parse_objective("throughput@4"))[0]
    assert abs(math.exp(by_throughput.recorded[first, 0]) - 893.865) < 1e-6


def test_replay_reorders_launches_but_the_grid_verdict_is_fixed():
    surface, repeats = recorded_surface(CSV)
    verdicts = {grid_verdict(*surface.draw(np.random.default_rng(s), repeats))[0] for s in range(5)}
    assert len(verdicts) == 1  # the grid sees all three launches whatever their order
    grid = run_trial(STRATEGIES["grid"], surface.ids, *surface.draw(np.random.default_rng(0), repeats))
    assert (grid.launches, grid.same) == (18, True)


def test_race_on_the_recorded_grid_uses_fewer_launches_and_stays_in_the_winners_ci():
    surface, repeats = recorded_surface(CSV)
    trials = evaluate(surface, repeats, 50, STRATEGIES["race"])
    # this grid is noisy (a tiny model on a shared 2-core box): race spends more, but never all
    assert np.mean([t.launches for t in trials]) < 0.8 * 18
    assert all(t.in_ci for t in trials)
