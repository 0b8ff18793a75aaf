"""``numactl --hardware``: NUMA nodes, their CPUs, memory and the distance matrix.

Sample::

    available: 2 nodes (0-1)
    node 0 cpus: 0 1 2 3
    node 0 size: 193129 MB
    node 0 free: 186031 MB
    node 1 cpus:
    node 1 size: 0 MB
    node distances:
    node   0   1
      0:  10  32
      1:  32  10

A memoryless node has ``size: 0 MB``; a CPU-less node an empty ``cpus:`` list. numactl's "MB"
is MiB. A matrix cut short (fewer rows or columns than nodes) is kept as read and flagged
``distances_complete: false``.
"""

from __future__ import annotations

import re

from .common import ParseError, expand_cpulist, to_int
from .noise import strip_noise

_AVAILABLE = re.compile(r"^available:\s*(\d+)\s+nodes?")
_NODE = re.compile(r"^node\s+(\d+)\s+(cpus|size|free):\s*(.*)$")
_MB = re.compile(r"^(\d+)\s*MB")
_DIST_HEADER = re.compile(r"^node(\s+\d+)+\s*$")
_DIST_ROW = re.compile(r"^\s*(\d+):((?:\s+\d+)*)\s*$")


def node_entry(node_id: int) -> dict:
    return {"id": node_id, "cpus": [], "size_mib": None, "free_mib": None}


def finish(count: int | None, nodes: dict[int, dict], rows: dict[int, list[int]] | None,
           columns: list[int] | None) -> dict:
    """Assemble the result and judge whether the distance matrix is whole."""
    ids = sorted(nodes)
    count = count if count is not None else len(ids)
    distances = None
    complete = False
    if rows:
        order = columns or sorted(rows)
        distances = [rows[node] for node in order if node in rows]
        complete = (
            len(distances) == count == len(ids)
            and all(len(row) == count for row in distances)
            and sorted(order) == ids
        )
    return {"count": count, "nodes": [nodes[i] for i in ids], "distances": distances,
            "distances_complete": complete}


def parse_numactl(output) -> dict:
    """``{"count", "nodes": [{"id", "cpus", "size_mib", "free_mib"}], "distances", "distances_complete"}``."""
    count = None
    nodes: dict[int, dict] = {}
    columns: list[int] | None = None
    rows: dict[int, list[int]] = {}
    in_distances = False
    for line in strip_noise(output):
        if match := _AVAILABLE.match(line):
            count = to_int(match.group(1), "node count")
        elif match := _NODE.match(line):
            node_id = to_int(match.group(1), "node number")
            node = nodes.setdefault(node_id, node_entry(node_id))
            key, value = match.group(2), match.group(3).strip()
            if key == "cpus":
                node["cpus"] = expand_cpulist(value)  # "0 1 2 3", or compressed "0-15,32-47"
            else:
                mb = _MB.match(value)
                node[f"{key}_mib"] = to_int(mb.group(1), f"node {key}") if mb else None
        elif line.startswith("node distances"):
            in_distances = True
        elif in_distances and _DIST_HEADER.match(line):
            columns = [to_int(col, "distance column") for col in line.split()[1:]]
        elif in_distances and (match := _DIST_ROW.match(line)):
            rows[to_int(match.group(1), "distance row")] = [to_int(value, "distance")
                                                             for value in match.group(2).split()]
    if count is None and not nodes:
        raise ParseError("no 'available: N nodes' or 'node N cpus:' lines: is this `numactl --hardware`?")
    if count == 0 and not nodes:
        raise ParseError("numactl reports no NUMA nodes")
    return finish(count, nodes, rows or None, columns)
