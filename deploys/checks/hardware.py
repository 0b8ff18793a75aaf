"""Hardware rows of the Verification Matrix: GPUs and their PCIe links, DIMMs, NUMA, CPU, RAM.

Everything is read from ``facts.hardware`` against the host data (``deploys/hostdata.py``). PCIe
generation is judged on nvidia-smi's ``pcie.link.gen.max`` (the best generation this GPU *and* its
slot/BIOS allow): the current generation drops to Gen1 at idle to save power, so judging it would
fail a healthy box; a BIOS forcing Gen4 lowers the max and fails the row as it should.
"""

from __future__ import annotations

from typing import Any

from deploys.checks import Row, Weight
from deploys.checks.context import CheckContext, judge, unknown

ORDER = 10


def _why(fact: dict[str, Any]) -> str:
    return str(fact.get("reason") or "fact unavailable")


def _match_gpus(expected: list[dict], found: list[dict]) -> list[tuple[dict, dict | None]]:
    """Pair each expected GPU with the found GPU of the same name (case-insensitive), in order."""
    left = list(found)
    pairs = []
    for want in expected:
        name = str(want.get("name", "")).casefold()
        hit = next((g for g in left if name and name in str(g.get("name", "")).casefold()), None)
        if hit is None:
            hit = next((g for g in left if str(g.get("name", "")).casefold() in name), None)
        if hit is not None:
            left.remove(hit)
        pairs.append((want, hit))
    return pairs


def gpu_rows(ctx: CheckContext) -> list[Row]:
    expected = ctx.data.get("gpus") or []
    fact = ctx.hardware("NvidiaGpus")
    target = ", ".join(f"{g.get('name')} {g.get('memory_mib')} MiB" for g in expected) or "as inventory"
    if not fact.get("available"):
        return [unknown("GPUs visible", target, Weight.CRITICAL, _why(fact))]
    found = fact.get("gpus") or []
    measured = ", ".join(f"{g.get('name')} {g.get('memory_total_mib')} MiB" for g in found) or "none"
    pairs = _match_gpus(expected, found)
    memory_ok = all(
        hit is not None and hit.get("memory_total_mib") is not None
        and abs(hit["memory_total_mib"] - want.get("memory_mib", 0)) <= 0.01 * want.get("memory_mib", 0)
        for want, hit in pairs
    )
    ok = len(found) == len(expected) and memory_ok
    reason = "" if ok else f"expected {len(expected)} GPU(s) with the inventory's names and memory (±1%)"
    rows = [judge("GPUs visible", target, measured, ok, Weight.CRITICAL, reason)]
    for want, hit in pairs:
        gen, width = want.get("pcie_gen", 5), want.get("pcie_width", 16)
        name = f"PCIe link {want.get('name')}"
        link_target = f"Gen{gen} x{width}"
        if hit is None:
            rows.append(unknown(name, link_target, Weight.CRITICAL, "GPU not found"))
            continue
        gmax, gcur = hit.get("pcie_gen_max"), hit.get("pcie_gen_current")
        wcur, wmax = hit.get("pcie_width_current"), hit.get("pcie_width_max")
        measured_link = f"Gen{gcur} (max Gen{gmax}) x{wcur} (max x{wmax}) at {hit.get('bus_id')}"
        if gmax is None or wcur is None:
            rows.append(unknown(name, link_target, Weight.CRITICAL, "nvidia-smi gave no link data",
                                measured_link))
            continue
        link_ok = gmax >= gen and wcur >= width
        note = "" if link_ok else "slot or BIOS limits the link: check the PCIe speed setting (phase 1)"
        if link_ok and gcur is not None and gcur < gmax:
            note = "current generation below max is idle power saving"
        rows.append(judge(name, link_target, measured_link, link_ok, Weight.CRITICAL, note))
    return rows


def memory_rows(ctx: CheckContext) -> list[Row]:
    memory = ctx.data.get("memory") or {}
    speed, count = memory.get("speed_mts"), memory.get("dimm_count")
    target = f"{count} DIMMs at {speed} MT/s configured"
    fact = ctx.hardware("MemoryModules")
    rows = []
    if not fact.get("available"):
        rows.append(unknown("DIMM configured speed", target, Weight.HIGH, _why(fact)))
    else:
        modules = fact.get("modules") or []
        speeds = sorted({m.get("configured_mts") for m in modules}, key=lambda v: (v is None, v or 0))
        measured = f"{len(modules)} DIMMs at {'/'.join(str(s) for s in speeds) or '?'} MT/s"
        ok = bool(modules) and len(modules) == count and {m.get("configured_mts") for m in modules} == {speed}
        reason = "" if ok else "enable EXPO / set the DIMM speed in the BIOS (phase 1), check the population"
        rows.append(judge("DIMM configured speed", target, measured, ok, Weight.HIGH, reason))
    total_gib = memory.get("total_gib")
    meminfo = ctx.read("/proc/meminfo")
    totals = [line.split() for line in (meminfo or "").splitlines() if line.startswith("MemTotal:")]
    kib = int(totals[0][1]) if totals else None
    if kib is None or not total_gib:
        rows.append(unknown("RAM total", f"{total_gib} GiB", Weight.HIGH, "no /proc/meminfo"))
    else:
        gib = kib / 2**20
        rows.append(judge("RAM total", f">= 95% of {total_gib} GiB", f"{gib:.1f} GiB",
                          gib >= 0.95 * total_gib, Weight.HIGH))
    return rows


def numa_cpu_rows(ctx: CheckContext) -> list[Row]:
    rows = []
    want = ctx.data.get("numa_nodes")
    fact = ctx.hardware("NumaTopology")
    if not fact.get("available"):
        rows.append(unknown("NUMA nodes", str(want), Weight.HIGH, _why(fact)))
    else:
        count = fact.get("count")
        reason = "" if count == want else "set NPS in the BIOS (phase 1)"
        rows.append(judge("NUMA nodes", str(want), f"{count} (from {fact.get('source')})", count == want,
                          Weight.HIGH, reason))
    cpu = ctx.data.get("cpu") or {}
    fact = ctx.hardware("CpuInfo")
    if not fact.get("available"):
        rows.append(unknown("CPU model", str(cpu.get("model")), Weight.MEDIUM, _why(fact)))
    else:
        model = str(fact.get("model") or fact.get("model_name") or "")
        ok = bool(cpu.get("model")) and str(cpu["model"]).casefold() in model.casefold()
        rows.append(judge("CPU model", str(cpu.get("model")), model or "?", ok, Weight.MEDIUM))
    return rows


def rows(ctx: CheckContext) -> list[Row]:
    return gpu_rows(ctx) + memory_rows(ctx) + numa_cpu_rows(ctx)
