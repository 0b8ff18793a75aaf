"""The one place that names result fields: per-request records, per-run files and results.csv rows.

Why one module: the report, the strategies and the tests read these names; a metric spelled two
ways in two files is a silent bug. `Row` is the flat results.csv row (llama-bench style: every row
carries the full launch, versions and hardware so any two rows compare without joins). Columns
that depend on the sweep (one per axis, one per GPU, one per host fact) use the prefixes below.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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
    server_decode_tps: float | None = None  # llama.cpp timings.predicted_per_second
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


class Row(BaseModel):
    """One results.csv row: (server config, workload cell, repeat). Empty where not applicable.

    `decode_tps` = mean per-request client-measured decode rate; `throughput_tps` = output tokens of
    all measured requests / wall time of the cell. `*_ci95_lo/hi` are t-based 95 % confidence
    bounds of the mean: across repeats when the cell ran >= 2 repeats (`ci_basis = repeats`), else
    across the cell's requests (`ci_basis = requests`).
    """

    model_config = ConfigDict(extra="forbid")
    # identity
    sweep_id: str
    config_id: str
    config_label: str
    cell_id: str
    repeat: int  # launch number of this configuration (each repeat is a fresh server start)
    n_repeats: int
    engine: str
    status: Status
    error_reason: str = ""
    # workload
    concurrency: int
    input_tokens: int
    output_tokens: int
    requests: int
    warmup_requests: int
    endpoint: str
    # outcome counts
    ok_requests: int = 0
    errors: int = 0
    dropped_connections: int = 0
    token_count_mismatches: int = 0
    burst_requests: int = 0  # requests whose tokens arrived in bursts: left out of decode_tps
    input_tokens_measured: float | None = None  # mean usage.prompt_tokens
    output_tokens_measured: float | None = None  # mean output tokens per request
    # latency (ms)
    ttft_ms_p50: float | None = None
    ttft_ms_p90: float | None = None
    ttft_ms_p99: float | None = None
    ttft_ms_mean: float | None = None
    ttft_content_ms_p50: float | None = None
    ttft_content_ms_p90: float | None = None
    itl_ms_p50: float | None = None
    itl_ms_p90: float | None = None
    itl_ms_p99: float | None = None
    itl_ms_mean: float | None = None
    tpot_ms_p50: float | None = None
    tpot_ms_p90: float | None = None
    tpot_ms_p99: float | None = None
    tpot_ms_mean: float | None = None
    e2e_ms_p50: float | None = None
    e2e_ms_p90: float | None = None
    e2e_ms_p99: float | None = None
    e2e_ms_mean: float | None = None
    # rates (tokens/s)
    decode_tps: float | None = None
    decode_tps_p50: float | None = None
    decode_tps_ci95_lo: float | None = None
    decode_tps_ci95_hi: float | None = None
    server_decode_tps: float | None = None
    server_decode_tps_ci95_lo: float | None = None
    server_decode_tps_ci95_hi: float | None = None
    prefill_tps: float | None = None
    prefill_tps_ci95_lo: float | None = None
    prefill_tps_ci95_hi: float | None = None
    server_prefill_tps: float | None = None
    throughput_tps: float | None = None
    throughput_tps_ci95_lo: float | None = None
    throughput_tps_ci95_hi: float | None = None
    ci_basis: Literal["repeats", "requests", ""] = ""
    cell_wall_s: float | None = None
    # memory (bytes)
    host_mem_total_bytes: int | None = None
    host_mem_available_min_bytes: int | None = None
    host_mem_peak_bytes: int | None = None  # MemTotal - min MemAvailable during the run
    host_cached_peak_bytes: int | None = None  # page cache (Cached + Buffers), the whole host
    server_rss_peak_bytes: int | None = None
    server_mem_peak_bytes: int | None = None  # RSS, mapped model by its cached pages (MemSample)
    model_mapped_peak_bytes: int | None = None  # resident GGUF pages the server maps (smaps)
    model_cached_peak_bytes: int | None = None  # GGUF pages in the page cache while mapped (mincore)
    host_headroom_min_bytes: int | None = None  # min MemAvailable less the mapped model's pages
    gpu_mem_peak_bytes: int | None = None  # sum over GPUs of each GPU's peak used memory
    oom_floor_bytes: int | None = None
    # launch (strings, so the row alone can relaunch the server)
    launch_command: str = ""  # prefix + argv, shell-quoted
    launch_argv: str = ""  # JSON list
    launch_env: str = ""  # JSON object: only the variables the spec sets
    launch_prefix: str = ""  # JSON list (numactl ...), [] when none
    numa: str = ""
    load_s: float | None = None  # launch → healthy
    applied_config: str = ""  # JSON: what the server reports it applied
    config_mismatches: str = ""  # "; "-joined asked≠applied findings
    # provenance
    started_at: str = ""
    finished_at: str = ""
    run_json: str = ""  # path relative to the sweep dir
    log_path: str = ""  # server log, relative to the sweep dir
    log_tail_path: str = ""  # set when status is not ok
    client_cpu_s: float | None = None  # our process's CPU seconds during the cell
    hostname: str = ""
    facts_source: str = ""
    # placement: where the launch's placement came from and what the planner predicted for it
    placement_source: str = ""  # planner | fit | template | grid | manual
    predicted_decode_tps: float | None = None
    placement_readback: str = ""  # JSON: model buffer MiB per device and layers offloaded (server log)


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
