"""The hardware facts the report shows and the ceiling needs, from whatever the sweep recorded.

Why lenient: the facts come from `python -m facts collect` (nested JSON) and reach us either as a
JSON file in the sweep dir or flattened into `host.*` columns of every row; a box without
dmidecode or nvidia-smi gives `available: false` and a reason. Every missing value stays None and
is shown as "unknown" with that reason, never guessed.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str | None
    mem_total_bytes: float | None
    link: str | None  # "Gen5 x16" (max "Gen5 x16")
    bus_width_bits: float | None = None
    mem_clock_mhz: float | None = None
    mem_free_bytes: float | None = None  # free when the facts were collected (sweep start)


@dataclass(frozen=True)
class HostFacts:
    cpu: str | None = None
    sockets: int | None = None
    cores: int | None = None
    threads: int | None = None
    numa_nodes: int | None = None
    mem_total_bytes: float | None = None
    dimm_mts: float | None = None  # slowest populated DIMM's configured speed
    dimm_count: int | None = None
    dimm_slots: int | None = None
    dimm_reason: str | None = None
    gpus: tuple[Gpu, ...] = ()
    gpu_reason: str | None = None
    driver: str | None = None
    pcie: tuple[str, ...] = ()  # one line per GPU-ish link
    hostname: str | None = None
    collected_at: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


def unflatten(flat: Mapping[str, Any], prefix: str = "host.") -> dict[str, Any]:
    """`host.cpu.model` → {"cpu": {"model": ...}}; JSON-looking strings are decoded; `.0.` → list index."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if not str(key).startswith(prefix):
            continue
        if isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        parts = str(key)[len(prefix):].split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = value
    return _lists(out)


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _lists(v) for k, v in node.items()}
        if node and all(re.fullmatch(r"\d+", k) for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # NaN (empty CSV cell) is unknown


def _int(value: Any) -> int | None:
    number = _num(value)
    return None if number is None else int(number)


def _mib(value: Any, zero_is_unknown: bool = True) -> float | None:
    number = _num(value)
    if number is None or number < 0 or (number == 0 and zero_is_unknown):
        return None
    return number * 2**20


def _section(facts: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = facts.get(name)
    return value if isinstance(value, Mapping) else {}


def _link(item: Mapping[str, Any]) -> str | None:
    def get(key: str) -> Any:  # parser names, or the bench's flattened pcie_link_* names
        return item.get(f"pcie_{key}", item.get(f"pcie_link_{key}"))

    gen, width = get("gen_current"), get("width_current")
    if _num(gen) is None and _num(width) is None:
        return None
    text = f"Gen{_int(gen) or '?'} x{_int(width) or '?'}"
    gmax, wmax = get("gen_max"), get("width_max")
    if _num(gmax) is not None or _num(wmax) is not None:
        text += f" (max Gen{_int(gmax) or '?'} x{_int(wmax) or '?'})"
    return text


def _pci_line(d: Mapping[str, Any]) -> str:
    def gen(prefix: str) -> str:
        return f"Gen{_int(d.get(prefix + '_gen')) or '?'} x{_int(d.get(prefix + '_width')) or '?'}"

    down = " DOWNGRADED" if d.get("downgraded") else ""
    return f"{d.get('address')} {d.get('description') or ''}: {gen('sta')} of {gen('cap')}{down}"


def from_facts(doc: Mapping[str, Any]) -> HostFacts:
    """Accepts the `python -m facts collect` document, its `facts` part, or an unflattened row."""
    facts = doc.get("facts") if isinstance(doc.get("facts"), Mapping) else doc
    cpu = _section(facts, "cpu")
    mem = _section(facts, "memory_modules")
    modules = [m for m in (mem.get("modules") or []) if isinstance(m, Mapping)]
    speeds = [s for s in (_num(m.get("configured_mts") or m.get("speed_mts")) for m in modules) if s]
    if not speeds:  # flattened rows carry "5600/6400"-style distinct speeds instead of modules
        text = str(mem.get("configured_mts") or mem.get("speed_mts") or "")
        speeds = [s for s in (_num(x) for x in text.split("/")) if s]
    populated = len(modules) or ((_int(mem.get("slots_total")) or 0) - (_int(mem.get("slots_empty")) or 0))
    numa = _section(facts, "numa")
    smi = _section(facts, "nvidia_gpus")
    gpus = tuple(
        Gpu(
            index=_int(g.get("index")) if _int(g.get("index")) is not None else i,
            name=g.get("name"),
            mem_total_bytes=_mib(g.get("memory_total_mib")),
            link=_link(g),
            bus_width_bits=_num(g.get("memory_bus_width_bits")),
            mem_clock_mhz=_num(g.get("memory_clock_max_mhz")),
            mem_free_bytes=_mib(g.get("memory_free_mib"), zero_is_unknown=False),  # 0: a full card
        )
        for i, g in enumerate(smi.get("gpus") or []) if isinstance(g, Mapping)
    )
    links = _section(facts, "pcie_links").get("devices") or []
    pcie = tuple(_pci_line(d) for d in links if isinstance(d, Mapping) and d.get("is_gpu"))
    nodes = [n for n in (numa.get("nodes") or []) if isinstance(n, Mapping)]
    numa_total = sum((_num(n.get("size_mib")) or 0) for n in nodes)
    total_mib = _num(mem.get("total_mib")) or numa_total or None
    system = doc.get("system") if isinstance(doc.get("system"), Mapping) else {}
    return HostFacts(
        cpu=cpu.get("model"), sockets=_int(cpu.get("sockets")), cores=_int(cpu.get("cores")),
        threads=_int(cpu.get("threads")),
        numa_nodes=_int(numa.get("count")) or _int(cpu.get("numa_nodes")),
        mem_total_bytes=total_mib * 2**20 if total_mib else None,
        dimm_mts=min(speeds) if speeds else None, dimm_count=populated if populated > 0 else None,
        dimm_slots=_int(mem.get("slots_total")),
        dimm_reason=None if speeds else (mem.get("reason") or "no DIMM speeds recorded"),
        gpus=gpus, gpu_reason=None if gpus else (smi.get("reason") or "no GPU facts recorded"),
        driver=_section(facts, "nvidia_driver").get("version"), pcie=pcie,
        hostname=system.get("hostname") or doc.get("host"), collected_at=doc.get("collected_at"),
        raw=facts,
    )
