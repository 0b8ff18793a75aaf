"""What the planner needs of a host: GPUs, RAM, bandwidths, cores, NUMA, from facts or given numbers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.planner import MIB, PlanError
from bench.report.ceiling import gpu_bandwidth, host_bandwidth
from bench.report.hostfacts import Gpu as FactsGpu
from bench.report.hostfacts import from_facts

PCIE_LANE_GBPS = {3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}  # per lane, one direction


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    free_bytes: int
    bw_gbps: float
    bw_source: str
    pcie_gbps: float | None


@dataclass(frozen=True)
class HostFacts:
    """What the planner needs of a host (from `python -m facts collect` or given numbers)."""

    ram_bytes: int
    ram_source: str
    bw_gbps: float
    bw_source: str
    cores: int
    numa_nodes: int
    gpus: tuple[Gpu, ...]
    cpu_amx: bool = False  # Intel AMX (amx_tile): see cpu_only_args


# Why --no-repack on a CPU-only AMX host: the pinned llama.cpp (lcp 0.3.36) prefers the AMX buffer
# type for CPU weights when no GPU host buffer comes first. It admits deepseek2's attn_k_b (F16/Q8_0)
# from a probe with a contiguous input, but the MLA graph multiplies it by a permuted q_nope, which
# the AMX type refuses: ggml_backend_sched_split_graph aborts with GGML_ASSERT(*cur_backend_id != -1)
# (f16 and q8_0 files, the real R1 Q8_0 too); in a VM without usable AMX tiles the K-quant AMX
# kernels also fault. With a GPU the CUDA host buffer comes first and AMX is never used.
NO_AMX_REASON = ("CPU-only on an AMX CPU: --no-repack keeps weights out of llama.cpp's AMX buffer, which "
                 "aborts MLA models (GGML_ASSERT(*cur_backend_id != -1) on attn_k_b)")


def cpu_only_args(host: HostFacts) -> list[str]:
    """Server flags a CPU-only placement needs on this host (see NO_AMX_REASON)."""
    return ["--no-repack"] if host.cpu_amx and not host.gpus else []


def _gpu_bandwidth(g: FactsGpu | None) -> tuple[float, str]:
    """The report's estimate (NVML bus width x clock, else the datasheet), else an assumed figure."""
    bw = gpu_bandwidth(g.name, None, g.bus_width_bits, g.mem_clock_mhz) if g else None
    if bw is not None and bw.gbps:
        return bw.gbps, bw.source
    return 1000.0, "assumed 1000 GB/s (unknown GPU: pass --gpu-gbps)"


def host_from_facts(doc: dict[str, Any], membw: dict[str, Any] | None = None,
                    host_gbps: float | None = None, gpu_gbps: Sequence[float] = ()) -> HostFacts:
    """HostFacts from a facts document (the whole `python -m facts collect` JSON or its `facts`)."""
    facts = doc.get("facts", doc) if isinstance(doc, dict) else None
    if not isinstance(facts, dict) or not any(k in facts for k in ("nvidia_gpus", "numa", "cpu")):
        raise PlanError("facts: not a `python -m facts collect` document (no nvidia_gpus/numa/cpu); "
                        "give the JSON that command prints")
    seen = from_facts(facts)  # the report's lenient reading: DIMM speed and count, GPU clocks
    gpus_fact = facts.get("nvidia_gpus") or {}
    gpus: list[Gpu] = []
    for i, g in enumerate(gpus_fact.get("gpus") or [] if gpus_fact.get("available") else []):
        free = g.get("memory_free_mib") or g.get("memory_total_mib")
        if not free:
            raise PlanError(f"facts: GPU {g.get('index', i)} reports no memory; "
                            "recollect facts with nvidia-smi")
        if gpu_gbps:
            bw, src = float(gpu_gbps[min(i, len(gpu_gbps) - 1)]), "given"
        elif membw and membw.get("gpu_copy_gbps") and i < len(membw["gpu_copy_gbps"]):
            # membw's device-to-device copy counts read+write bytes: the read rate is its figure
            bw, src = float(membw["gpu_copy_gbps"][i]), "measured (bench membw d2d copy)"
        else:
            bw, src = _gpu_bandwidth(seen.gpus[i] if i < len(seen.gpus) else None)
        gen, width = g.get("pcie_gen_current"), g.get("pcie_width_current")
        pcie = PCIE_LANE_GBPS[int(gen)] * int(width) if gen and width and int(gen) in PCIE_LANE_GBPS else None
        name = str(g.get("name", f"GPU{i}"))
        gpus.append(Gpu(int(g.get("index", i)), name, int(free) * MIB, bw, src, pcie))
    numa = facts.get("numa") or {}
    nodes = numa.get("nodes") or [] if numa.get("available") else []
    mods = facts.get("memory_modules") or {}
    if nodes and all(n.get("size_mib") for n in nodes):
        ram, ram_src = sum(int(n["size_mib"]) for n in nodes) * MIB, "NUMA node sizes"
    elif mods.get("available") and mods.get("total_mib"):
        ram, ram_src = int(mods["total_mib"]) * MIB, "DIMMs"
    else:
        raise PlanError("facts: no host RAM size (numa or memory_modules); "
                        "recollect with numactl or dmidecode")
    if host_gbps:
        bw, bw_src = float(host_gbps), "given"
    elif membw and membw.get("host_read_gbps"):
        bw, bw_src = float(membw["host_read_gbps"]), "measured (bench membw)"
    elif mods.get("available") and mods.get("modules"):
        dimms = host_bandwidth(None, seen.dimm_mts, seen.dimm_count)  # one channel per populated DIMM
        if not dimms.gbps:
            raise PlanError("facts: DIMMs report no speed; give --host-gbps or a bench membw JSON (--membw)")
        bw, bw_src = dimms.gbps, f"DIMMs (peak): {dimms.source}"
    else:
        raise PlanError("facts: no host memory bandwidth; give --host-gbps N or --membw membw.json")
    cpu = facts.get("cpu") or {}
    cores = int(cpu.get("cores") or 0) or 1
    amx = "amx_tile" in (cpu.get("amx_flags") or [])
    return HostFacts(ram, ram_src, bw, bw_src, cores, max(len(nodes), 1), tuple(gpus), amx)


def load_host(facts_path: str | None, local: bool, membw_path: str | None, host_gbps: float | None,
              gpu_gbps: Sequence[float]) -> HostFacts:
    """Facts from a file or from this machine, plus optional bandwidth measurements."""
    membw = None
    if membw_path:
        try:
            membw = json.loads(Path(membw_path).read_text())
        except (OSError, ValueError) as exc:
            raise PlanError(f"--membw {membw_path}: not readable JSON ({exc}); "
                            "give bench membw's output") from None
    if local:
        from facts.collect import collect_local

        return host_from_facts(collect_local(), membw, host_gbps, gpu_gbps)
    if not facts_path:
        raise PlanError("no host: give --facts FACTS.json (python -m facts collect > FACTS.json) "
                        "or --host @local")
    try:
        doc = json.loads(Path(facts_path).read_text())
    except (OSError, ValueError) as exc:
        raise PlanError(f"--facts {facts_path}: not readable JSON ({exc}); "
                        "give `python -m facts collect` output") from None
    return host_from_facts(doc, membw, host_gbps, gpu_gbps)
