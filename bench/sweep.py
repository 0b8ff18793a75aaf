"""The sweep loop: a strategy picks the next server launch; each launch runs its workload cells.

Why ask/tell: the loop owns everything physical (launch, health, memory guard, rows) while
`bench.strategies` only decides which configuration to launch next from launch scores. A resumed
sweep replays the recorded launches through `tell` (strategies are deterministic), so it asks for
exactly the launches that are missing and runs only the cells without a run file.
"""

from __future__ import annotations

import json
import random
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console

from bench.engines import Engine, get_engine
from bench.hostinfo import collect_facts, flatten_facts, versions
from bench.load import CellLoad, Client, make_prompt, run_cell
from bench.memory import Gpus, Sampler, host_sample, wait_released
from bench.plan import Cell, ServerConfig, cells, server_configs
from bench.progress import SweepProgress, Timing, cell_units
from bench.runrow import LaunchInfo, build_row, run_status
from bench.schema import OK_STATUSES, LaunchRecord, RunRecord
from bench.server import ServerProcess, check_bind_host, error_line, free_port, http_json
from bench.spec import Spec, numa_prefix, parse_size
from bench.store import SweepStore, now
from bench.strategies import launch_score, make_strategy, parse_strategy
from omni.files import atomic_write_text


@dataclass
class Sweep:
    spec: Spec
    store: SweepStore
    engine: Engine
    model: str
    configs: dict[str, ServerConfig]
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


def preflight(spec: Spec, model: str, check_model: bool = True) -> tuple[Engine, list[ServerConfig]]:
    """Everything that can be checked before a launch; raises SpecError with one line."""
    engine = get_engine(spec.engine)
    check_bind_host(spec.server.host)
    if check_model:
        engine.preflight(spec.server, model)
    configs = server_configs(spec)
    for cfg in configs:
        numa_prefix(cfg.numa)
        engine.check_config(cfg)
    return engine, configs


def run_sweep(spec: Spec, spec_text: str, out: Path, model: str, console: Console,
              retry_failed: bool = False, timing: Timing | None = None) -> Path:
    """Run (or resume) the sweep into `out` under its lock; returns the sweep dir. `timing`: costs
    measured earlier (an ETA from the first launch on); sweep.json's `served_runs` is 0 when no
    launch served a request."""
    engine, configs = preflight(spec, model)
    with SweepStore(out).locked() as store:  # a second sweep into `out` stops here (SweepBusy)
        return _run_locked(spec, spec_text, out, model, console, retry_failed, engine, configs, store, timing)


