"""``lspci -vvv``: PCIe link capability vs status per device, and its NUMA node.

Sample (a GPU trained down while idle; newer lspci also prints ``(ok)``/``(strange)``)::

    c1:00.0 VGA compatible controller: NVIDIA Corporation AD102GL [RTX 6000 Ada Generation] (rev a1)
            NUMA node: 1
                    LnkCap: Port #0, Speed 16GT/s, Width x16, ASPM L1, Exit Latency L1 <4us
                    LnkSta: Speed 2.5GT/s (downgraded), Width x16
"""

from __future__ import annotations

import re

from .common import ParseError, gts_to_gen, number, pci_address
from .noise import strip_noise

_HEADER = re.compile(r"^((?:[0-9a-fA-F]{4,8}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])\s+(\S.*)$")
_LINK = re.compile(r"^\s+(LnkCap|LnkSta):\s+(.*)$")
_SPEED = re.compile(r"Speed\s+(?:([\d.]+)GT/s|(unknown))(?:\s*\((ok|downgraded|strange)\))?", re.I)
_WIDTH = re.compile(r"Width\s+x(\d+)(?:\s*\((ok|downgraded|strange)\))?")
_NUMA = re.compile(r"^\s+NUMA node:\s*(-?\d+)")
_GPU_CLASSES = ("VGA compatible controller", "3D controller", "Display controller")
_GPU_VENDORS = ("NVIDIA", "Advanced Micro Devices", "AMD/ATI", "ATI Technologies")


def is_gpu_description(description: str) -> bool:
    """NVIDIA/AMD display or 3D controllers; a BMC's ASPEED VGA is not a GPU."""
    cls, _, rest = description.partition(": ")
    return cls in _GPU_CLASSES and any(vendor in rest for vendor in _GPU_VENDORS)


def link_downgraded(device: dict) -> bool | None:
    """True when status speed or width is below capability (or lspci says so)."""
    if device.get("_marked_downgraded"):
        return True
    pairs = [(device["sta_speed_gts"], device["cap_speed_gts"]), (device["sta_width"], device["cap_width"])]
    known = [(sta, cap) for sta, cap in pairs if sta is not None and cap is not None]
    if not known:
        return None
    return any(sta < cap for sta, cap in known)


def new_device(address: str, description: str) -> dict:
    return {
        "address": address,
        "pci_address": pci_address(address),
        "description": description,
        "is_gpu": is_gpu_description(description),
        "cap_speed_gts": None,
        "cap_width": None,
        "sta_speed_gts": None,
        "sta_width": None,
        "cap_gen": None,
        "sta_gen": None,
        "downgraded": None,
        "numa_node": None,
    }


def finish(device: dict) -> dict:
    device["cap_gen"] = gts_to_gen(device["cap_speed_gts"])
    device["sta_gen"] = gts_to_gen(device["sta_speed_gts"])
    device["downgraded"] = link_downgraded(device)
    device.pop("_marked_downgraded", None)
    return device


def _read_link(device: dict, kind: str, text: str) -> None:
    prefix = "cap" if kind == "LnkCap" else "sta"
    speed = _SPEED.search(text)
    if speed:
        device[f"{prefix}_speed_gts"] = number(float(speed.group(1))) if speed.group(1) else None
        if speed.group(3) == "downgraded":
            device["_marked_downgraded"] = True
    width = _WIDTH.search(text)
    if width:
        device[f"{prefix}_width"] = int(width.group(1))
        if width.group(2) == "downgraded":
            device["_marked_downgraded"] = True


def parse_lspci(output) -> dict:
    """``{"devices": [...]}`` in the order lspci printed them."""
    devices: list[dict] = []
    current: dict | None = None
    seen: set[tuple[str, str]] = set()
    for line in strip_noise(output):
        header = _HEADER.match(line)
        if header:
            current = new_device(header.group(1), header.group(2).strip())
            devices.append(current)
            continue
        if current is None:
            continue
        link = _LINK.match(line)
        if link and (link.group(1), current["address"]) not in seen:
            seen.add((link.group(1), current["address"]))
            _read_link(current, link.group(1), link.group(2))
            continue
        numa = _NUMA.match(line)
        if numa:
            node = int(numa.group(1))
            current["numa_node"] = node if node >= 0 else None
    if not devices:
        raise ParseError("no 'BB:DD.F description' device lines found: is this `lspci -vvv` output?")
    return {"devices": [finish(device) for device in devices]}
