"""``/sys/devices/system/node``: NUMA topology without numactl, same shape as the numactl parser.

Sample (the capture script's ``grep -sH`` of cpulist, distance and the meminfo totals)::

    /sys/devices/system/node/node0/cpulist:0-15
    /sys/devices/system/node/node0/distance:10
    /sys/devices/system/node/node0/meminfo:Node 0 MemTotal:        4550128 kB
    /sys/devices/system/node/node0/meminfo:Node 0 MemFree:         3257620 kB
"""

from __future__ import annotations

import re

from .common import ParseError, expand_cpulist
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
        node_id, kind, value = int(match.group(1)), match.group(2), match.group(3).strip()
        node = nodes.setdefault(node_id, node_entry(node_id))
        if kind == "cpulist":
            node["cpus"] = expand_cpulist(value)
        elif kind == "distance":
            rows[node_id] = [int(v) for v in value.split()]
        elif mem := _MEM.search(value):
            node["size_mib" if mem.group(1) == "Total" else "free_mib"] = int(mem.group(2)) // 1024
    if not nodes:
        raise ParseError("no '/sys/devices/system/node/nodeN/...' lines found: is this a sysfs node capture?")
    return finish(None, nodes, rows or None, None)
