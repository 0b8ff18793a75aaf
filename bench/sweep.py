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
import random
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console

from bench.engines import Engine, get_engine
from bench.engines.base import Launch
from bench.hostinfo import collect_facts, flatten_facts, versions
from bench.load import CellLoad, Client, make_prompt, run_cell
from bench.memory import Gpus, Sampler, host_sample, wait_released
from bench.plan import Cell, ServerConfig, cells, server_configs
from bench.progress import SweepProgress, Timing, cell_units
from bench.report.modelbytes import record_model
from bench.runrow import LaunchInfo, build_row, run_status
from bench.schema import OK_STATUSES, LaunchRecord, RunRecord
from bench.server import ServerProcess, check_bind_host, error_line, free_port, http_json
from bench.spec import Spec, SpecError, numa_prefix, parse_size
from bench.store import SweepStore, now
from bench.strategies import StrategySpec, launch_score, make_strategy, parse_strategy
from omni.files import atomic_write_text


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
    units = spec.workload.repeats * sum(_units(c) for cs in plan.cells.values() for c in cs)
    with SweepProgress(console, len(plan.configs) * spec.workload.repeats, plan.n_runs, units,
                       timing) as progress:
        run.progress = progress
        seq = 0
        while (cid := strategy.ask()) is not None:
            repeat = strategy.arms[cid].launches
            if cid in run.fatal:
                score = _skip_launch(run, plan.configs[cid], repeat)
            else:
                score = _launch_or_replay(run, plan.configs[cid], repeat, seq)
                seq += 1
            strategy.tell(cid, score)
    store.write_csv(run.sweep_columns)  # once: n_repeats and the confidence intervals across repeats
    best = strategy.best()
    store.update_meta(status="finished", finished_at=now(), launches=seq, best_config=best or "",
                      strategy=plan.strategy.name, served_runs=run.served_runs)
    label = plan.configs[best].label if best in plan.configs else "none"
    obj = plan.strategy.objective
    how = obj.metric + (f" at concurrency {obj.concurrency}" if obj.concurrency
                        else " (geometric mean over cells)")
    console.print(f"results: {store.path / 'results.csv'} ({seq} launches; the {plan.strategy.name} "
                  f"strategy's pick by {how}: {label})", highlight=False)
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


def _units(cell: Cell) -> float:
    return cell_units(cell.requests, cell.warmup, cell.output_tokens, cell.concurrency)


def _skip_launch(run: SweepRun, config: ServerConfig, repeat: int) -> float | None:
    """A repeat of a configuration that failed before serving: every cell a `skipped` row, no launch."""
    spec = run.spec
    why, tail_rel = run.fatal[config.config_id]
    launch = run.engine.launch(spec.server, run.plan.model, config, spec.server.port or 0)
    info = LaunchInfo(sweep_id=run.store.path.name, engine=spec.engine, config=config, repeat=repeat,
                      n_repeats=spec.workload.repeats, endpoint=spec.workload.endpoint, launch=launch,
                      log_rel="", mem_total=run.mem_total, floor_bytes=run.floor_bytes,
                      facts_source=run.facts_source, placement=placement_of(spec, config))
    reason = f"not relaunched: {why}"
    for cell in run.plan.cells[config.config_id]:
        if run.store.read_run(config.config_id, repeat, cell.cell_id) is None:
            _save(run, info, cell, "skipped", reason, [], None, [], None, now(), now(), tail_rel)
        elif run.progress is not None:
            run.progress.cell_done(_units(cell), measured=False)
    if run.progress is not None:
        run.progress.launch_done(ok=False)
    run.console.print(f"[yellow]{config.label} r{repeat}: skipped ({reason})[/yellow]", highlight=False)
    return None


def _launch_or_replay(run: SweepRun, config: ServerConfig, repeat: int, seq: int) -> float | None:
    todo = []
    done_rows = []
    for cell in run.plan.cells[config.config_id]:
        rec = run.store.read_run(config.config_id, repeat, cell.cell_id)
        if rec and (rec.row.status in OK_STATUSES or not run.retry_failed):
            done_rows.append(rec.row.model_dump())
            run.served_runs += rec.row.status in OK_STATUSES
            if run.progress is not None:
                run.progress.cell_done(_units(cell), measured=False)
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
    score = launch_score(done_rows, run.plan.strategy.objective)
    rec = run.store.read_launch(config.config_id, repeat)
    if rec is not None:
        rec.score, rec.complete = score, True
        run.store.write_launch(rec)
    return score


@dataclass
class LiveLaunch:
    """One server launch inside `launched`: healthy (`ok`) or why not (`reason`)."""

    info: LaunchInfo
    record: LaunchRecord
    server: ServerProcess
    abort: threading.Event
    sampler: Sampler | None = None
    client: Client | None = None
    ok: bool = False
    reason: str = ""
    closers: list[Any] = field(default_factory=list)


