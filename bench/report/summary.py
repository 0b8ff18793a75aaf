"""One line per server configuration: its decode/prefill rates with CIs, memory, and its ceiling.

Why "decode at the lowest concurrency": the runbook's goal (decode > 15 tokens/s) is what one user
chatting sees, and the roofline is a single-stream bound. Throughput at higher concurrency is on
its own plot. Repeats of the decode cell are averaged; the CI is the bench's t-based 95 % bounds.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd

from bench.metric_registry import GB  # the page's byte unit; summary.GB is what the report modules import
from bench.objective import DISAGREE, decode_cell, judged_decode
from bench.report import ceiling as ce
from bench.report.data import Sweep, json_dict, json_list
from bench.report.hostfacts import Gpu
from bench.report.modelbytes import ModelBytes, ModelFileError, model_for_sweep
from bench.report.placement import ALL_LAYERS, Placement, parse_placement
from bench.stats import mean
from omni.llamacpp import parse


@dataclass
class ConfigSummary:
    config_id: str
    label: str
    engine: str
    status: str
    command: str
    argv: list[str]
    env: dict[str, str]
    decode_concurrency: float | None = None
    decode_tps: float | None = None
    decode_lo: float | None = None
    decode_hi: float | None = None
    server_decode_tps: float | None = None
    decode_paired: float | None = None  # decode_client_over_server: the same requests, pooled
    prefill_tps: float | None = None
    prefill_lo: float | None = None
    prefill_hi: float | None = None
    host_total: float | None = None
    host_peak: float | None = None
    host_available_min: float | None = None  # lowest headroom: MemAvailable less the mapped model's pages
    headroom_basis: str = ""  # how host_available_min was measured (older sweeps: MemAvailable alone)
    server_mem: float | None = None  # server RSS with its mapped model counted by page-cache residency
    model_mapped: float | None = None
    page_cache: float | None = None
    gpu_peak: dict[int, float] = dataclasses.field(default_factory=dict)
    gpu_total: dict[int, float] = dataclasses.field(default_factory=dict)
    load_s: float | None = None
    served: bool = False
    error: str = ""
    run_json: str = ""
    ceiling: ce.Ceiling | None = None
    ceiling_note: str = ""
    efficiency: float | None = None
    above_ceiling: bool = False
    # the placement the ceiling used (argv, GPU layers corrected from the log) and the GPU memory
    # that splits it (free at sweep start, else total): the placement section sums the same mapping
    placement: Placement | None = None
    placement_gpu_mem: tuple[float, ...] = ()

    @property
    def headroom_gb(self) -> float | None:
        return None if self.host_available_min is None else self.host_available_min / GB

    @property
    def client_server_ratio(self) -> float | None:
        """Our client-measured decode rate over the server's own timings (1.0 = they agree): the
        row's pairing of the same requests when it has one, else the ratio of the two means."""
        if self.decode_paired is not None:
            return self.decode_paired
        if self.decode_tps is None or not self.server_decode_tps:
            return None
        return self.decode_tps / self.server_decode_tps

    @property
    def decode_disagrees(self) -> bool:
        ratio = self.client_server_ratio
        return ratio is not None and not DISAGREE[0] <= ratio <= DISAGREE[1]

    @property
    def decode_judged(self) -> float | None:
        """The figure criteria and ranking use: the lower of client and server when they disagree."""
        return judged_decode(self.decode_tps, self.server_decode_tps)

    @property
    def host_committed(self) -> float | None:
        """Host memory not available without cost: MemTotal less the lowest headroom."""
        if self.host_total and self.host_available_min is not None:
            return self.host_total - self.host_available_min
        return self.host_peak

    @property
    def mem_peak_total(self) -> float | None:
        """What the server holds: host memory attributable to it (else the host's) plus GPU peaks."""
        parts = [self.server_mem if self.server_mem is not None else self.host_peak, *self.gpu_peak.values()]
        known = [p for p in parts if p is not None]
        return sum(known) if known else None


