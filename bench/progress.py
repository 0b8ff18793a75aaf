"""What the terminal shows while a sweep runs, and how long the rest will take.

Why a timing model and not a bar's rate: launches and cells cost very different times (a 200 GB
model loads for minutes, a c=1 cell of 8 requests takes seconds), so "items per second" says
nothing. Each launch's fixed cost (start, load, stop) and each cell's cost per generated token per
stream are measured as the sweep goes (or read from an earlier sweep of the same spec, for
`--dry-run`), and the estimate sums them over what is left.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

PHASES = ("launching", "loading", "warming", "measuring", "stopping")


def cell_units(requests: int, warmup: int, output_tokens: int, concurrency: int) -> float:
    """Token-steps one stream walks through in a cell: the cell's time is this x seconds per unit."""
    return (requests + warmup) * max(output_tokens, 1) / max(concurrency, 1)


@dataclass
class Timing:
    """Measured costs: seconds per launch (start + load + stop) and seconds per cell unit."""

    launch_s: list[float] = field(default_factory=list)
    unit_s: list[float] = field(default_factory=list)
    source: str = ""  # where the figures came from, for the user

    def launch(self) -> float | None:
        return statistics.median(self.launch_s) if self.launch_s else None

    def unit(self) -> float | None:
        return statistics.median(self.unit_s) if self.unit_s else None

    def estimate(self, launches: int, units: float) -> float | None:
        """Seconds for `launches` more launches running `units` cell units; None before any cell."""
        per_launch, per_unit = self.launch(), self.unit()
        if per_unit is None:
            return None
        return launches * (per_launch or 0.0) + units * per_unit


def _seconds(a: str, b: str) -> float | None:
    try:
        return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()
    except (TypeError, ValueError):
        return None


def timing_from_sweep(sweep_dir: Path) -> Timing:
    """The launch and cell costs recorded in an earlier sweep directory (runs/*/r*/)."""
    t = Timing(source=str(sweep_dir))
    for launch_file in sorted(sweep_dir.glob("runs/*/r*/launch.json")):
        try:
            launch = json.loads(launch_file.read_text())
        except (OSError, ValueError):
            continue
        whole = _seconds(launch.get("started_at", ""), launch.get("stopped_at", ""))
        in_cells = 0.0
        for run_file in launch_file.parent.glob("*.json"):
            if run_file.name == "launch.json":
                continue
            try:
                row = json.loads(run_file.read_text())["row"]
            except (OSError, ValueError, KeyError):
                continue
            took = _seconds(row.get("started_at", ""), row.get("finished_at", ""))
            if took is None or row.get("status") not in ("ok", "partial"):
                continue
            in_cells += took
            wall = row.get("cell_wall_s")  # the measured requests, to the microsecond (no warm-up)
            if isinstance(wall, int | float) and wall > 0:
                t.unit_s.append(wall / cell_units(int(row["requests"]), 0, int(row["output_tokens"]),
                                                  int(row["concurrency"])))
            else:  # timestamps: whole seconds
                t.unit_s.append(took / cell_units(int(row["requests"]), int(row["warmup_requests"]),
                                                  int(row["output_tokens"]), int(row["concurrency"])))
        if whole is not None and launch.get("status") == "ok":
            t.launch_s.append(max(whole - in_cells, 0.0))
    return t


def earlier_timing(reports: Path, spec_hash: str, spec_name: str) -> Timing:
    """Costs from the newest earlier sweep of the same spec (else of the same spec name) under reports/."""
    same, named = [], []
    for meta_file in reports.glob("*/sweep.json"):
        try:
            meta = json.loads(meta_file.read_text())
        except (OSError, ValueError):
            continue
        entry = (meta_file.stat().st_mtime, meta_file.parent)
        if meta.get("spec_hash") == spec_hash:
            same.append(entry)
        elif meta.get("spec_name") == spec_name:
            named.append(entry)
    for group, how in ((same, "the same spec"), (named, f"spec name {spec_name!r}")):
        for _, folder in sorted(group, reverse=True):
            t = timing_from_sweep(folder)
            if t.unit_s:
                t.source = f"measured in {folder} ({how})"
                return t
    return Timing()


def human_s(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class SweepProgress:
    """The live display: one bar of cells with the current launch, its phase and an ETA.

    The sweep tells it what happens (`launch`, `phase`, `cell_done`, `launch_done`); it keeps the
    timing model and renders `launch 3/12 threads=4 parallel=2 r0 · measuring in32-out16-c2 · ETA`.
    """

    def __init__(self, console: Console, n_launches: int, n_cells: int, units: float,
                 timing: Timing | None = None) -> None:
        """`units`: the cell units (see `cell_units`) of every planned cell, repeats included."""
        self.console = console
        self.timing = timing or Timing()
        self.n_launches = n_launches
        self.units_left = units
        self.launches_left = n_launches
        self.seq = 0
        self.label = ""
        self.current = "starting"
        self._launch_t0 = 0.0
        self._cells_s = 0.0
        self._cell_t0 = 0.0
        self.bar = Progress(TextColumn("{task.fields[what]}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}"), console=console,
                            transient=False)
        self.task = self.bar.add_task("cells", total=n_cells, what="starting", eta="after the first cell")

    def __enter__(self) -> SweepProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def eta(self) -> float | None:
        return self.timing.estimate(self.launches_left, self.units_left)

    def _show(self) -> None:
        eta = self.eta()
        self.bar.update(self.task, what=f"launch {self.seq}/{self.n_launches} {self.label} · {self.current}",
                        eta=human_s(eta) if eta is not None else "after the first cell")

    def launch(self, label: str) -> None:
        self.seq += 1
        self.label = label
        self._launch_t0 = time.monotonic()
        self._cells_s = 0.0
        self.phase("launching")

    def phase(self, name: str, cell: str = "") -> None:
        """Show the phase now: a terminal redraws at once, so a phase shorter than the bar's refresh
        period (a warm-up request, a fast stop) is still seen; a file or pipe gets only the end."""
        self.current = f"{name} {cell}".strip()
        if name in ("warming", "measuring") and not self._cell_t0:
            self._cell_t0 = time.monotonic()
        self._show()
        self.bar.refresh()

    def cell_done(self, units: float, measured: bool = True) -> None:
        """One cell finished (or was skipped: `measured` False advances without timing it)."""
        took = time.monotonic() - self._cell_t0 if self._cell_t0 else None
        self._cell_t0 = 0.0
        if measured and took is not None:
            self._cells_s += took
            self.timing.unit_s.append(took / max(units, 1e-9))
        self.units_left = max(self.units_left - units, 0.0)
        self.bar.advance(self.task)
        self._show()

    def launch_done(self, ok: bool) -> None:
        if ok and self._launch_t0:
            self.timing.launch_s.append(max(time.monotonic() - self._launch_t0 - self._cells_s, 0.0))
        self.launches_left = max(self.launches_left - 1, 0)
        self._show()

    def skip_launch(self, units: float, n_cells: int) -> None:
        """A launch that will not run (replayed from disk, or skipped after a fatal launch error)."""
        self.units_left = max(self.units_left - units, 0.0)
        self.launches_left = max(self.launches_left - 1, 0)
        self.bar.advance(self.task, n_cells)
        self._show()
