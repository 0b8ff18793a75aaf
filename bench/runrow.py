"""Turn one finished (or failed) cell into its results row: metrics, memory peaks, launch strings.

Why separate from the loop: the row is the product's contract with the report and the strategies;
keeping its assembly in one pure function makes every column traceable to one line.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import Any

from bench.engines.base import Launch, Readback
from bench.metrics import summarize
from bench.plan import Cell, ServerConfig
from bench.schema import AXIS_PREFIX, GPU_PEAK, GPU_TOTAL, VERSION_PREFIX, MemSample, RequestRecord, Row

_PLACEMENT_READBACK = ("log.offloaded_layers", "log.total_layers", "log.buffers_mib")


@dataclass
class LaunchInfo:
    """What every row of one launch shares."""

    sweep_id: str
    engine: str
    config: ServerConfig
    repeat: int
    n_repeats: int
    endpoint: str
    launch: Launch
    log_rel: str
    mem_total: int
    floor_bytes: int
    gpu_totals: list[int] = field(default_factory=list)
    load_s: float | None = None
    readback: Readback = field(default_factory=Readback)
    versions: dict[str, str] = field(default_factory=dict)
    facts_source: str = ""
    placement: tuple[str, float | None] = ("manual", None)  # (source, predicted decode tokens/s)


def memory_fields(samples: list[MemSample], mem_total: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(row fields, per-GPU columns) from the samples taken during one cell."""
    if not samples:
        return {}, {}
    min_avail = min(s.host_available for s in samples)
    fields = {
        "host_mem_available_min_bytes": min_avail,
        "host_mem_peak_bytes": mem_total - min_avail,
        "host_cached_peak_bytes": max(s.host_cached for s in samples),
        "server_rss_peak_bytes": max(s.server_rss for s in samples),
        "server_mem_peak_bytes": max(s.server_mem for s in samples),
        "host_headroom_min_bytes": min(s.headroom for s in samples),
    }
    for name in ("model_mapped", "model_cached"):
        values = [getattr(s, name) for s in samples if getattr(s, name) is not None]
        if values:
            fields[f"{name}_peak_bytes"] = max(values)
    n_gpu = max(len(s.gpu_used) for s in samples)
    cols: dict[str, Any] = {}
    if n_gpu:
        peaks = [max(s.gpu_used[i] for s in samples if len(s.gpu_used) > i) for i in range(n_gpu)]
        fields["gpu_mem_peak_bytes"] = sum(peaks)
        cols = {GPU_PEAK.format(index=i): p for i, p in enumerate(peaks)}
    return fields, cols


def build_row(info: LaunchInfo, cell: Cell, status: str, reason: str, records: list[RequestRecord],
              wall_s: float | None, samples: list[MemSample], cpu_s: float | None,
              started: str, finished: str, run_rel: str, tail_rel: str) -> tuple[Row, dict[str, Any]]:
    """The row and its dynamic columns (axis.*, gpuN_*, version.*)."""
    metrics = summarize(records, wall_s) if records else {}
    mem, gpu_cols = memory_fields(samples, info.mem_total)
    launch = info.launch
    row = Row(
        sweep_id=info.sweep_id, config_id=info.config.config_id, config_label=info.config.label,
        cell_id=cell.cell_id, repeat=info.repeat, n_repeats=info.n_repeats, engine=info.engine,
        status=status, error_reason=reason, concurrency=cell.concurrency, input_tokens=cell.input_tokens,
        output_tokens=cell.output_tokens, requests=cell.requests, warmup_requests=cell.warmup,
        endpoint=info.endpoint, **metrics, **mem,
        host_mem_total_bytes=info.mem_total, oom_floor_bytes=info.floor_bytes,
        launch_command=launch.command, launch_argv=json.dumps(launch.shown_argv),
        launch_env=json.dumps(launch.shown_env),
        launch_prefix=json.dumps(launch.prefix), numa=info.config.numa, load_s=info.load_s,
        applied_config=json.dumps(info.readback.applied, default=str),
        config_mismatches="; ".join(info.readback.mismatches), started_at=started, finished_at=finished,
        run_json=run_rel, log_path=info.log_rel, log_tail_path=tail_rel, client_cpu_s=cpu_s,
        hostname=socket.gethostname(), facts_source=info.facts_source,
        placement_source=info.placement[0], predicted_decode_tps=info.placement[1],
        placement_readback=json.dumps({k.removeprefix("log."): v for k, v in info.readback.applied.items()
                                       if k in _PLACEMENT_READBACK}),
    )
    cols: dict[str, Any] = {AXIS_PREFIX + k: _axis_value(v) for k, v in info.config.axes.items()}
    cols |= gpu_cols
    cols |= {GPU_TOTAL.format(index=i): t for i, t in enumerate(info.gpu_totals)}
    cols |= {VERSION_PREFIX + k: v for k, v in info.versions.items()}
    return row, cols


def _axis_value(v: Any) -> Any:
    return " ".join(v) if isinstance(v, list) else v


def run_status(records: list[RequestRecord], breached: bool, exit_code: int | None,
               floor_bytes: int, breach_available: int | None, guard_failed: str = "") -> tuple[str, str]:
    """(status, reason) of a cell from what happened to the server and to the requests."""
    measured = [r for r in records if not r.warmup]
    errors = [r for r in measured if not r.ok]
    if guard_failed:
        return "oom-guard", (f"the OOM guard's memory sampler stopped ({guard_failed}): "
                             "server killed, not measured")
    if breached:
        return "oom-guard", (
            f"MemAvailable {(breach_available or 0) >> 20} MiB fell below the floor "
            f"{floor_bytes >> 20} MiB: server killed"
        )
    if exit_code is not None:
        return "server-died", f"server exited with code {exit_code} during the cell"
    if measured and len(errors) == len(measured):
        return "failed", f"all {len(errors)} requests failed: {errors[0].error}"
    if errors:
        return "partial", f"{len(errors)} of {len(measured)} requests failed: {errors[0].error}"
    return "ok", ""
