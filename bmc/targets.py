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
value as text. A host's map replaces the default map target by target.

The default map is the reference board's (ASUS Pro WS WRX90E-SAGE SE behind the ASMB11-iKVM, AMI
firmware): the runbook's ``CbsCmnEarlyLinkSpeedSHP`` and ``CbsCmnPcieTargetLinkSpeedSHP`` (AMD CBS
→ NBIO → PCIe) and ``CbsDfCmnDramNpsSHP`` (the names this BMC's Redfish BIOS resource uses, as in
the owner's own Redfish dumps). ASUS's "Ai Overclock Tuner" (EXPO) has no published Redfish name,
so it is named by its setup label: an attribute written ``display:<label>`` is resolved at run
time to the one registry attribute whose DisplayName is that label. Every name is checked against
the BMC's own attribute registry before anything is sent (an unknown name is refused with the
registry's near matches); an enumeration value that differs from the registry's only in case is
written the registry's way.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from typing import Any

from bmc.errors import BmcError

DISPLAY = "display:"
#: The reference board (ASUS WRX90 / ASMB11-iKVM): target -> target value -> attributes.
REFERENCE_MAP: dict[str, Any] = {
    "pcie_link_speed": {
        "gen5": {"CbsCmnEarlyLinkSpeedSHP": "GEN5", "CbsCmnPcieTargetLinkSpeedSHP": "GEN5"},
    },
    "nps": {"1": {"CbsDfCmnDramNpsSHP": "NPS1"}, "2": {"CbsDfCmnDramNpsSHP": "NPS2"},
            "4": {"CbsDfCmnDramNpsSHP": "NPS4"}},
    "memory_profile": {"expo2": {f"{DISPLAY}Ai Overclock Tuner": "EXPO II"},
                       "expo1": {f"{DISPLAY}Ai Overclock Tuner": "EXPO I"}},
}
DEFAULTS: dict[str, Any] = {
    "bios_targets": {"pcie_link_speed": "gen5", "nps": 4, "memory_profile": "expo2"},
    "bios_attribute_map": REFERENCE_MAP,
    "bmc_rollback_dir": None,  # None: backups/bmc (OMNI_BACKUP_DIR moves backups/)
}

#: What to grep for when an attribute is not mapped yet.
HINTS = {"pcie_link_speed": "link speed", "nps": "nps", "memory_profile": "overclock"}


def targets_from(data: Mapping[str, Any]) -> dict[str, Any]:
    """The configured targets over the defaults (a host may override one and keep the others)."""
    merged = dict(DEFAULTS["bios_targets"])
    merged.update(data.get("bios_targets") or {})
    return {k: v for k, v in merged.items() if not (v is None or v is False or v == "")}  # nps = 0 is real


def attribute_map_from(data: Mapping[str, Any]) -> dict[str, Any]:
    """The reference board's map with the host's entries replacing it target by target."""
    merged = copy.deepcopy(REFERENCE_MAP)
    own = data.get("bios_attribute_map") or {}
    if isinstance(own, Mapping):
        merged.update({k: copy.deepcopy(v) for k, v in own.items()})
    return merged


def resolve_against_registry(
    wanted: Mapping[str, Any], registry: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, Any]:
    """``display:<label>`` names to the registry's attribute; enum values in the registry's spelling.

    Unknown plain names are left for :func:`bmc.bios.validate`, which refuses them with near
    matches; a label matching no attribute (or several) is refused here the same way.
    """
    reg = registry or {}
    resolved: dict[str, Any] = {}
    for name, value in wanted.items():
        if name.startswith(DISPLAY):
            label = name[len(DISPLAY):]
            want = label.casefold()
            hits = [n for n, e in reg.items() if str(e.get("display_name") or "").casefold() == want]
            if len(hits) != 1:
                labels = sorted({str(e.get("display_name")) for e in reg.values() if e.get("display_name")})
                close = difflib.get_close_matches(label, labels, n=3, cutoff=0.5)
                what = f"{len(hits)} attributes ({', '.join(sorted(hits))})" if hits else "no attribute"
                raise BmcError(
                    f"the BMC's BIOS registry has {what} labelled {label!r}"
                    + (f" (near: {', '.join(close)})" if close else ""),
                    "map the target to the attribute's NAME in bios_attribute_map "
                    "(`python -m bmc bios get --grep TEXT`)",
                    "invalid" if reg else "unsupported",
                )
            name = hits[0]
        allowed = (reg.get(name) or {}).get("allowed") or []
        if isinstance(value, str) and value not in allowed:
            same = [a for a in allowed if a.casefold() == value.casefold()]
            value = same[0] if len(same) == 1 else value
        resolved[name] = value
    return resolved


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