def _num(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _mean(series: pd.Series) -> float | None:
    return mean(pd.to_numeric(series, errors="coerce"))


def _rate(series: pd.Series) -> float | None:
    """A lower CI bound of a rate: a t-interval of few noisy samples can dip below 0 tokens/s."""
    value = _mean(series)
    return None if value is None else max(value, 0.0)


def model_path(argv: list[str], spec: dict, meta: dict | None = None) -> str | None:
    """The server's model: the last `-m/--model` value (`python -m pkg` comes first), else the sweep's."""
    found = parse(argv, lenient=True).model
    if found and (found.endswith(".gguf") or "/" in found):
        return found
    server = spec.get("server") if isinstance(spec.get("server"), dict) else {}
    return (meta or {}).get("model") or server.get("model") or found or None


@cache
def _model_cached(path: str, sweep_dir: str, mtime: float) -> tuple[ModelBytes, str]:
    return model_for_sweep(path, Path(sweep_dir))


def _model(path: str, sweep_dir: Path) -> ModelBytes:
    """The model (file, else the sweep's model.json), read once per process."""
    record = sweep_dir / "model.json"
    return _model_cached(path, str(sweep_dir), record.stat().st_mtime if record.is_file() else 0.0)[0]


def _summarise(sweep: Sweep, cid: str, rows: pd.DataFrame) -> ConfigSummary:
    first = rows.iloc[0]
    ok = rows[rows["status"].isin(("ok", "partial"))]
    s = ConfigSummary(
        config_id=cid, label=str(first["config_label"] or cid), engine=str(first["engine"]),
        status="ok" if len(ok) == len(rows) else (str(rows[~rows.index.isin(ok.index)]["status"].iloc[0])),
        command=str(first["launch_command"]), argv=json_list(str(first["launch_argv"])),
        env=json_dict(str(first["launch_env"])),
        served=len(ok) > 0,  # ok/partial: at least one measured request succeeded
        error="; ".join(sorted({r for r in rows["error_reason"] if r}))[:500],
        load_s=_mean(rows["load_s"]),
    )
    s.host_total = _num(rows["host_mem_total_bytes"].max()) or sweep.host.mem_total_bytes
    s.host_peak = _num(rows["host_mem_peak_bytes"].max())
    s.host_available_min = _num(rows["host_headroom_min_bytes"].min())
    s.headroom_basis = "MemAvailable less the mapped model's cached pages"
    if s.host_available_min is None:
        s.host_available_min = _num(rows["host_mem_available_min_bytes"].min())
        s.headroom_basis = "MemAvailable (this sweep did not record the mapped model's pages)"
    s.server_mem = _num(rows["server_mem_peak_bytes"].max()) or _num(rows["server_rss_peak_bytes"].max())
    s.model_mapped = _num(rows["model_mapped_peak_bytes"].max())
    if s.model_mapped:  # the whole mapped model the server reads: its cached pages, not only those touched
        s.model_mapped = max(s.model_mapped, _num(rows["model_cached_peak_bytes"].max()) or 0)
    s.page_cache = _num(rows["host_cached_peak_bytes"].max())
    for i in sweep.gpu_indices():
        peak = _num(rows[f"gpu{i}_mem_peak_bytes"].max()) if f"gpu{i}_mem_peak_bytes" in rows else None
        total = _num(rows[f"gpu{i}_mem_total_bytes"].max()) if f"gpu{i}_mem_total_bytes" in rows else None
        fact = next((g.mem_total_bytes for g in sweep.host.gpus if g.index == i), None)
        if peak is not None:
            s.gpu_peak[i] = peak
        if total or fact:
            s.gpu_total[i] = total or fact  # type: ignore[assignment]
    cell = decode_cell(ok)  # the cell the objective `decode` reads (bench.objective)
    if len(cell):
        s.decode_concurrency = _num(cell["concurrency"].iloc[0])
        s.decode_tps, s.server_decode_tps = _mean(cell["decode_tps"]), _mean(cell["server_decode_tps"])
        if "decode_client_over_server" in cell:
            s.decode_paired = _mean(cell["decode_client_over_server"])
        s.decode_lo, s.decode_hi = _rate(cell["decode_tps_ci95_lo"]), _mean(cell["decode_tps_ci95_hi"])
        s.prefill_tps = _mean(cell["prefill_tps"])
        s.prefill_lo, s.prefill_hi = _rate(cell["prefill_tps_ci95_lo"]), _mean(cell["prefill_tps_ci95_hi"])
        s.run_json = str(cell["run_json"].iloc[0])
    return s


def _applied_layers(rows: pd.DataFrame) -> int | None:
    """GPU layers the server log says it offloaded (llama.cpp counts the output layer too)."""
    for text in rows.get("applied_config", pd.Series(dtype=str)).dropna():
        try:
            applied = json.loads(text)
        except (TypeError, ValueError):
            continue
        if not isinstance(applied, dict):
            continue
        done = applied.get("offloaded_layers", applied.get("log.offloaded_layers"))
        total = applied.get("total_layers", applied.get("log.total_layers"))
        if done is not None:
            done, total = int(done), int(total or 0)
            return ALL_LAYERS if total and done >= total else done
    return None


def _ceiling(sweep: Sweep, s: ConfigSummary, rows: pd.DataFrame) -> None:
    path = model_path(s.argv, sweep.spec, sweep.meta)
    if not path:
        s.ceiling_note = "unknown: no model path in the launch argv or spec"
        return
    if not Path(path).is_absolute():
        path = str((sweep.path / path).resolve()) if (sweep.path / path).exists() else path
    if s.engine not in ("llama-server", "xllamacpp", "ik_llama") and sweep.host.gpus:
        s.ceiling_note = f"unknown: tensor placement of engine {s.engine} is not modelled"
        return
    try:
        model = _model(path, sweep.path)
    except ModelFileError as err:
        s.ceiling_note = f"unknown: {err}"
        return
    known = {g.index: g for g in sweep.host.gpus}
    gpus = [known.get(i) or Gpu(i, None, s.gpu_total.get(i), None) for i in sweep.gpu_indices()]
    placement = parse_placement(s.argv, s.env, n_gpus=len(gpus), engine=s.engine)
    applied = _applied_layers(rows) if gpus else None
    if applied is not None and applied != placement.n_gpu_layers:
        note = f"GPU layers from the server log: {applied}"
        placement = dataclasses.replace(placement, n_gpu_layers=applied, notes=(*placement.notes, note))
    host_bw, gpu_bw = bandwidths(sweep, gpus)
    # llama.cpp splits layers by free memory when no -ts is given: free at sweep start, else total
    free_known = bool(gpus) and all(g.mem_free_bytes is not None for g in gpus)
    s.placement, s.placement_gpu_mem = placement, tuple(
        (g.mem_free_bytes if free_known else g.mem_total_bytes) or 0 for g in gpus)
    s.ceiling = ce.launch_ceiling(model, placement, host_bw, gpu_bw, list(s.placement_gpu_mem))
    s.ceiling_note = "; ".join(placement.notes)
    s.efficiency, s.above_ceiling = ce.efficiency(s.decode_tps, s.ceiling)
    s.above_ceiling = s.above_ceiling or ce.efficiency(s.server_decode_tps, s.ceiling)[1]
    cache_bound = (s.ceiling.tokens_per_s or 0) * ce.CACHE_SPEEDUP
    fastest = max(x or 0 for x in (s.decode_tps, s.server_decode_tps))
    cached = model.bytes_per_token < ce.CACHE_RESIDENT_BYTES and s.ceiling.host_bytes > 0
    if cached and fastest <= cache_bound:
        s.above_ceiling = False  # cache-resident weights: the DRAM ceiling is a guide, not a bound
        s.ceiling_note = "; ".join(filter(None, [s.ceiling_note, (
            f"{ce.human_bytes(model.bytes_per_token)} per token fits in CPU caches: the DRAM ceiling is "
            "a guide, not a bound")]))


def bandwidths(sweep: Sweep, gpus: list[Gpu]) -> tuple[ce.Bandwidth, list[ce.Bandwidth]]:
    """Host and per-GPU bandwidth: a figure the user gave, else the one measured at sweep start
    (bandwidth.json), else the DIMM facts / NVML clocks / datasheet."""
    opts, rec = sweep.options, sweep.bandwidth
    host_bw = ce.host_bandwidth(opts.host_bandwidth_gbps, sweep.host.dimm_mts,
                                opts.memory_channels or sweep.host.dimm_count)
    measured_host = rec.get("host_read_gbps")
    if not opts.host_bandwidth_gbps and isinstance(measured_host, int | float) and measured_host > 0:
        host_bw = ce.Bandwidth(measured_host * GB, (
            f"measured at sweep start: {measured_host:.1f} GB/s (bench.membw, "
            f"{rec.get('host_threads', '?')} threads reading a {rec.get('buffer_gib', '?')} GiB buffer; "
            "bandwidth.json)"))
    given = opts.gpu_bandwidth_gbps
    copies = [x for x in rec.get("gpu_copy_gbps") or [] if isinstance(x, int | float) and x > 0]
    gpu_bw = []
    for i, g in enumerate(gpus):
        if not given and i < len(copies):
            gpu_bw.append(ce.Bandwidth(copies[i] * GB, f"measured at sweep start: {copies[i]:.0f} GB/s "
                                       "(device-to-device copy, bench.membw; bandwidth.json)"))
        else:
            gpu_bw.append(ce.gpu_bandwidth(g.name, given[min(i, len(given) - 1)] if given else None,
                                           g.bus_width_bits, g.mem_clock_mhz))
    return host_bw, gpu_bw


def summarise(sweep: Sweep) -> list[ConfigSummary]:
    """Per-config summaries in the order the sweep ran them."""
    rows = sweep.rows
    if not len(rows):
        return []
    out = []
    for cid in dict.fromkeys(rows["config_id"]):
        group = rows[rows["config_id"] == cid]
        s = _summarise(sweep, cid, group)
        _ceiling(sweep, s, group)
        out.append(s)
    return out


def model_facts(sweep: Sweep, summaries: list[ConfigSummary]) -> ModelBytes | None:
    for s in summaries:
        path = model_path(s.argv, sweep.spec, sweep.meta)
        if path:
            try:
                return _model(path, sweep.path)
            except ModelFileError:
                return None
    return None
