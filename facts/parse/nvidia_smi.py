"""nvidia-smi: ``--query-gpu=... --format=csv`` (header row) and ``-q`` (the long report).

CSV sample (columns are picked by header name, so any query order or extra columns work)::

    index, name, pci.bus_id, memory.total [MiB], pcie.link.gen.current, pcie.link.gen.max
    0, NVIDIA H200, 00000000:00:06.0, 143771 MiB, 5, 5

``-q`` sample (indentation is structure: BAR1 and Conf Compute also have a ``Total``)::

    GPU 00000000:02:00.0
        Product Name                          : NVIDIA GeForce RTX 5090
        PCI
            Bus Id                            : 00000000:02:00.0
            GPU Link Info
                PCIe Generation
                    Max                       : 5
                    Current                   : 1
                Link Width
                    Max                       : 16x
                    Current                   : 8x
        FB Memory Usage
            Total                             : 32607 MiB
"""

from __future__ import annotations

import csv
import re

from .common import ParseError, clean, first_int, pci_address, to_int
from .noise import strip_noise

#: The query the NvidiaGpus fact runs; the capture script uses the same list.
GPU_QUERY = (
    "index,name,uuid,pci.bus_id,driver_version,memory.total,memory.used,memory.free,"
    "pcie.link.gen.current,pcie.link.gen.max,pcie.link.width.current,pcie.link.width.max"
)

_CSV_COLUMNS = {  # output key -> csv header name (units such as " [MiB]" stripped)
    "index": "index",
    "name": "name",
    "uuid": "uuid",
    "bus_id": "pci.bus_id",
    "driver_version": "driver_version",
    "memory_total_mib": "memory.total",
    "memory_used_mib": "memory.used",
    "memory_free_mib": "memory.free",
    "pcie_gen_current": "pcie.link.gen.current",
    "pcie_gen_max": "pcie.link.gen.max",
    "pcie_width_current": "pcie.link.width.current",
    "pcie_width_max": "pcie.link.width.max",
}
_TEXT_KEYS = {"name", "uuid", "bus_id", "driver_version"}


def _gpu(values: dict[str, str | None]) -> dict:
    gpu: dict = {}
    for key in _CSV_COLUMNS:
        raw = values.get(key)
        gpu[key] = clean(raw) if key in _TEXT_KEYS else first_int(raw)
    gpu["pci_address"] = pci_address(gpu["bus_id"]) if gpu["bus_id"] else None
    return gpu


def parse_nvidia_smi_csv(output) -> dict:
    """``{"gpus": [...]}`` from ``--format=csv`` output (with its header row)."""
    lines = [line for line in strip_noise(output) if line.strip()]
    if not lines:
        raise ParseError("empty nvidia-smi CSV: expected a header row and one row per GPU")
    header = [cell.strip() for cell in next(csv.reader([lines[0]], skipinitialspace=True))]
    names = [re.sub(r"\s*\[[^\]]*\]$", "", cell) for cell in header]
    if "name" not in names and "pci.bus_id" not in names and "index" not in names:
        raise ParseError(
            f"first line is not an nvidia-smi CSV header ({lines[0][:60]!r}): "
            "capture with --format=csv (not noheader) and include index, name or pci.bus_id"
        )
    gpus: list[dict] = []
    seen: set[str] = set()
    try:
        rows = list(csv.reader(lines[1:], skipinitialspace=True))
    except csv.Error as error:  # a NUL byte, an unterminated quote
        raise ParseError(f"nvidia-smi CSV does not parse: {error}") from None
    for number, row in enumerate(rows):
        if [cell.strip() for cell in row] == header:
            continue  # two captures concatenated: the second one's header row
        if len(row) != len(names):
            raise ParseError(f"CSV row {number + 2} has {len(row)} cells but the header has {len(names)}")
        by_name = dict(zip(names, (cell.strip() for cell in row), strict=True))
        gpu = _gpu({key: by_name.get(column) for key, column in _CSV_COLUMNS.items()})
        key = gpu["uuid"] or gpu["pci_address"]
        if key is not None and key in seen:
            continue  # the same GPU again (concatenated captures): keep the first
        if key is not None:
            seen.add(key)
        gpus.append(gpu)
    if not gpus:
        raise ParseError("nvidia-smi CSV has a header but no GPU rows: the capture is cut short "
                         "(a machine without GPUs prints 'No devices were found' instead)")
    return {"gpus": gpus}


