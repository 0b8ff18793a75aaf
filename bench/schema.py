"""The one place that names result fields: per-request records, per-run files and results.csv rows.

Why one module: the report, the strategies and the tests read these names; a metric spelled two
ways in two files is a silent bug. `Row` is the flat results.csv row (llama-bench style: every row
carries the full launch, versions and hardware so any two rows compare without joins). Columns
that depend on the sweep (one per axis, one per GPU, one per host fact) use the prefixes below.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from bench.metric_registry import METRICS, Metric

AXIS_PREFIX = "axis."  # axis.<axis key> → the value of that axis for the row's config
GPU_PEAK = "gpu{index}_mem_peak_bytes"  # per-GPU used-memory peak during the run (NVML)
GPU_TOTAL = "gpu{index}_mem_total_bytes"
HOST_PREFIX = "host."  # host.<fact> → flattened hardware facts
VERSION_PREFIX = "version."  # version.<package> → versions of engine, build and Python packages

Status = Literal[
    "ok",  # every measured request succeeded
    "partial",  # some requests failed (see errors, error_reason)
    "failed",  # no request succeeded while the server stayed up
    "launch-failed",  # the server never became healthy (see log_tail_path)
    "server-died",  # the server exited during the cell
    "oom-guard",  # host MemAvailable fell below the floor: server killed
    "skipped",  # excluded at run time (server not relaunched after a fatal launch error)
]
OK_STATUSES = ("ok", "partial")


class RequestRecord(BaseModel):
    """One streamed request as the client saw it (times in ms from the cell start unless noted)."""

    model_config = ConfigDict(extra="forbid")
    index: int
    warmup: bool = False
    ok: bool = False
    error: str = ""
    retries: int = 0  # fresh-connection retries after a dropped keep-alive connection
    start_ms: float = 0.0
    ttft_ms: float | None = None  # first token of any kind (reasoning or content)
    ttft_content_ms: float | None = None  # first content token (reasoning models stream thinking first)
    e2e_ms: float | None = None
    itl_ms: list[float] = Field(default_factory=list)  # gaps between token-bearing chunks
    tpot_ms: float | None = None  # (e2e - ttft) / (output_tokens - 1)
    input_tokens: int | None = None  # what the server counted (usage.prompt_tokens)
    input_tokens_asked: int = 0
    output_tokens: int | None = None  # usage.completion_tokens, else the client count
    client_tokens: int = 0  # token-bearing chunks the client counted
    token_count_mismatch: bool = False
    burst: bool = False  # most tokens came several per read: its token times are not decode times
    decode_tps: float | None = None  # (output_tokens - 1) / (t_last - t_first), client clock
    prefill_tps: float | None = None  # input_tokens / ttft, client clock
    server_decode_tps: float | None = None  # (timings.predicted_n - 1) / predicted_ms
    server_prefill_tps: float | None = None  # llama.cpp timings.prompt_per_second
    server_timings: dict[str, float] | None = None


class MemSample(BaseModel):
    """One memory sample; t is seconds since the launch started."""

    t: float
    host_available: int
    host_cached: int
    server_rss: int  # RSS of the server's process tree (mapped model pages it has touched included)
    model_mapped: int | None = None  # resident pages of the GGUF file(s) the server maps (smaps Rss)
    model_cached: int | None = None  # pages of those GGUF file(s) in the page cache (mincore)
    gpu_used: list[int] = Field(default_factory=list)

    @property
    def server_mem(self) -> int:
        """Host memory the server needs: its RSS with the mapped model counted by its page-cache
        residency (the whole mapped model the server reads, not only the pages it touched yet)."""
        if not self.model_mapped:
            return self.server_rss
        return self.server_rss - self.model_mapped + max(self.model_cached or 0, self.model_mapped)

    @property
    def headroom(self) -> int:
        """MemAvailable less the mapped model's cached pages: the kernel counts those as available,
        but reclaiming them makes every token read the weights from disk."""
        held = max(self.model_cached or 0, self.model_mapped or 0) if self.model_mapped else 0
        return max(self.host_available - held, 0)


ROW_DOC = """One results.csv row: (server config, workload cell, repeat). Empty where not applicable.