@contextmanager
def launched(run: SweepRun, config: ServerConfig, repeat: int, seq: int,
             todo: list[Cell]) -> Iterator[LiveLaunch]:
    """Start the server of `config`, wait for health and read back what it applied; on exit stop
    it (whatever happened inside), confirm its memory was released and write launch.json.
    Never raises for a server's failure: `live.ok` is False and `live.reason` says why."""
    spec, store = run.spec, run.store
    port = spec.server.port or free_port(spec.server.host)
    launch: Launch = run.engine.launch(spec.server, run.plan.model, config, port)
    log = store.log_path(config.config_id, repeat)
    base_avail, _ = host_sample()
    gpu_base = run.gpus.used() if run.gpus.handles else []
    srv = ServerProcess(launch, log)
    rec = LaunchRecord(seq=seq, config_id=config.config_id, repeat=repeat, config_label=config.label,
                       engine=spec.engine, axes=config.axes, argv=launch.shown_argv, env=launch.shown_env,
                       prefix=launch.prefix, base_url=launch.base_url, log_path=store.rel(log),
                       started_at=now())
    info = LaunchInfo(sweep_id=store.path.name, engine=spec.engine, config=config, repeat=repeat,
                      n_repeats=spec.workload.repeats, endpoint=spec.workload.endpoint, launch=launch,
                      log_rel=store.rel(log), mem_total=run.mem_total, floor_bytes=run.floor_bytes,
                      gpu_totals=run.gpus.total() if run.gpus.handles else [], facts_source=run.facts_source,
                      placement=placement_of(spec, config))
    live = LiveLaunch(info, rec, srv, threading.Event())
    progress = run.progress
    if progress is not None:
        progress.launch(f"{config.label} r{repeat}")
    try:
        _start(run, live, todo)
        yield live
    finally:
        if progress is not None:
            progress.phase("stopping")
        try:
            for close in live.closers:
                close()
            if live.sampler is not None:
                live.sampler.stop()
        finally:  # whatever failed above, the server must not outlive its launch
            srv.stop(spec.server.stop_timeout_s)
            store.forget_server()
        tolerance = max(256 * 2**20, run.mem_total // 50)
        rec.memory_released, rec.memory_release_detail = wait_released(
            srv.pgid, base_avail, tolerance, spec.memory.release_timeout_s, run.gpus, gpu_base)
        if not rec.memory_released:
            run.console.print(f"[yellow]memory not released after {config.label} r{repeat}: "
                              f"{rec.memory_release_detail}[/yellow]")
        rec.stopped_at = now()
        store.write_launch(rec)
        if progress is not None:
            progress.launch_done(ok=rec.status == "ok")


def _start(run: SweepRun, live: LiveLaunch, todo: list[Cell]) -> None:
    """Start, health, readback: fills `live`; a failure is `live.ok = False` with the reason."""
    spec, srv, rec, info = run.spec, live.server, live.record, live.info
    try:
        srv.start()
    except OSError as err:  # binary not executable, prefix missing: a row, not a crash
        live.ok, live.reason = False, f"cannot start {info.launch.argv[0]}: {err.strerror or err}"
    else:
        run.store.remember_server(srv.pid, info.config.config_id)
        live.sampler = Sampler(srv.pid, srv.pgid, spec.memory.interval_s, run.floor_bytes, run.gpus,
                               on_breach=lambda _avail: live.abort.set())
        live.sampler.start()
        if run.progress is not None:
            run.progress.phase("loading")
        live.ok, live.reason = srv.wait_healthy(spec.server.health_timeout_s, live.abort)
    info.load_s = rec.load_s = round(time.monotonic() - srv.started, 3) if srv.proc else None
    rec.load_samples = live.sampler.since(0) if live.sampler else []
    if not live.ok or live.sampler is None:
        live.ok = False
        status = "oom-guard" if live.sampler and live.sampler.breached_at is not None else "launch-failed"
        if status == "oom-guard":
            live.reason = run_status([], True, None, run.floor_bytes, live.sampler.breach_available,  # type: ignore[union-attr]
                                     live.sampler.failed)[1]  # type: ignore[union-attr]
        rec.status, rec.error_reason = status, live.reason
        return
    _, props = http_json(info.launch.base_url + "/props")
    props = props if isinstance(props, dict) else None
    log_text = srv.log_text()
    try:
        info.readback = run.engine.readback(info.launch, props, log_text)
        info.versions = run.engine.versions(spec.server, props, log_text)
    except Exception as err:  # a surprising /props or log must not cost the measurements
        info.readback.mismatches.append(f"readback failed: {type(err).__name__}: {err}")
    rec.applied, rec.mismatches = info.readback.applied, info.readback.mismatches
    rec.versions = info.versions
    live.client = Client(info.launch.base_url, run.engine.api_prefix, max(c.concurrency for c in todo),
                         spec.workload.request_timeout_s)
    live.closers.append(live.client.close)


def run_launch(run: SweepRun, config: ServerConfig, repeat: int, todo: list[Cell],
               seq: int) -> list[dict[str, Any]]:
    """Launch `config`, run the `todo` cells, stop it. Never raises for a server's failure: every
    cell gets a row."""
    rows: list[dict[str, Any]] = []
    with launched(run, config, repeat, seq, todo) as live:
        info, rec = live.info, live.record
        if not live.ok:
            tail = _write_tail(run.store, live.server, live.server.log_path)
            says = error_line(live.server.log_tail())
            run.console.print(f"[red]{config.label} r{repeat}: {rec.status}: {live.reason}"
                              + (f"\n  server says: {says}" if says else "") + "[/red]", highlight=False)
            return [_save(run, info, cell, rec.status, live.reason, [], None, [], None, now(), now(), tail)
                    for cell in todo]
        assert live.sampler is not None and live.client is not None
        for i, cell in enumerate(todo):
            row = _run_one(run, info, live.server, live.sampler, live.abort, cell, live.client)
            rows.append(row)
            if row["status"] in ("oom-guard", "server-died"):
                rec.status, rec.error_reason = row["status"], row["error_reason"]
                for rest in todo[i + 1:]:
                    rows.append(_save(run, info, rest, row["status"], "not run: " + row["error_reason"], [],
                                      None, [], None, now(), now(), row["log_tail_path"]))
                break
    return rows


def _run_one(sw: SweepRun, info: LaunchInfo, srv: ServerProcess, sampler: Sampler, abort: threading.Event,
             cell: Cell, client: Client) -> dict[str, Any]:
    w = sw.spec.workload
    rng = random.Random(f"{w.seed}:{cell.cell_id}:{info.repeat}")
    started = now()
    mark = sampler.mark()
    sampler.sample()  # every run has samples, however short the cell
    records, wall, cpu = [], None, None
    try:
        prompts = [make_prompt(info.launch.base_url, cell.input_tokens, rng, w.endpoint == "chat")
                   for _ in range(cell.warmup + cell.requests)]
        load = CellLoad(
            base_url=info.launch.base_url, endpoint=w.endpoint, output_tokens=cell.output_tokens,
            concurrency=cell.concurrency, fixed_fields=sw.engine.fixed_length_fields, extra_body=w.extra_body,
            timeout_s=w.request_timeout_s, max_retries=w.max_retries, api_prefix=sw.engine.api_prefix,
            abort=abort,
            on_phase=(lambda phase: sw.progress.phase(phase, cell.cell_id)) if sw.progress else None,
        )
        cpu0 = time.process_time()
        records, wall = run_cell(load, prompts, cell.warmup, client)
        cpu = time.process_time() - cpu0
        status, reason = run_status(records, sampler.breached_at is not None, srv.exit_code(),
                                    sw.floor_bytes, sampler.breach_available,
                                    sampler.failed)
    except (OSError, RuntimeError, ValueError) as err:  # prompt building against a dying server
        status, reason = run_status([], sampler.breached_at is not None, srv.exit_code(),
                                    sw.floor_bytes, sampler.breach_available,
                                    sampler.failed)
        if status == "ok":
            status, reason = "failed", f"{type(err).__name__}: {err}"
    sampler.sample()
    tail = _write_tail(sw.store, srv, srv.log_path) if status not in OK_STATUSES else ""
    row = _save(sw, info, cell, status, reason, records, wall, sampler.since(mark), cpu, started, now(), tail,
                timed=True)
    sw.served_runs += status in OK_STATUSES
    color = "green" if status == "ok" else "yellow" if status == "partial" else "red"
    dec = row.get("decode_tps")
    says = error_line(srv.log_tail()) if status not in OK_STATUSES and srv.exit_code() is not None else ""
    sw.console.print(
        f"[{color}]{info.config.label} r{info.repeat} {cell.cell_id}: {status}"
        + (f" decode {dec:.1f} tok/s, throughput {row['throughput_tps']:.1f} tok/s" if dec else "")
        + (f" ({reason})" if reason else "") + (f"\n  server says: {says}" if says else "") + f"[/{color}]",
        highlight=False,
    )
    return row


def _save(sw: SweepRun, info: LaunchInfo, cell: Cell, status: str, reason: str, records: list,
          wall: float | None, samples: list, cpu: float | None, started: str, finished: str,
          tail: str, timed: bool = False) -> dict[str, Any]:
    run_rel = sw.store.rel(sw.store.run_path(info.config.config_id, info.repeat, cell.cell_id))
    row, cols = build_row(info, cell, status, reason, records, wall, samples, cpu, started, finished,
                          run_rel, tail)
    run = RunRecord(row=row, columns=cols, requests=records, memory=samples)
    sw.store.write_run(run)
    sw.store.append_row(run, sw.sweep_columns)
    if sw.progress is not None:
        sw.progress.cell_done(_units(cell), measured=timed)
    return row.model_dump()


def _write_tail(store: SweepStore, srv: ServerProcess, log: Path) -> str:
    tail = log.with_suffix(".tail.txt")
    atomic_write_text(tail, srv.log_tail() + "\n")
    return store.rel(tail)