_Q_LINE = re.compile(r"^(\s*)(\S.*?)\s*:(?:\s(.*)|)$")
_Q_GPU = re.compile(r"^GPU ([0-9A-Fa-f]+:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7])\s*$")
_Q_PATHS = {
    "name": ("Product Name",),
    "uuid": ("GPU UUID",),
    "bus_id": ("PCI", "Bus Id"),
    "memory_total_mib": ("FB Memory Usage", "Total"),
    "memory_used_mib": ("FB Memory Usage", "Used"),
    "memory_free_mib": ("FB Memory Usage", "Free"),
    "pcie_gen_current": ("PCI", "GPU Link Info", "PCIe Generation", "Current"),
    "pcie_gen_max": ("PCI", "GPU Link Info", "PCIe Generation", "Max"),
    "pcie_width_current": ("PCI", "GPU Link Info", "Link Width", "Current"),
    "pcie_width_max": ("PCI", "GPU Link Info", "Link Width", "Max"),
}


def _q_blocks(lines: list[str]) -> tuple[dict[tuple[str, ...], str], list[tuple[str, dict]]]:
    """Top-level values and, per ``GPU <bus id>`` block, a {path: value} map."""
    top: dict[tuple[str, ...], str] = {}
    gpus: list[tuple[str, dict]] = []
    target = top
    stack: list[tuple[int, str]] = []  # (indent, section name)
    for line in lines:
        if not line.strip() or line.startswith("="):
            continue
        gpu = _Q_GPU.match(line)
        if gpu:
            target, stack = {}, []
            gpus.append((gpu.group(1), target))
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        field = _Q_LINE.match(line)
        if field:
            path = (*(name for _, name in stack), field.group(2).strip())
            target.setdefault(path, (field.group(3) or "").strip())
        else:
            stack.append((indent, line.strip()))
    return top, gpus


def parse_nvidia_smi_q(output) -> dict:
    """``{"gpus": [...], "driver_version", "cuda_version"}`` from ``nvidia-smi -q``."""
    top, blocks = _q_blocks(strip_noise(output))
    if not blocks:
        raise ParseError("no 'GPU 00000000:BB:DD.F' sections found: is this `nvidia-smi -q` output?")
    attached = top.get(("Attached GPUs",))
    if attached and attached.strip().isdigit() and to_int(attached, "Attached GPUs") != len(blocks):
        raise ParseError(f"'Attached GPUs : {attached.strip()}' but {len(blocks)} GPU sections: the capture "
                         "is truncated or mixed; capture `nvidia-smi -q` again")
    # Every GPU section has what the first has, and at least its memory total: a section cut short
    # by a truncated capture lacks the later ones.
    first = (set(_Q_PATHS.values()) & set(blocks[0][1])) | {_Q_PATHS["memory_total_mib"]}
    for number, (bus_id, values) in enumerate(blocks):
        missing = first - set(values)
        if missing:  # a section cut short: a GPU missing fields the first one has
            path = " > ".join(sorted(missing)[0])
            raise ParseError(f"GPU {bus_id} (section {number + 1} of {len(blocks)}) lacks {path!r} that "
                             "GPU section 1 has: the capture is truncated; capture `nvidia-smi -q` again")
    gpus = []
    for index, (bus_id, values) in enumerate(blocks):
        raw = {key: values.get(path) for key, path in _Q_PATHS.items()}
        raw["bus_id"] = raw["bus_id"] or bus_id
        raw["index"] = str(index)  # -q lists GPUs in nvidia-smi index order
        raw["driver_version"] = top.get(("Driver Version",))
        gpus.append(_gpu(raw))
    return {
        "gpus": gpus,
        "driver_version": clean(top.get(("Driver Version",))),
        "cuda_version": clean(top.get(("CUDA Version",))),
    }
