"""What a sweep knows: the spec validated once (`SweepPlan`, from `preflight`) and the state of the
running sweep (`SweepRun`) that the launch lifecycle (`bench.sweep_launch`), the cell loop
(`bench.sweep_cells`) and the resume-aware driver (`bench.sweep`) share.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from bench.engines import Engine, get_engine
from bench.memory import Gpus
from bench.objective import Objective
from bench.plan import Cell, ServerConfig, cells, server_configs
from bench.progress import SweepProgress, cell_units
from bench.server import check_bind_host
from bench.spec import Spec, SpecError, numa_prefix
from bench.store import SweepStore
from bench.strategies import StrategySpec, parse_strategy


@dataclass(frozen=True)
class SweepPlan:
    """The spec validated once: its engine, every server configuration with its workload cells,
    and the parsed strategy. Everything after `preflight` reads this, never the raw spec tables."""

    spec: Spec
    engine: Engine
    model: str
    configs: dict[str, ServerConfig]
    cells: dict[str, list[Cell]]
    strategy: StrategySpec

    @property
    def objective(self) -> Objective:
        """What ranks a launch (race/halving prune by it): the spec's one objective, the report's too."""
        return self.spec.objective

    @property
    def n_runs(self) -> int:
        return sum(len(c) for c in self.cells.values()) * self.spec.workload.repeats


def placement_of(spec: Spec, config: ServerConfig) -> tuple[str, float | None]:
    """(placement_source, predicted_decode_tps) of a configuration: from the spec's [[placement]]
    entry for its `args.placement` value; "grid" for other values of that axis, else "manual"."""
    value = config.axes.get("args.placement")
    if value is None:
        return "manual", None
    argv = list(value) if isinstance(value, list) else shlex.split(str(value))
    for entry in spec.placement:
        if entry.args == argv:
            return entry.source, entry.predicted_decode_tps
    return "grid", None


def preflight(spec: Spec, model: str, check_model: bool = True) -> SweepPlan:
    """Everything that can be checked before a launch; raises SpecError with one line."""
    engine = get_engine(spec.engine)
    check_bind_host(spec.server.host)
    if check_model:
        engine.preflight(spec.server, model)
    configs = server_configs(spec)
    for cfg in configs:
        numa_prefix(cfg.numa)
        engine.check_config(cfg)
    try:
        strategy = parse_strategy(spec.strategy, spec.strategy_options)
    except ValueError as err:
        raise SpecError(str(err)) from None
    return SweepPlan(spec, engine, model, {c.config_id: c for c in configs},
                     {c.config_id: cells(spec, c) for c in configs}, strategy)


@dataclass
class SweepRun:
    """The state of one running sweep: its plan, its directory and what every row shares."""

    plan: SweepPlan
    store: SweepStore
    console: Console
    gpus: Gpus
    mem_total: int
    floor_bytes: int
    sweep_columns: dict[str, Any]  # host.* and version.* columns shared by every row
    facts_source: str
    retry_failed: bool = False
    progress: SweepProgress | None = None
    # configurations whose launch failed before serving: config_id -> (why, log tail); later repeats
    # are recorded as skipped, not relaunched (a bad flag fails the same way every time)
    fatal: dict[str, tuple[str, str]] = field(default_factory=dict)
    served_runs: int = 0  # runs (replayed or new) where the server answered: 0 at the end fails the sweep

    @property
    def spec(self) -> Spec:
        return self.plan.spec

    @property
    def engine(self) -> Engine:
        return self.plan.engine


def cell_cost(cell: Cell) -> float:
    """The cell's cost in token-stream units (what the progress bar and ETA count)."""
    return cell_units(cell.requests, cell.warmup, cell.output_tokens, cell.concurrency)
