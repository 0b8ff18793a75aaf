"""The decode roofline: the tokens/s memory bandwidth allows, and where its inputs came from.

Single-stream decode is memory-bound: each token reads every active weight once. So

    t_token = B_host / BW_host + sum_i B_gpu_i / BW_gpu_i      ceiling = 1 / t_token

with B_* the bytes per token resident in each memory (see `placement.bytes_by_device`) and BW_*
the bandwidths. GPUs in a layer split run one after another (sum); a row split reads in parallel
(max). KV-cache reads are left out: small at short context, so the ceiling is an upper bound.
A measured rate above it is a measurement error, never a record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.report.modelbytes import ModelBytes
from bench.report.placement import Placement, bytes_by_device

GB = 1e9
# Below this many bytes read per token the weights stay in CPU caches, which are faster than DRAM:
# the DRAM ceiling is then a guide, not a bound, and a rate above it is not a measurement error.
CACHE_RESIDENT_BYTES = 256e6
CACHE_SPEEDUP = 20.0  # caches beat DRAM by well under this; a rate further above is still an error

# Datasheet peak memory bandwidth (GB/s), the last resort when neither the spec nor the facts say.
_DATASHEET_GBPS = (
    ("h200", 4800.0), ("h100 pcie", 2000.0), ("h100 nvl", 3900.0), ("h100", 3350.0),
    ("a100-sxm4-80gb", 2039.0), ("a100 80gb pcie", 1935.0), ("a100", 1555.0),
    ("rtx pro 6000 blackwell", 1792.0), ("rtx 5090", 1792.0), ("rtx 4090", 1008.0),
    ("rtx 6000 ada", 960.0), ("rtx 3090", 936.0), ("l40s", 864.0),
)


def human_bytes(value: float | None) -> str:
    """Decimal units (the bandwidths are GB/s = 10^9 B/s, so bytes per token are too)."""
    if value is None:
        return "unknown"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.4g} {unit}"
    return f"{value:.0f} B"


@dataclass(frozen=True)
class Bandwidth:
    """A bandwidth with the words a reader needs to trust it."""

    bytes_per_s: float | None
    source: str

    @property
    def gbps(self) -> float | None:
        return None if self.bytes_per_s is None else self.bytes_per_s / GB


def host_bandwidth(
    measured_gbps: float | None = None, dimm_mts: float | None = None, channels: int | None = None,
) -> Bandwidth:
    """Measured figure first; else DIMM configured speed x channels x 8 bytes per transfer."""
    if measured_gbps:
        return Bandwidth(measured_gbps * GB, f"measured, given in the spec: {measured_gbps:g} GB/s")
    if dimm_mts and channels:
        value = dimm_mts * 1e6 * channels * 8
        return Bandwidth(value, f"{dimm_mts:g} MT/s x {channels} channels x 8 B = {value / GB:.1f} GB/s")
    missing = " and ".join(n for n, v in (("DIMM speed", dimm_mts), ("channel count", channels)) if not v)
    return Bandwidth(None, f"unknown: no {missing} in the host facts; give a measured figure "
                           "(--host-bandwidth-gbps, or host_bandwidth_gbps in report.toml)")


def gpu_bandwidth(
    name: str | None, measured_gbps: float | None = None,
    bus_width_bits: float | None = None, mem_clock_mhz: float | None = None,
) -> Bandwidth:
    """Measured figure first; else NVML bus width x max memory clock x 2 (DDR); else datasheet."""
    if measured_gbps:
        return Bandwidth(measured_gbps * GB, f"measured, given in the spec: {measured_gbps:g} GB/s")
    if bus_width_bits and mem_clock_mhz:
        value = bus_width_bits / 8 * mem_clock_mhz * 1e6 * 2
        text = f"{bus_width_bits:g} bit / 8 x {mem_clock_mhz:g} MHz x 2 = {value / GB:.0f} GB/s"
        return Bandwidth(value, text)
    low = (name or "").lower()
    for key, gbps in _DATASHEET_GBPS:
        if key in low:
            return Bandwidth(gbps * GB, f"datasheet peak for {name}: {gbps:g} GB/s")
    return Bandwidth(None, f"unknown for GPU {name or '?'}: give a measured figure "
                           "(--gpu-bandwidth-gbps, or gpu_bandwidth_gbps in report.toml)")


@dataclass(frozen=True)
class Ceiling:
    """The roofline of one launch; `tokens_per_s` is None when an input is unknown."""

    tokens_per_s: float | None
    host_bytes: float
    gpu_bytes: tuple[float, ...]
    host_bw: Bandwidth
    gpu_bw: tuple[Bandwidth, ...]
    placement: str
    reason: str = ""

    @property
    def total_bytes(self) -> float:
        return self.host_bytes + sum(self.gpu_bytes)

    def formula(self) -> str:
        """The arithmetic with this launch's numbers, for the page."""
        terms = []
        if self.host_bytes > 0:
            bw = f"{self.host_bw.gbps:.1f} GB/s" if self.host_bw.gbps else "BW_host (unknown)"
            terms.append(f"{human_bytes(self.host_bytes)} / {bw}")
        for i, (b, bw) in enumerate(zip(self.gpu_bytes, self.gpu_bw, strict=False)):
            if b > 0:
                rate = f"{bw.gbps:.0f} GB/s" if bw.gbps else f"BW_gpu{i} (unknown)"
                terms.append(f"{human_bytes(b)} / {rate}")
        rhs = f" = {self.tokens_per_s:.1f} tok/s" if self.tokens_per_s else ""
        return "1 / (" + " + ".join(terms or ["0"]) + ")" + rhs


