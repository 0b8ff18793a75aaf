"""Offline evaluation of the sweep strategies: launches used vs the full grid, and winner agreement.

    python -m benchmarks.strategy_eval [--trials 400] [--csv reports/<sweep>/results.csv ...]
    python -m benchmarks.strategy_eval --record .cache/perf/grid-record   # + a real grid recorded here
    python -m benchmarks.strategy_eval --record .cache/perf/grid-larger --record-kind larger

Why offline: a real sweep costs minutes per launch, so the strategies are judged by replaying
result surfaces. Each trial draws (or, for a recorded results.csv, reorders) a full grid of
`repeats` launches per configuration; the grid's winner is the best mean over all of them, and a
strategy sees the same launches in the same order, as far as it asks for them. A pick counts as
"same" when it is the grid's winner, and "in CI" when its grid mean lies inside the winner's
t-based 95 % confidence interval over repeats (indistinguishable by the grid itself).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.stats import t_quantile
from bench.strategies import StrategySpec, make_strategy
from benchmarks.strategy_surfaces import SURFACES, Surface, record_grid, recorded_surface

STRATEGIES: dict[str, StrategySpec] = {
    "grid": StrategySpec(name="grid"),
    "halving eta=2": StrategySpec(name="halving", eta=2),
    "halving eta=3": StrategySpec(name="halving", eta=3),
    "race": StrategySpec(name="race"),  # the defaults: launch_cv 0.03, confidence 0.95, confirm 2
    # "race fast": launch_cv 0.015, confidence 0.9: fewer launches, "in CI" still >= 95 %
    "race fast": StrategySpec(name="race", launch_cv=0.015, confidence=0.9),
}


@dataclass
class Trial:
    launches: int
    same: bool
    in_ci: bool
    rerun_same: bool | None = None  # would a second, independent full grid pick the same winner?


def grid_verdict(logs: np.ndarray, ok: np.ndarray) -> tuple[int, float] | None:
    """(winner index, lower end of its 95 % CI on the log scale) from a full grid, or None."""
    valid = ok.all(axis=1)
    if not valid.any():
        return None
    means = np.where(valid, logs.mean(axis=1), -np.inf)
    w = int(np.argmax(means))
    r = logs.shape[1]
    if r < 2:
        return w, float(means[w])
    half = t_quantile(0.975, r - 1) * float(logs[w].std(ddof=1)) / math.sqrt(r)
    return w, float(means[w]) - half


def run_trial(spec: StrategySpec, ids: Sequence[str], logs: np.ndarray, ok: np.ndarray) -> Trial:
    """Feed the strategy launch k of configuration c from column k of the drawn grid."""
    verdict = grid_verdict(logs, ok)
    strategy = make_strategy(spec, ids, logs.shape[1])
    index = {cid: i for i, cid in enumerate(ids)}
    while (cid := strategy.ask()) is not None:
        i = index[cid]
        k = strategy.arms[cid].launches
        strategy.tell(cid, math.exp(logs[i, k]) if ok[i, k] else None)
    pick = strategy.best()
    if verdict is None or pick is None:
        return Trial(strategy.launches, verdict is None and pick is None, verdict is None and pick is None)
    w, ci_low = verdict
    p = index[pick]
    same = p == w
    in_ci = same or (bool(ok[p].all()) and float(logs[p].mean()) >= ci_low)
    return Trial(strategy.launches, same, in_ci)


def evaluate(surface: Surface, repeats: int, trials: int, spec: StrategySpec) -> list[Trial]:
    out = []
    for seed in range(trials):
        logs, ok = surface.draw(np.random.default_rng(seed), repeats)
        trial = run_trial(spec, surface.ids, logs, ok)
        if surface.recorded is None:  # the grid's own reproducibility, as a ceiling for "same"
            again = grid_verdict(*surface.draw(np.random.default_rng(10**6 + seed), repeats))
            first = grid_verdict(logs, ok)
            trial.rerun_same = bool(first and again and first[0] == again[0])
        out.append(trial)
    return out


def table(rows: list[tuple[str, int, int, str, list[Trial]]]) -> Table:
    t = Table(title="Sweep strategies vs the full grid (seeded trials)")
    for col in ("surface", "configs", "repeats", "strategy", "grid launches", "launches mean",
                "% of grid mean/max", "same winner", "winner or in CI", "grid rerun same"):
        t.add_column(col, justify="right" if col not in ("surface", "strategy") else "left")
    for name, n, r, strat, res in rows:
        used = np.array([x.launches for x in res], dtype=float)
        grid = n * r
        t.add_row(
            name, str(n), str(r), strat, str(grid), f"{used.mean():.1f}",
            f"{100 * used.mean() / grid:.0f} / {100 * used.max() / grid:.0f}",
            f"{100 * np.mean([x.same for x in res]):.1f} %",
            f"{100 * np.mean([x.in_ci for x in res]):.1f} %",
            "—" if res[0].rerun_same is None else f"{100 * np.mean([x.rerun_same for x in res]):.1f} %",
        )
    return t


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=400, help="seeded trials per row (default 400)")
    ap.add_argument("--repeats", type=int, nargs="+", default=[3, 5], help="launches per config in the grid")
    ap.add_argument("--csv", type=Path, nargs="*", default=[], help="recorded results.csv files to replay")
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES))
    ap.add_argument("--record", type=Path, metavar="DIR",
                    help="first record a real grid sweep (3 repeats) in DIR (minutes), replay it too")
    ap.add_argument("--record-kind", choices=["tiny", "larger"], default="tiny",
                    help="tiny: 6 configs of the demo model; larger: 8 configs of the 59 MB model")
    args = ap.parse_args(argv)
    if args.record:
        args.csv.append(record_grid(args.record, args.record_kind))
    console = Console(width=200)
    rows = []
    jobs: list[tuple[Surface, int]] = [(s, r) for s, r in product(SURFACES, args.repeats)]
    for path in args.csv:
        surface, repeats = recorded_surface(path)
        jobs.append((surface, repeats))
    for (surface, repeats), strat in product(jobs, args.strategies):
        res = evaluate(surface, repeats, args.trials, STRATEGIES[strat])
        rows.append((surface.name, len(surface.ids), repeats, strat, res))
    console.print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