`decode_tps` = mean per-request client-measured decode rate; `throughput_tps` = output tokens of
all measured requests / wall time of the cell. `*_ci95_lo/hi` are t-based 95 % confidence
bounds of the mean: across repeats when the cell ran >= 2 repeats (`ci_basis = repeats`), else
across the cell's requests (`ci_basis = requests`). Every numeric field is a registered metric
(`bench.metric_registry.METRICS`: unit, better direction, description in the field's schema).
"""

# identity and workload: what the row is a measurement of
_HEAD: dict[str, Any] = {
    "sweep_id": (str, ...),
    "config_id": (str, ...),
    "config_label": (str, ...),
    "cell_id": (str, ...),
    "repeat": (int, Field(..., description="launch number of this configuration (each is a fresh start)")),
    "n_repeats": (int, ...),
    "engine": (str, ...),
    "status": (Status, ...),
    "error_reason": (str, ""),
    "concurrency": (int, ...),
    "input_tokens": (int, ...),
    "output_tokens": (int, ...),
    "requests": (int, ...),
    "warmup_requests": (int, ...),
    "endpoint": (str, ...),
}
# launch strings (so the row alone can relaunch the server) and provenance
_TAIL: dict[str, Any] = {
    "ci_basis": (Literal["repeats", "requests", ""], ""),
    "launch_command": (str, Field("", description="prefix + argv, shell-quoted")),
    "launch_argv": (str, Field("", description="JSON list")),
    "launch_env": (str, Field("", description="JSON object: only the variables the spec sets")),
    "launch_prefix": (str, Field("", description="JSON list (numactl ...), [] when none")),
    "numa": (str, ""),
    "applied_config": (str, Field("", description="JSON: what the server reports it applied")),
    "config_mismatches": (str, Field("", description='"; "-joined asked≠applied findings')),
    "started_at": (str, ""),
    "finished_at": (str, ""),
    "run_json": (str, Field("", description="path relative to the sweep dir")),
    "log_path": (str, Field("", description="server log, relative to the sweep dir")),
    "log_tail_path": (str, Field("", description="set when status is not ok")),
    "hostname": (str, ""),
    "facts_source": (str, ""),
    # placement: where the launch's placement came from and what the planner predicted for it
    "placement_source": (str, Field("", description="planner | fit | template | grid | manual")),
    "placement_readback": (str, Field("", description="JSON: model buffer MiB per device and layers "
                                                      "offloaded (server log)")),
}


def _metric_field(m: Metric) -> tuple[Any, Any]:
    extra = {"unit": m.unit, "direction": m.direction}
    if m.integer:
        return int, Field(0, description=m.description, json_schema_extra=extra)
    return m.python_type | None, Field(None, description=m.description, json_schema_extra=extra)


Row = create_model(  # type: ignore[call-overload]
    "Row", __config__=ConfigDict(extra="forbid"), __doc__=ROW_DOC, __module__=__name__,
    **_HEAD, **{m.name: _metric_field(m) for m in METRICS.values()}, **_TAIL,
)
NUMERIC_COLUMNS: tuple[str, ...] = tuple(
    name for name, f in Row.model_fields.items() if f.annotation in (int, float, int | None, float | None)
)
TEXT_COLUMNS: tuple[str, ...] = tuple(name for name in Row.model_fields if name not in NUMERIC_COLUMNS)


FIXED_COLUMNS: tuple[str, ...] = tuple(Row.model_fields)


class LaunchRecord(BaseModel):
    """What happened to one server launch (runs/<config_id>/r<repeat>/launch.json)."""

    model_config = ConfigDict(extra="forbid")
    seq: int  # order of launches in the sweep (a resumed sweep replays them in this order)
    config_id: str
    repeat: int
    config_label: str
    engine: str
    axes: dict[str, Any]
    argv: list[str]
    env: dict[str, str]
    prefix: list[str]
    base_url: str
    status: str = "ok"  # ok | launch-failed | server-died | oom-guard
    score: float | None = None  # the strategy objective of this launch (None: failed)
    complete: bool = False  # every cell of the launch has a run file
    error_reason: str = ""
    load_s: float | None = None
    applied: dict[str, Any] = Field(default_factory=dict)
    mismatches: list[str] = Field(default_factory=list)
    versions: dict[str, str] = Field(default_factory=dict)
    log_path: str = ""
    started_at: str = ""
    stopped_at: str = ""
    memory_released: bool | None = None
    memory_release_detail: str = ""
    load_samples: list[MemSample] = Field(default_factory=list)


class RunRecord(BaseModel):
    """One (config, repeat, cell): runs/<config_id>/r<repeat>/<cell_id>.json; results.csv derives from it."""

    model_config = ConfigDict(extra="forbid")
    row: Row
    columns: dict[str, Any] = Field(default_factory=dict)  # axis.*, gpuN_*, version.* for this row
    requests: list[RequestRecord]
    memory: list[MemSample]