def combine(
    host_bytes: float, gpu_bytes: Sequence[float], host_bw: Bandwidth, gpu_bw: Sequence[Bandwidth],
    placement: str = "", split_mode: str = "layer",
) -> Ceiling:
    """Time per token = host part + GPU part; the GPU part sums a layer split, maxes a row split."""
    unknown = []
    t_host = 0.0
    if host_bytes > 0:
        if host_bw.bytes_per_s:
            t_host = host_bytes / host_bw.bytes_per_s
        else:
            unknown.append("host bandwidth")
    gpu_times = []
    for i, b in enumerate(gpu_bytes):
        if b <= 0:
            continue
        bw = gpu_bw[i] if i < len(gpu_bw) else Bandwidth(None, "unknown")
        if bw.bytes_per_s:
            gpu_times.append(b / bw.bytes_per_s)
        else:
            unknown.append(f"GPU {i} bandwidth")
    t_gpu = (max(gpu_times) if split_mode == "row" else sum(gpu_times)) if gpu_times else 0.0
    total = t_host + t_gpu
    tps = None if unknown or total <= 0 else 1.0 / total
    reason = ("unknown " + ", ".join(unknown)) if unknown else ""
    return Ceiling(tps, host_bytes, tuple(gpu_bytes), host_bw, tuple(gpu_bw), placement, reason)


def launch_ceiling(
    model: ModelBytes, placement: Placement, host_bw: Bandwidth, gpu_bw: Sequence[Bandwidth],
    gpu_mem_bytes: Sequence[float] = (),
) -> Ceiling:
    """The ceiling of one llama.cpp launch of `model` on this host."""
    host, gpu = bytes_by_device(model, placement, len(gpu_bw), gpu_mem_bytes)
    return combine(host, gpu, host_bw, gpu_bw, placement.describe(), placement.split_mode)


def efficiency(measured_tps: float | None, ceiling: Ceiling) -> tuple[float | None, bool]:
    """(measured / ceiling, above_ceiling); above the ceiling means the measurement is wrong."""
    if measured_tps is None or not ceiling.tokens_per_s:
        return None, False
    ratio = measured_tps / ceiling.tokens_per_s
    return ratio, ratio > 1.0
