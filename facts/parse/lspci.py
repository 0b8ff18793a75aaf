"""``lspci -vvv``: PCIe link capability vs status per device, and its NUMA node.

Sample (a GPU trained down while idle; newer lspci also prints ``(ok)``/``(strange)``)::

    c1:00.0 VGA compatible controller: NVIDIA Corporation AD102GL [RTX 6000 Ada Generation] (rev a1)
            NUMA node: 1
                    LnkCap: Port #0, Speed 16GT/s, Width x16, ASPM L1, Exit Latency L1 <4us
                    LnkSta: Speed 2.5GT/s (downgraded), Width x16
"""

from __future__ import annotations

import re

from .common import ParseError, gts_to_gen, number, pci_address, to_float, to_int
from .noise import strip_noise

_HEADER = re.compile(r"^((?:[0-9a-fA-F]{4,8}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])\s+(\S.*)$")
_LINK = re.compile(r"^\s*(LnkCap|LnkSta):\s+(.*)$")  # no indent: `lspci -vvv | grep Lnk` piped to sed
_SPEED = re.compile(r"Speed\s+(?:(\S*?)GT/s|(unknown))(?:\s*\((ok|downgraded|strange)\))?", re.I)
_WIDTH = re.compile(r"Width\s+x(\d+)(?:\s*\((ok|downgraded|strange)\))?")
_NUMA = re.compile(r"^\s+NUMA node:\s*(-?\d+)")
_CLASS_ID = re.compile(r"\s*\[[0-9a-fA-F]{4}\]$")  # `lspci -nn`: "3D controller [0302]"
_GPU_CLASSES = ("VGA compatible controller", "3D controller", "Display controller")
_GPU_VENDORS = ("NVIDIA", "Advanced Micro Devices", "AMD/ATI", "ATI Technologies")


def is_gpu_description(description: str) -> bool:
    """NVIDIA/AMD display or 3D controllers; a BMC's ASPEED VGA is not a GPU."""
    cls, _, rest = description.partition(": ")
    return _CLASS_ID.sub("", cls) in _GPU_CLASSES and any(vendor in rest for vendor in _GPU_VENDORS)


def link_downgraded(device: dict) -> bool | None:
    """True when status speed or width is below capability (or lspci says so)."""
    if device.get("_marked_downgraded"):
        return True
    pairs = [(device["sta_speed_gts"], device["cap_speed_gts"]), (device["sta_width"], device["cap_width"])]
    known = [(sta, cap) for sta, cap in pairs if sta is not None and cap is not None]
    if not known:
        return None
    return any(sta < cap for sta, cap in known)


def new_device(address: str | None, description: str) -> dict:
    """A device record; ``address`` None for link lines grep printed without their device line."""
    return {
        "address": address,
        "pci_address": pci_address(address) if address else None,
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
        gts = to_float(speed.group(1))  # "Speed .GT/s" / "Speed unknown": the kernel does not know
        device[f"{prefix}_speed_gts"] = number(gts) if gts is not None else None
        if speed.group(3) == "downgraded":
            device["_marked_downgraded"] = True
    width = _WIDTH.search(text)
    if width:
        device[f"{prefix}_width"] = to_int(width.group(1), "link width")
        if width.group(2) == "downgraded":
            device["_marked_downgraded"] = True


def parse_lspci(output) -> dict:
    """``{"devices": [...]}`` in the order lspci printed them."""
    devices: list[dict] = []
    current: dict | None = None
    read: set[str] = set()  # link kinds already read for ``current`` (lspci repeats them for bridges)
    for line in strip_noise(output):
        header = _HEADER.match(line)
        if header:
            current, read = new_device(header.group(1), header.group(2).strip()), set()
            devices.append(current)
            continue
        link = _LINK.match(line)
        if link:
            kind = link.group(1)
            if current is None or (current["address"] is None and kind in read):
                # `lspci -vvv | grep Lnk`: bare LnkCap/LnkSta lines, one nameless device per pair.
                current, read = new_device(None, ""), set()
                devices.append(current)
            if kind not in read:
                read.add(kind)
                _read_link(current, kind, link.group(2))
            continue
        numa = _NUMA.match(line)
        if numa and current is not None:
            node = to_int(numa.group(1), "NUMA node")
            current["numa_node"] = node if node >= 0 else None
    if not devices:
        raise ParseError("no 'BB:DD.F description' device lines or LnkCap:/LnkSta: lines found: "
                         "is this `lspci -vvv` output?")
    return {"devices": [finish(device) for device in devices]}
