"""The sweep as a straight pipeline: spec → plan of launches → one launch at a time → cells → rows.

    plan = preflight(spec, model)                  # validated once: engine, configs, cells, strategy
    run_sweep(plan, spec_text, out, console)       # the strategy asks for launches; for each:
        with launched(run, config, repeat, seq):   #   start, health, readback ... stop, memory released
            run the cells → build_row → run file + one row appended to results.csv

Why ask/tell: the loop owns everything physical (launch, health, memory guard, rows) while
`bench.strategies` only decides which configuration to launch next from launch scores. A resumed
sweep replays the recorded launches through `tell` (strategies are deterministic), so it asks for
exactly the launches that are missing and runs only the cells without a run file. results.csv is
appended row by row and rewritten once at the end (the confidence intervals across repeats).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
from rich.console import Console

from bench.hostinfo import collect_facts, flatten_facts, versions
from bench.memory import Gpus
from bench.plan import ServerConfig
from bench.progress import SweepProgress, Timing
from bench.report.modelbytes import record_model
from bench.schema import OK_STATUSES
from bench.server import error_line
from bench.spec import parse_size
from bench.store import SweepStore, now
from bench.strategies import launch_score, make_strategy
from bench.sweep_cells import run_launch, skip_launch
from bench.sweep_launch import LiveLaunch, launched
from bench.sweep_state import SweepPlan, SweepRun, cell_cost, placement_of, preflight
from omni.files import atomic_write_text

__all__ = ["LiveLaunch", "SweepPlan", "SweepRun", "launched", "placement_of", "preflight", "run_launch",
           "run_sweep"]


def _record_ceiling_inputs(folder: Path, model: str, console: Console) -> None:
    """model.json (the GGUF's tensor table) and bandwidth.json (host read and GPU copy bandwidth,
    measured now by `python -m bench.membw` in a child process, so no CUDA context stays in
    ours), so the report's ceiling renders from the sweep directory alone, on any machine. Each is
    written once; a resumed sweep keeps them. A failed measurement is a note, not a stop."""
    record_model(model, folder)
    target = folder / "bandwidth.json"
    if target.is_file():
        return
    gib = max(min(1.0, psutil.virtual_memory().available / 8 / 2**30), 0.125)  # >> caches, << RAM
    argv = [sys.executable, "-m", "bench.membw", "--gib", f"{gib:.3f}", "--repeats", "3"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        doc = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        doc = None
    if not isinstance(doc, dict):
        console.print("[yellow]memory bandwidth not measured (bench.membw failed): the report's "
                      "ceiling uses the DIMM facts or a figure you give[/yellow]")
        return
    doc["measured_at"] = now()
    atomic_write_text(target, json.dumps(doc) + "\n")
    gpu = doc.get("gpu_copy_gbps") or []
    console.print(f"memory bandwidth measured for the report's ceiling: host {doc['host_read_gbps']:.1f} GB/s"
                  + (f", GPU {', '.join(f'{x:.0f}' for x in gpu)} GB/s (copy)" if gpu else ""),
                  highlight=False)


def run_sweep(plan: SweepPlan, spec_text: str, out: Path, console: Console,
              retry_failed: bool = False, timing: Timing | None = None) -> Path:
    """Run (or resume) the sweep into `out` under its lock; returns the sweep dir. `timing`: costs
    measured earlier (an ETA from the first launch on); sweep.json's `served_runs` is 0 when no
    launch served a request."""
    with SweepStore(out).locked() as store:  # a second sweep into `out` stops here (SweepBusy)
        return _run_locked(plan, spec_text, out, console, retry_failed, store, timing)


def _run_locked(plan: SweepPlan, spec_text: str, out: Path, console: Console, retry_failed: bool,
                store: SweepStore, timing: Timing | None = None) -> Path:
    spec = plan.spec
    resumed = store.exists()
    facts, source = collect_facts()
    host_cols = flatten_facts(facts)
    vers = versions()
    if not resumed:
        store.create(out.name, spec_text, facts, {"spec_name": spec.name, "engine": spec.engine,
                                                  "model": plan.model, "versions": vers})
    else:
        store.update_meta(status="running", resumed_at=now())
        if store.adopt_spec(spec_text):
            console.print(f"spec.toml in {out} replaced by the spec resumed with (same axes, workload and "
                          f"server; its [report] table or layout differ)")
        reaped = store.reap_orphan()
        if reaped:
            console.print(f"[yellow]{reaped}[/yellow]")
    _record_ceiling_inputs(store.path, plan.model, console)
    vm_total = int(psutil.virtual_memory().total)
    run = SweepRun(plan, store, console, Gpus(spec.memory.gpu), vm_total,
                   parse_size(spec.memory.oom_floor, vm_total), {**host_cols, **vers}, source, retry_failed)
    if resumed:  # a kill -9 may have torn the last appended line: start from the run files
        store.write_csv(run.sweep_columns)
    strategy = make_strategy(plan.strategy, list(plan.configs), spec.workload.repeats)
    console.print(f"sweep {out} ({'resumed' if resumed else 'new'}): {len(plan.configs)} server "
                  f"configurations, {plan.n_runs} runs at most, strategy {plan.strategy.name}, "
                  f"engine {spec.engine}")
    units = spec.workload.repeats * sum(cell_cost(c) for cs in plan.cells.values() for c in cs)
    with SweepProgress(console, len(plan.configs) * spec.workload.repeats, plan.n_runs, units,
                       timing) as progress:
        run.progress = progress
        seq = 0
        while (cid := strategy.ask()) is not None:
            repeat = strategy.arms[cid].launches
            if cid in run.fatal:
                score = skip_launch(run, plan.configs[cid], repeat)
            else:
                score = _launch_or_replay(run, plan.configs[cid], repeat, seq)
                seq += 1
            strategy.tell(cid, score)
    store.write_csv(run.sweep_columns)  # once: n_repeats and the confidence intervals across repeats
    best = strategy.best()
    store.update_meta(status="finished", finished_at=now(), launches=seq, best_config=best or "",
                      strategy=plan.strategy.name, served_runs=run.served_runs)
    label = plan.configs[best].label if best in plan.configs else "none"
    obj = plan.objective
    console.print(f"results: {store.path / 'results.csv'} ({seq} launches; the {plan.strategy.name} "
                  f"strategy's pick by the objective {obj.text} ({obj.describe}): {label})", highlight=False)
    if not run.served_runs:
        first = next(iter(run.fatal.items()), None)
        cause = "see the failures in the report"
        if first:
            cid, (why, tail_rel) = first
            tail = (store.path / tail_rel).read_text(errors="replace") if tail_rel else ""
            cause = f"{plan.configs[cid].label}: {error_line(tail) or why}"
        console.print(f"[red]every launch failed: no configuration served a request. {cause}[/red]",
                      highlight=False)
    return store.path


def _launch_or_replay(run: SweepRun, config: ServerConfig, repeat: int, seq: int) -> float | None:
    todo = []
    done_rows = []
    for cell in run.plan.cells[config.config_id]:
        rec = run.store.read_run(config.config_id, repeat, cell.cell_id)
        if rec and (rec.row.status in OK_STATUSES or not run.retry_failed):
            done_rows.append(rec.row.model_dump())
            run.served_runs += rec.row.status in OK_STATUSES
            if run.progress is not None:
                run.progress.cell_done(cell_cost(cell), measured=False)
        else:
            todo.append(cell)
    if todo:
        done_rows += run_launch(run, config, repeat, todo, seq)
    elif run.progress is not None:
        run.progress.launch_done(ok=False)  # replayed from disk: nothing to time
    if done_rows and all(r["status"] == "launch-failed" for r in done_rows):  # replayed or new
        first = done_rows[0]
        run.fatal.setdefault(config.config_id, (f"repeat {repeat} failed before serving: "
                                                f"{first['error_reason']}", first["log_tail_path"]))
    score = launch_score(done_rows, run.plan.objective)
    rec = run.store.read_launch(config.config_id, repeat)
    if rec is not None:
        rec.score, rec.complete = score, True
        run.store.write_launch(rec)
    return score
