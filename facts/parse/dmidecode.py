"""``dmidecode -t memory``: DIMM slots, sizes, rated and configured speeds (DMI type 17).

Sample (dmidecode >= 3.3; older ones say ``MHz`` and ``Configured Clock Speed``, sizes in MB)::

    Handle 0x0025, DMI type 17, 92 bytes
    Memory Device
            Size: 48 GB
            Locator: DIMM 0
            Bank Locator: P0 CHANNEL A
            Type: DDR5
            Speed: 5600 MT/s
            Configured Memory Speed: 3600 MT/s

Empty slots say ``Size: No Module Installed``. A full ``dmidecode`` is accepted too: only type 17
records are read. DDR "MHz" in dmidecode is the transfer rate, so it is read as MT/s.
"""

from __future__ import annotations

import re

from .common import ParseError, clean
from .noise import strip_noise

_HANDLE = re.compile(r"^Handle 0x[0-9A-Fa-f]+, DMI type (\d+)")
_FIELD = re.compile(r"^\s+([^:]+):\s*(.*)$")
_SIZE = re.compile(r"^(\d{1,12}(?:\.\d{1,6})?)\s*(bytes|kB|KB|MB|GB|TB)$")  # longer: corrupt, unknown
_SPEED = re.compile(r"^(\d{1,9})\s*(MT/s|MHz)")
_UNIT_MIB = {"bytes": 1 / 2**20, "kB": 1 / 1024, "KB": 1 / 1024, "MB": 1, "GB": 1024, "TB": 1024**2}


def _size_mib(text: str | None) -> int | None:
    match = _SIZE.match((text or "").strip())
    if not match:
        return None  # "No Module Installed", "Not Installed", "Unknown"
    return round(float(match.group(1)) * _UNIT_MIB[match.group(2)])


def _speed_mts(text: str | None) -> int | None:
    match = _SPEED.match((text or "").strip())
    value = int(match.group(1)) if match else 0
    return value or None  # "Unknown", "0 MT/s"


def _records(lines: list[str]) -> list[dict[str, str]]:
    """Type 17 records as field dicts; works with or without ``Handle`` lines (``-q``)."""
    records: list[dict[str, str]] = []
    dmi_type: int | None = None
    current: dict[str, str] | None = None
    for line in lines:
        handle = _HANDLE.match(line)
        if handle:
            dmi_type, current = int(handle.group(1)), None
            continue
        if line and not line[0].isspace():
            title = line.strip()
            if title == "Memory Device" and dmi_type in (None, 17):
                current = {}
                records.append(current)
            else:
                current = None
            dmi_type = None
            continue
        field = _FIELD.match(line)
        if field and current is not None and field.group(1).strip() not in current:
            current[field.group(1).strip()] = field.group(2).strip()
    return records


def parse_dmidecode(output) -> dict:
    """``{"slots_total", "slots_empty", "total_mib", "modules": [...]}`` (populated slots only)."""
    lines = strip_noise(output)
    records = _records(lines)
    if not records:
        message = next((ln.lstrip("# ").strip() for ln in lines if "SMBIOS" in ln or "DMI" in ln), None)
        hint = f" ({message})" if message else ""
        raise ParseError(f"no DMI type 17 'Memory Device' records{hint}: is this `dmidecode -t memory`?")
    modules = []
    for record in records:
        size = _size_mib(record.get("Size"))
        if not size:
            continue
        configured = record.get("Configured Memory Speed", record.get("Configured Clock Speed"))
        modules.append({
            "locator": clean(record.get("Locator")),
            "bank_locator": clean(record.get("Bank Locator")),
            "size_mib": size,
            "type": clean(record.get("Type")),
            "speed_mts": _speed_mts(record.get("Speed")),
            "configured_mts": _speed_mts(configured),
            "manufacturer": clean(record.get("Manufacturer")),
            "part_number": clean(record.get("Part Number")),
        })
    return {
        "slots_total": len(records),
        "slots_empty": len(records) - len(modules),
        "total_mib": sum(module["size_mib"] for module in modules),
        "modules": modules,
    }
