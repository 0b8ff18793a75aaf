"""Hardware rows of the Verification Matrix: GPUs and their PCIe links, DIMMs, NUMA, CPU, RAM.

Everything is read from ``facts.hardware`` against the host data (``omni/hostdata.py``). A PCIe
link is judged on its *current* generation and width while data moves: a link trains down to Gen1
at idle (normal), and the runbook's CRITICAL fault — a Gen5 card that runs at Gen3 under load —
does not show in ``pcie.link.gen.max``. When a link is below target at idle, verify starts a short
real load (``_gpu_load.py``: host-to-GPU copies through the driver's own libcuda for
``verify.pcie_load_seconds``, default 5; 0 disables) and judges the highest speed/width sampled
meanwhile. Without a load the row is UNKNOWN rather than guessed from the idle or maximum link.
"""

from __future__ import annotations

from typing import Any

from deploys.checks import Row, Weight
from deploys.checks._gpu_load import load_failed, sample_links_under_load
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
    rows += _link_rows(ctx, pairs)
    return rows


def _below(hit: dict[str, Any], want: dict[str, Any]) -> bool:
    gen, width = hit.get("pcie_gen_current"), hit.get("pcie_width_current")
    return gen is None or width is None or gen < want.get("pcie_gen", 5) or width < want.get("pcie_width", 16)


def _link_rows(ctx: CheckContext, pairs: list[tuple[dict, dict | None]]) -> list[Row]:
    """Current gen/width per expected GPU; a short load first when any link is below target idle."""
    seconds = ctx.verify.pcie_load_seconds
    found = [(want, hit) for want, hit in pairs if hit is not None]
    loaded: dict[str, Any] | None = None
    if seconds > 0 and any(_below(hit, want) for want, hit in found):
        loaded = sample_links_under_load(ctx, seconds)
    why_no_load = "load disabled (verify.pcie_load_seconds = 0)" if seconds <= 0 else \
        (load_failed(loaded) if loaded is not None else None)
    rows = []
    for want, hit in pairs:
        gen, width = want.get("pcie_gen", 5), want.get("pcie_width", 16)
        name, target = f"PCIe link {want.get('name')}", f"Gen{gen} x{width} under load"
        if hit is None:
            rows.append(unknown(name, target, Weight.CRITICAL, "GPU not found"))
            continue
        gcur, wcur = hit.get("pcie_gen_current"), hit.get("pcie_width_current")
        idle = f"idle Gen{gcur} x{wcur}, max Gen{hit.get('pcie_gen_max')} x{hit.get('pcie_width_max')}"
        where = f"at {hit.get('bus_id')}"
        if not _below(hit, want):
            rows.append(judge(name, target, f"Gen{gcur} x{wcur} ({idle}) {where}", True, Weight.CRITICAL,
                              "already at target without load"))
            continue
        sample = ((loaded or {}).get("samples") or {}).get(str(hit.get("bus_id") or "").upper())
        if why_no_load or not sample:
            reason = f"no GPU load ran ({why_no_load or 'no sample for this GPU'}): a link below target " \
                "at idle may be power saving"
            rows.append(unknown(name, target, Weight.CRITICAL, reason, f"{idle} {where}"))
            continue
        ok = sample["gen"] >= gen and sample["width"] >= width
        note = "" if ok else "the link stays below target while data moves: check the slot and the BIOS " \
            "PCIe speed (phase 1: CbsCmnEarlyLinkSpeedSHP / CbsCmnPcieTargetLinkSpeedSHP = GEN5)"
        rows.append(judge(name, target, f"Gen{sample['gen']} x{sample['width']} under load ({idle}) {where}",
                          ok, Weight.CRITICAL, note))
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
