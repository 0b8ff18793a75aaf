"""``/sys/devices/system/node``: NUMA topology without numactl, same shape as the numactl parser.

Sample (the capture script's ``grep -sH`` of cpulist, distance and the meminfo totals)::

    /sys/devices/system/node/node0/cpulist:0-15
    /sys/devices/system/node/node0/distance:10
    /sys/devices/system/node/node0/meminfo:Node 0 MemTotal:        4550128 kB
    /sys/devices/system/node/node0/meminfo:Node 0 MemFree:         3257620 kB
"""

from __future__ import annotations

import re

from .common import ParseError, expand_cpulist, is_unknown, to_int
from .noise import strip_noise
from .numactl import finish, node_entry

_LINE = re.compile(r"^/sys/devices/system/node/node(\d+)/(cpulist|distance|meminfo):(.*)$")
_MEM = re.compile(r"Mem(Total|Free):\s*(\d+)\s*kB")


def parse_sysfs_node(output) -> dict:
    nodes: dict[int, dict] = {}
    rows: dict[int, list[int]] = {}
    for line in strip_noise(output):
        match = _LINE.match(line)
        if not match:
            continue
        node_id, kind, value = to_int(match.group(1), "node number"), match.group(2), match.group(3).strip()
        node = nodes.setdefault(node_id, node_entry(node_id))
        if is_unknown(value):  # "N/A": the file said it does not know
            continue
        if kind == "cpulist":
            node["cpus"] = expand_cpulist(value)
        elif kind == "distance":
            rows[node_id] = [to_int(v, "distance") for v in value.split()]
        elif mem := _MEM.search(value):
            key = "size_mib" if mem.group(1) == "Total" else "free_mib"
            node[key] = to_int(mem.group(2), f"Mem{mem.group(1)}") // 1024
    if not nodes:
        raise ParseError("no '/sys/devices/system/node/nodeN/...' lines found: is this a sysfs node capture?")
    return finish(None, nodes, rows or None, None)
