"""Our BIOS targets (PCIe Gen5, NPS4, EXPO II) and the board-specific attributes that reach them.

Why two tables: the targets are what the box must be (the same on every Threadripper PRO
workstation); the attribute names and values are whatever this board's AMI firmware calls them,
which nobody knows until ``python -m bmc bios get --grep`` is run against the box. The inventory
holds both; this module holds the defaults and turns them into ``{attribute: value}``.

Host data keys (a hosts-file TOML example is in docs/bmc.md)::

    bios_targets = {"pcie_link_speed": "gen5", "nps": 4, "memory_profile": "expo2"}
    bios_attribute_map = {                       # target -> target value -> attributes
        "pcie_link_speed": {"gen5": {"PCIS1LinkSpeed": "Gen5", "PCIS3LinkSpeed": "Gen5"}},
        "nps": {"4": {"CbsDfCmnDramNps": "NPS4"}},
        "memory_profile": {"expo2": {"AiOverclockTuner": "EXPO II"}},
    }

A target set to ``None``, ``false`` or ``""`` is skipped. Keys of the inner tables are the target
value as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bmc.errors import BmcError

DEFAULTS: dict[str, Any] = {
    "bios_targets": {"pcie_link_speed": "gen5", "nps": 4, "memory_profile": "expo2"},
    "bios_attribute_map": {},  # unknown until discovered on the box: see docs/bmc.md
    "bmc_rollback_dir": None,  # None: backups/bmc (OMNI_BACKUP_DIR moves backups/)
}

#: What to grep for when an attribute is not mapped yet.
HINTS = {"pcie_link_speed": "link speed", "nps": "nps", "memory_profile": "overclock"}


def targets_from(data: Mapping[str, Any]) -> dict[str, Any]:
    """The configured targets over the defaults (a host may override one and keep the others)."""
    merged = dict(DEFAULTS["bios_targets"])
    merged.update(data.get("bios_targets") or {})
    return {k: v for k, v in merged.items() if not (v is None or v is False or v == "")}  # nps = 0 is real


def wanted_attributes(targets: Mapping[str, Any], mapping: Mapping[str, Any]) -> dict[str, Any]:
    """``{attribute: value}`` for every target; a missing or contradictory mapping is one line."""
    wanted: dict[str, Any] = {}
    source: dict[str, str] = {}
    for target, value in targets.items():
        per_value = (mapping.get(target) or {}) if isinstance(mapping, Mapping) else {}
        attrs = per_value.get(str(value)) if isinstance(per_value, Mapping) else None
        if not attrs or not isinstance(attrs, Mapping):
            hint = HINTS.get(target, target.replace("_", " "))
            raise BmcError(
                f"no BIOS attribute is mapped for {target}={value}",
                f"find it with `python -m bmc bios get --grep '{hint}'` and add "
                f'bios_attribute_map.{target}."{value}" = {{ NAME = "VALUE" }} to the hosts file',
                "config",
            )
        for name, attr_value in attrs.items():
            if name in wanted and wanted[name] != attr_value:
                raise BmcError(
                    f"BIOS attribute {name} is mapped to {wanted[name]!r} by {source[name]} "
                    f"and to {attr_value!r} by {target}",
                    "make the bios_attribute_map entries agree",
                    "config",
                )
            wanted[name], source[name] = attr_value, target
    return wanted
