"""``grep -sH . /sys/bus/pci/devices/*/{class,vendor,device,*_link_*,numa_node}``: links without lspci.

Sample (the H200 VM, which has no lspci)::

    /sys/bus/pci/devices/0000:00:06.0/class:0x030200
    /sys/bus/pci/devices/0000:00:06.0/vendor:0x10de
    /sys/bus/pci/devices/0000:00:06.0/current_link_speed:32.0 GT/s PCIe
    /sys/bus/pci/devices/0000:00:06.0/max_link_width:16
    /sys/bus/pci/devices/0000:00:06.0/numa_node:-1

Same device shape as the lspci parser; ``description`` is built from the class and vendor ids
because sysfs has no names.
"""

from __future__ import annotations

import re

from .common import ParseError, number, pci_address, to_float
from .lspci import finish, new_device
from .noise import strip_noise

_LINE = re.compile(r"^/sys/bus/pci/devices/([0-9a-fA-F:.]+)/(\w+):(.*)$")
_GTS = re.compile(r"(\S*?)\s*GT/s")

CLASS_NAMES = {
    0x0100: "SCSI storage controller", 0x0101: "IDE interface", 0x0104: "RAID bus controller",
    0x0106: "SATA controller", 0x0108: "Non-Volatile memory controller", 0x0180: "Mass storage controller",
    0x0200: "Ethernet controller", 0x0207: "Infiniband controller", 0x0280: "Network controller",
    0x0300: "VGA compatible controller", 0x0302: "3D controller", 0x0380: "Display controller",
    0x0403: "Audio device", 0x0600: "Host bridge", 0x0601: "ISA bridge", 0x0604: "PCI bridge",
    0x0c03: "USB controller", 0x0c05: "SMBus", 0x1200: "Processing accelerators",
}
VENDOR_NAMES = {
    0x10DE: "NVIDIA Corporation", 0x1002: "Advanced Micro Devices, Inc. [AMD/ATI]",
    0x1022: "Advanced Micro Devices, Inc. [AMD]", 0x8086: "Intel Corporation", 0x1AF4: "Red Hat, Inc.",
    0x15B3: "Mellanox Technologies", 0x144D: "Samsung Electronics Co Ltd", 0x1A03: "ASPEED Technology, Inc.",
    0x14E4: "Broadcom Inc.", 0x1000: "Broadcom / LSI", 0x1B4B: "Marvell Technology Group Ltd.",
    0x1103: "HighPoint Technologies, Inc.",
}


def _speed(text: str) -> int | float | None:
    match = _GTS.search(text)  # "32.0 GT/s PCIe", "8 GT/s", "Unknown", ". GT/s"
    gts = to_float(match.group(1)) if match else None
    return number(gts) if gts is not None else None


def _width(text: str) -> int | None:
    text = text.strip()
    if not text.isdigit() or len(text) > 3 or int(text) > 32:  # 255 = "not reported"
        return None
    return int(text)


def describe(attrs: dict[str, str]) -> str:
    """``3D controller: NVIDIA Corporation [10de:2335]`` from the numeric ids."""
    try:
        klass = int(attrs.get("class", "0x0")[:10], 16) >> 8
        vendor = int(attrs.get("vendor", "0x0")[:6], 16)
        device = int(attrs.get("device", "0x0")[:6], 16)
    except ValueError:  # "N/A", garbage
        return "unknown device"
    class_name = CLASS_NAMES.get(klass, f"Class {klass:04x}")
    vendor_name = VENDOR_NAMES.get(vendor, f"Vendor {vendor:04x}")
    return f"{class_name}: {vendor_name} [{vendor:04x}:{device:04x}]"


def parse_sysfs_pci(output) -> dict:
    """``{"devices": [...]}`` sorted by PCI address."""
    attrs: dict[str, dict[str, str]] = {}
    for line in strip_noise(output):
        match = _LINE.match(line)
        if match:
            attrs.setdefault(match.group(1), {})[match.group(2)] = match.group(3).strip()
    if not attrs:
        raise ParseError("no '/sys/bus/pci/devices/ADDR/FILE:VALUE' lines: is this `grep -sH .` of sysfs?")
    devices = []
    for address in sorted(attrs):
        values = attrs[address]
        device = new_device(address, describe(values))
        device["cap_speed_gts"] = _speed(values.get("max_link_speed", ""))
        device["sta_speed_gts"] = _speed(values.get("current_link_speed", ""))
        device["cap_width"] = _width(values.get("max_link_width", ""))
        device["sta_width"] = _width(values.get("current_link_width", ""))
        node = values.get("numa_node", "-1")
        device["numa_node"] = int(node) if node.isdigit() and len(node) <= 5 else None
        devices.append(finish(device))
    return {"devices": devices}


def merge_links(primary: list[dict], fallback: list[dict]) -> tuple[list[dict], bool]:
    """Fill what lspci could not read (``<access denied>`` without root) from sysfs.

    Returns the merged devices and whether sysfs supplied anything.
    """
    by_address = {device["pci_address"]: device for device in fallback}
    used = False
    merged = []
    for device in primary:
        extra = by_address.get(device["pci_address"])
        if extra:
            device = dict(device)
            for key in ("cap_speed_gts", "cap_width", "sta_speed_gts", "sta_width", "numa_node"):
                if device[key] is None and extra[key] is not None:
                    device[key] = extra[key]
                    used = True
            marked = device["downgraded"]
            device = finish(device)
            device["downgraded"] = True if marked else device["downgraded"]
        merged.append(device)
    return merged, used


def device_numa_nodes(output) -> dict[str, int | None]:
    """``{pci_address: node}`` from ``grep -sH . .../numa_node /sys/devices/system/node/online``.

    The kernel's -1 means "no affinity reported"; with a single node online (``online:0``)
    that node is the only one there is, so it becomes 0; otherwise None.
    """
    raw: dict[str, int] = {}
    online = None
    for line in strip_noise(output):
        path, _, value = line.rpartition(":")
        value = value.strip()
        if path == "/sys/devices/system/node/online":
            online = value
        elif ((match := _LINE.match(line)) and match.group(2) == "numa_node"
              and value.lstrip("-").isdigit() and len(value) <= 6):
            try:
                raw[pci_address(match.group(1))] = int(value)
            except ParseError:  # not a device directory name: nothing to join on
                continue
    return {address: node if node >= 0 else (0 if online == "0" else None) for address, node in raw.items()}