def _run_locked(spec: Spec, spec_text: str, out: Path, model: str, console: Console, retry_failed: bool,
                engine: Engine, configs: list[ServerConfig], store: SweepStore,
                timing: Timing | None = None) -> Path:
    resumed = store.exists()
    facts, source = collect_facts()
    host_cols = flatten_facts(facts)
    vers = versions()
    if not resumed:
        store.create(out.name, spec_text, facts, {"spec_name": spec.name, "engine": spec.engine,
                                                  "model": model, "versions": vers})
    else:
        store.update_meta(status="running", resumed_at=now())
        if store.adopt_spec(spec_text):
            console.print(f"spec.toml in {out} replaced by the spec resumed with (same axes, workload and "
                          f"server; its [report] table or layout differ)")
        reaped = store.reap_orphan()
        if reaped:
            console.print(f"[yellow]{reaped}[/yellow]")
    _record_ceiling_inputs(store.path, model, console)
    vm_total = int(psutil.virtual_memory().total)
    sw = Sweep(spec, store, engine, model, {c.config_id: c for c in configs}, console,
               Gpus(spec.memory.gpu), vm_total, parse_size(spec.memory.oom_floor, vm_total),
               {**host_cols, **vers}, source, retry_failed)
    st = parse_strategy(spec.strategy, spec.strategy_options)
    strategy = make_strategy(st, [c.config_id for c in configs], spec.workload.repeats)
    n_runs = sum(len(cells(spec, c)) for c in configs) * spec.workload.repeats
    console.print(f"sweep {out} ({'resumed' if resumed else 'new'}): {len(configs)} server configurations, "
                  f"{n_runs} runs at most, strategy {st.name}, engine {spec.engine}")
    units = spec.workload.repeats * sum(_units(c) for cfg in configs for c in cells(spec, cfg))
    with SweepProgress(console, len(configs) * spec.workload.repeats, n_runs, units, timing) as progress:
        sw.progress = progress
        seq = 0
        while (cid := strategy.ask()) is not None:
            repeat = strategy.arms[cid].launches
            if cid in sw.fatal:
                score = _skip_launch(sw, sw.configs[cid], repeat)
            else:
                score = _launch_or_replay(sw, sw.configs[cid], repeat, seq)
                seq += 1
            strategy.tell(cid, score)
    store.write_csv(sw.sweep_columns)
    best = strategy.best()
    store.update_meta(status="finished", finished_at=now(), launches=seq, best_config=best or "",
                      strategy=st.name, served_runs=sw.served_runs)
    label = sw.configs[best].label if best in sw.configs else "none"
    console.print(f"results: {store.path / 'results.csv'} ({seq} launches; best {label})")
    if not sw.served_runs:
        first = next(iter(sw.fatal.items()), None)
        cause = "see the failures in the report"
        if first:
            cid, (why, tail_rel) = first
            tail = (store.path / tail_rel).read_text(errors="replace") if tail_rel else ""
            cause = f"{sw.configs[cid].label}: {error_line(tail) or why}"
        console.print(f"[red]every launch failed: no configuration served a request. {cause}[/red]",
                      highlight=False)
    return store.path


def _record_ceiling_inputs(folder: Path, model: str, console: Console) -> None:
    """model.json (the GGUF's tensor table) and bandwidth.json (host read and GPU copy bandwidth,
    measured now by `python -m bench.membw` in a child process, so no CUDA context stays in
    ours), so the report's ceiling renders from the sweep directory alone, on any machine. Each is
    written once; a resumed sweep keeps them. A failed measurement is a note, not a stop."""
    from bench.report.modelbytes import record_model

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


def _units(cell: Cell) -> float:
    return cell_units(cell.requests, cell.warmup, cell.output_tokens, cell.concurrency)


def _skip_launch(sw: Sweep, config: ServerConfig, repeat: int) -> float | None:
    """A repeat of a configuration that failed before serving: every cell a `skipped` row, no launch."""
    why, tail_rel = sw.fatal[config.config_id]
    launch = sw.engine.launch(sw.spec.server, sw.model, config, sw.spec.server.port or 0)
    info = LaunchInfo(sweep_id=sw.store.path.name, engine=sw.spec.engine, config=config, repeat=repeat,
                      n_repeats=sw.spec.workload.repeats, endpoint=sw.spec.workload.endpoint, launch=launch,
                      log_rel="", mem_total=sw.mem_total, floor_bytes=sw.floor_bytes,
                      facts_source=sw.facts_source, placement=placement_of(sw.spec, config))
    todo = cells(sw.spec, config)
    reason = f"not relaunched: {why}"
    for cell in todo:
        if sw.store.read_run(config.config_id, repeat, cell.cell_id) is None:
            _save(sw, info, cell, "skipped", reason, [], None, [], None, now(), now(), tail_rel)
        elif sw.progress is not None:
            sw.progress.cell_done(_units(cell), measured=False)
    if sw.progress is not None:
        sw.progress.launch_done(ok=False)
    sw.console.print(f"[yellow]{config.label} r{repeat}: skipped ({reason})[/yellow]", highlight=False)
    return None


