"""One server launch as a context manager (`launched`): start, health, readback; on exit, whatever
happened inside, stop the server, check its memory was released and write launch.json.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.engines.base import Launch
from bench.load import Client
from bench.memory import Sampler, host_sample, wait_released
from bench.plan import Cell, ServerConfig
from bench.runrow import LaunchInfo, run_status
from bench.schema import LaunchRecord
from bench.server import ServerProcess, free_port, http_json
from bench.store import now
from bench.sweep_state import SweepRun, placement_of


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
