"""The cells of one launch: drive each workload cell against the launched server, build its row and
save it (run file + a line of results.csv); a failed or skipped launch still gets one row per cell.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

from bench.load import CellLoad, Client, make_prompt, run_cell
from bench.memory import Sampler
from bench.plan import Cell, ServerConfig
from bench.runrow import LaunchInfo, build_row, run_status
from bench.schema import OK_STATUSES, RunRecord
from bench.server import ServerProcess, error_line
from bench.store import SweepStore, now
from bench.sweep_launch import launched
from bench.sweep_state import SweepRun, cell_cost, placement_of
from omni.files import atomic_write_text


def skip_launch(run: SweepRun, config: ServerConfig, repeat: int) -> float | None:
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
            save_row(run, info, cell, "skipped", reason, [], None, [], None, now(), now(), tail_rel)
        elif run.progress is not None:
            run.progress.cell_done(cell_cost(cell), measured=False)
    if run.progress is not None:
        run.progress.launch_done(ok=False)
    run.console.print(f"[yellow]{config.label} r{repeat}: skipped ({reason})[/yellow]", highlight=False)
    return None


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
            return [save_row(run, info, cell, rec.status, live.reason, [], None, [], None, now(), now(), tail)
                    for cell in todo]
        assert live.sampler is not None and live.client is not None
        for i, cell in enumerate(todo):
            row = _run_one(run, info, live.server, live.sampler, live.abort, cell, live.client)
            rows.append(row)
            if row["status"] in ("oom-guard", "server-died"):
                rec.status, rec.error_reason = row["status"], row["error_reason"]
                for rest in todo[i + 1:]:
                    rows.append(save_row(run, info, rest, row["status"], "not run: " + row["error_reason"],
                                         [], None, [], None, now(), now(), row["log_tail_path"]))
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
    row = save_row(sw, info, cell, status, reason, records, wall, sampler.since(mark), cpu, started, now(),
                   tail, timed=True)
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


def save_row(sw: SweepRun, info: LaunchInfo, cell: Cell, status: str, reason: str, records: list,
          wall: float | None, samples: list, cpu: float | None, started: str, finished: str,
          tail: str, timed: bool = False) -> dict[str, Any]:
    run_rel = sw.store.rel(sw.store.run_path(info.config.config_id, info.repeat, cell.cell_id))
    row, cols = build_row(info, cell, status, reason, records, wall, samples, cpu, started, finished,
                          run_rel, tail)
    run = RunRecord(row=row, columns=cols, requests=records, memory=samples)
    sw.store.write_run(run)
    sw.store.append_row(run, sw.sweep_columns)
    if sw.progress is not None:
        sw.progress.cell_done(cell_cost(cell), measured=timed)
    return row.model_dump()


def _write_tail(store: SweepStore, srv: ServerProcess, log: Path) -> str:
    tail = log.with_suffix(".tail.txt")
    atomic_write_text(tail, srv.log_tail() + "\n")
    return store.rel(tail)