def _launch_or_replay(sw: Sweep, config: ServerConfig, repeat: int, seq: int) -> float | None:
    todo = []
    done_rows = []
    for cell in cells(sw.spec, config):
        run = sw.store.read_run(config.config_id, repeat, cell.cell_id)
        if run and (run.row.status in OK_STATUSES or not sw.retry_failed):
            done_rows.append(run.row.model_dump())
            sw.served_runs += run.row.status in OK_STATUSES
            if sw.progress is not None:
                sw.progress.cell_done(_units(cell), measured=False)
        else:
            todo.append(cell)
    if todo:
        done_rows += run_launch(sw, config, repeat, todo, seq)
    elif sw.progress is not None:
        sw.progress.launch_done(ok=False)  # replayed from disk: nothing to time
    if done_rows and all(r["status"] == "launch-failed" for r in done_rows):  # replayed or new
        first = done_rows[0]
        sw.fatal.setdefault(config.config_id, (f"repeat {repeat} failed before serving: "
                                               f"{first['error_reason']}", first["log_tail_path"]))
    score = launch_score(done_rows, parse_strategy(sw.spec.strategy, sw.spec.strategy_options).objective)
    rec = sw.store.read_launch(config.config_id, repeat)
    if rec is not None:
        rec.score, rec.complete = score, True
        sw.store.write_launch(rec)
    return score


def run_launch(sw: Sweep, config: ServerConfig, repeat: int, todo: list[Cell],
               seq: int) -> list[dict[str, Any]]:
    """Launch `config`, run the `todo` cells, stop it, confirm memory is released. Never raises for
    a server's failure: every cell gets a row."""
    spec, store = sw.spec, sw.store
    port = spec.server.port or free_port(spec.server.host)
    launch = sw.engine.launch(spec.server, sw.model, config, port)
    log = store.log_path(config.config_id, repeat)
    base_avail, _ = host_sample()
    gpu_base = sw.gpus.used() if sw.gpus.handles else []
    srv = ServerProcess(launch, log)
    abort = threading.Event()
    rec = LaunchRecord(seq=seq, config_id=config.config_id, repeat=repeat, config_label=config.label,
                       engine=spec.engine, axes=config.axes, argv=launch.shown_argv, env=launch.shown_env,
                       prefix=launch.prefix, base_url=launch.base_url, log_path=store.rel(log),
                       started_at=now())
    info = LaunchInfo(sweep_id=store.path.name, engine=spec.engine, config=config, repeat=repeat,
                      n_repeats=spec.workload.repeats, endpoint=spec.workload.endpoint, launch=launch,
                      log_rel=store.rel(log), mem_total=sw.mem_total, floor_bytes=sw.floor_bytes,
                      gpu_totals=sw.gpus.total() if sw.gpus.handles else [], facts_source=sw.facts_source,
                      placement=placement_of(spec, config))
    rows: list[dict[str, Any]] = []
    sampler: Sampler | None = None
    closers: list[Any] = []
    progress = sw.progress
    if progress is not None:
        progress.launch(f"{config.label} r{repeat}")
    try:
        try:
            srv.start()
        except OSError as err:  # binary not executable, prefix missing: a row, not a crash
            ok, reason = False, f"cannot start {launch.argv[0]}: {err.strerror or err}"
        else:
            store.remember_server(srv.pid, config.config_id)
            sampler = Sampler(srv.pid, srv.pgid, spec.memory.interval_s, sw.floor_bytes, sw.gpus,
                              on_breach=lambda _avail: abort.set())
            sampler.start()
            if progress is not None:
                progress.phase("loading")
            ok, reason = srv.wait_healthy(spec.server.health_timeout_s, abort)
        info.load_s = rec.load_s = round(time.monotonic() - srv.started, 3) if srv.proc else None
        rec.load_samples = sampler.since(0) if sampler else []
        if not ok or sampler is None:
            status = "oom-guard" if sampler and sampler.breached_at is not None else "launch-failed"
            if status == "oom-guard":
                reason = run_status([], True, None, sw.floor_bytes, sampler.breach_available,
                                    sampler.failed)[1]  # type: ignore[union-attr]
            rec.status, rec.error_reason = status, reason
            tail = _write_tail(store, srv, log)
            says = error_line(srv.log_tail())
            sw.console.print(f"[red]{config.label} r{repeat}: {status}: {reason}"
                             + (f"\n  server says: {says}" if says else "") + "[/red]", highlight=False)
            for cell in todo:
                rows.append(_save(sw, info, cell, status, reason, [], None, [], None, now(), now(), tail))
            return rows
        _, props = http_json(launch.base_url + "/props")
        props = props if isinstance(props, dict) else None
        log_text = srv.log_text()
        try:
            info.readback = sw.engine.readback(launch, props, log_text)
            info.versions = sw.engine.versions(spec.server, props, log_text)
        except Exception as err:  # a surprising /props or log must not cost the measurements
            info.readback.mismatches.append(f"readback failed: {type(err).__name__}: {err}")
        rec.applied, rec.mismatches = info.readback.applied, info.readback.mismatches
        rec.versions = info.versions
        client = Client(launch.base_url, sw.engine.api_prefix, max(c.concurrency for c in todo),
                        spec.workload.request_timeout_s)
        closers.append(client.close)
        for i, cell in enumerate(todo):
            row = _run_one(sw, info, srv, sampler, abort, cell, client)
            rows.append(row)
            if row["status"] in ("oom-guard", "server-died"):
                rec.status, rec.error_reason = row["status"], row["error_reason"]
                for rest in todo[i + 1:]:
                    rows.append(_save(sw, info, rest, row["status"], "not run: " + row["error_reason"], [],
                                      None, [], None, now(), now(), row["log_tail_path"]))
                break
        return rows
    finally:
        if progress is not None:
            progress.phase("stopping")
        try:
            for close in closers:
                close()
            if sampler is not None:
                sampler.stop()
        finally:  # whatever failed above, the server must not outlive its launch
            srv.stop(spec.server.stop_timeout_s)
            store.forget_server()
        tolerance = max(256 * 2**20, sw.mem_total // 50)
        rec.memory_released, rec.memory_release_detail = wait_released(
            srv.pgid, base_avail, tolerance, spec.memory.release_timeout_s, sw.gpus, gpu_base)
        if not rec.memory_released:
            sw.console.print(f"[yellow]memory not released after {config.label} r{repeat}: "
                             f"{rec.memory_release_detail}[/yellow]")
        rec.stopped_at = now()
        store.write_launch(rec)
        store.write_csv(sw.sweep_columns)
        if progress is not None:
            progress.launch_done(ok=rec.status == "ok")


def _run_one(sw: Sweep, info: LaunchInfo, srv: ServerProcess, sampler: Sampler, abort: threading.Event,
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


def _save(sw: Sweep, info: LaunchInfo, cell: Cell, status: str, reason: str, records: list,
          wall: float | None, samples: list, cpu: float | None, started: str, finished: str,
          tail: str, timed: bool = False) -> dict[str, Any]:
    run_rel = sw.store.rel(sw.store.run_path(info.config.config_id, info.repeat, cell.cell_id))
    row, cols = build_row(info, cell, status, reason, records, wall, samples, cpu, started, finished,
                          run_rel, tail)
    sw.store.write_run(RunRecord(row=row, columns=cols, requests=records, memory=samples))
    sw.store.write_csv(sw.sweep_columns)
    if sw.progress is not None:
        sw.progress.cell_done(_units(cell), measured=timed)
    return row.model_dump()


def _write_tail(store: SweepStore, srv: ServerProcess, log: Path) -> str:
    tail = log.with_suffix(".tail.txt")
    atomic_write_text(tail, srv.log_tail() + "\n")
    return store.rel(tail)
