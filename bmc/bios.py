"""BIOS attributes: read, validate against the BMC's registry, stage as pending, undo.

Why validation here and not on the BMC: AMI firmwares accept an unknown attribute or a value
outside the list with HTTP 200 and drop it at the next POST, so a typo costs a reboot and
looks like success. We check names and values first, save the old values to a rollback file,
send ``If-Match`` with the settings object's ETag, and read the pending values back.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from sushy import exceptions as sushy_exc

from bmc import rollback
from bmc.connection import Bmc
from bmc.errors import BmcError

_TRUE = {"true", "yes", "on", "1", "enabled"}
_FALSE = {"false", "no", "off", "0", "disabled"}


def _bios(bmc: Bmc) -> Any:
    with bmc.errors("GET BIOS"):
        try:
            bios = bmc.system().bios
        except sushy_exc.MissingAttributeError:
            raise BmcError(
                f"the BMC at {bmc.settings.url} exposes no BIOS resource for this system",
                "change BIOS settings in the BIOS setup screen (boot once bios)",
                "unsupported",
            ) from None
        bios.refresh(force=True)
        return bios


def current(bmc: Bmc) -> dict[str, Any]:
    """The attributes in effect now."""
    return dict(_bios(bmc).attributes or {})


def _settings_uri(bmc: Bmc, bios: Any) -> str:
    uri = ((bios.json.get("@Redfish.Settings") or {}).get("SettingsObject") or {}).get("@odata.id")
    if not uri:
        raise BmcError(
            "the BMC's BIOS resource has no settings object (@Redfish.Settings)",
            "change BIOS settings in the BIOS setup screen",
            "unsupported",
        )
    return uri


def _read_settings(bmc: Bmc, bios: Any) -> tuple[str, dict[str, Any], str | None]:
    """(settings URI, pending attributes, ETag to send as If-Match)."""
    uri = _settings_uri(bmc, bios)
    with bmc.errors(f"GET {uri}"):
        response = bmc.conn.get(uri)
    body = response.json()
    etag = response.headers.get("ETag") or body.get("@odata.etag")
    return uri, dict(body.get("Attributes") or {}), etag


def pending(bmc: Bmc) -> dict[str, Any]:
    """Pending values that differ from the current ones (what the next boot will change)."""
    bios = _bios(bmc)
    now = dict(bios.attributes or {})
    _uri, staged, _etag = _read_settings(bmc, bios)
    return {k: v for k, v in sorted(staged.items()) if now.get(k) != v}


def registry(bmc: Bmc, bios: Any = None) -> dict[str, dict[str, Any]] | None:
    """Attribute name -> {type, allowed, read_only, lower, upper, display_name}; None without registry."""
    bios = bios if bios is not None else _bios(bmc)
    if not bios.json.get("AttributeRegistry"):
        return None
    with bmc.errors("GET the BIOS attribute registry"):
        reg = bios.get_attribute_registry()
    if reg is None or reg.registry_entries is None:
        return None
    entries: dict[str, dict[str, Any]] = {}
    for item in reg.registry_entries.attributes or []:
        values = [v.get("ValueName") for v in (item.allowable_values or []) if isinstance(v, dict)]
        entries[item.name] = {
            "type": item.attribute_type,
            "allowed": values or None,
            "display_name": item.display_name,
            "read_only": bool(item.read_only) or bool(item.immutable),
            "lower": item.lower_bound,
            "upper": item.upper_bound,
            "min_length": item.min_length,
            "max_length": item.max_length,
        }
    return entries


def _unknown(name: str, known: list[str]) -> BmcError:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return BmcError(
        f"unknown BIOS attribute {name!r}{hint}",
        "list the names with `python -m bmc bios get --grep TEXT`",
        "invalid",
    )


def _invalid(name: str, value: Any, why: str, fix: str) -> BmcError:
    return BmcError(f"BIOS attribute {name} does not accept {value!r} ({why})", fix, "invalid")


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise _invalid(name, value, "it is a boolean", "use true or false")


def _as_int(name: str, value: Any, entry: dict[str, Any]) -> int:
    if isinstance(value, bool):
        raise _invalid(name, value, "it is an integer", "give a whole number")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _invalid(name, value, "it is an integer", "give a whole number") from None
    lower, upper = entry.get("lower"), entry.get("upper")
    if (lower is not None and number < lower) or (upper is not None and number > upper):
        raise _invalid(name, value, f"range {lower}..{upper}", f"give a number from {lower} to {upper}")
    return number


def coerce(name: str, value: Any, entry: dict[str, Any] | None, now: Any) -> Any:
    """``value`` (CLI text or JSON) as the type the registry, or else the current value, says."""
    kind = (entry or {}).get("type") or {bool: "Boolean", int: "Integer"}.get(type(now), "String")
    if entry and entry.get("read_only"):
        raise _invalid(name, value, "it is read-only on this BMC", "leave it out")
    if kind == "Password":
        raise _invalid(
            name, "***", "passwords are not set this way", "set BIOS passwords in the BIOS setup screen"
        )
    if kind == "Boolean":
        return _as_bool(name, value)
    if kind == "Integer":
        return _as_int(name, value, entry or {})
    text = str(value)
    allowed = (entry or {}).get("allowed")
    if kind == "Enumeration" and allowed:
        if text in allowed:
            return text
        same = [a for a in allowed if a.lower() == text.lower()]
        fix = f"write it as {same[0]!r}" if same else f"pick one of: {', '.join(allowed)}"
        raise _invalid(name, value, "not in the registry's list", fix)
    lo, hi = (entry or {}).get("min_length"), (entry or {}).get("max_length")
    if (lo is not None and len(text) < lo) or (hi is not None and len(text) > hi):
        raise _invalid(name, value, f"length must be {lo}..{hi}", "give a value of that length")
    return text


def validate(
    values: dict[str, Any], now: dict[str, Any], reg: dict[str, dict[str, Any]] | None
) -> dict[str, Any]:
    """Typed values after checking every name and value; the first problem raises one line."""
    known = sorted(set(reg or {}) | set(now))
    typed = {}
    for name, value in values.items():
        entry = (reg or {}).get(name)
        if entry is None and name not in now:
            raise _unknown(name, known)
        typed[name] = coerce(name, value, entry, now.get(name))
    return typed


def parse_assignments(items: list[str]) -> dict[str, str]:
    """``["A=1", "B=x"]`` -> ``{"A": "1", "B": "x"}``."""
    values: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise BmcError(f"{item!r} is not NAME=VALUE", "write each setting as NAME=VALUE", "invalid")
        values[name.strip()] = value.strip()
    return values


def get(bmc: Bmc, names: list[str] | None = None, grep: str | None = None) -> dict[str, Any]:
    """Current values: all, the named ones, or those whose name/display name contains ``grep``."""
    now = current(bmc)
    if names:
        missing = [n for n in names if n not in now]
        if missing:
            raise _unknown(missing[0], sorted(now))
        return {n: now[n] for n in names}
    if grep:
        reg = registry(bmc) or {}
        needle = grep.lower()
        return {
            n: v
            for n, v in sorted(now.items())
            if needle in n.lower() or needle in str((reg.get(n) or {}).get("display_name") or "").lower()
        }
    return dict(sorted(now.items()))


def _patch(bmc: Bmc, uri: str, etag: str | None, payload: dict[str, Any]) -> None:
    with bmc.errors(f"PATCH {uri}"):
        bmc.conn.patch(uri, data=payload, etag=etag)


def plan_changes(bmc: Bmc, values: dict[str, Any], bios: Any = None) -> dict[str, Any]:
    """Validate ``values`` and say what must be sent (differs from pending-or-current) and applied."""
    bios = bios if bios is not None else _bios(bmc)
    now = dict(bios.attributes or {})
    typed = validate(values, now, registry(bmc, bios))
    _uri, staged, _etag = _read_settings(bmc, bios)
    return {
        "typed": typed,
        "current": {k: now.get(k) for k in typed},
        "pending": {k: staged[k] for k in typed if k in staged},
        "send": {k: v for k, v in typed.items() if staged.get(k, now.get(k)) != v},
        "apply": {k: v for k, v in typed.items() if now.get(k) != v},
    }


def set_attributes(
    bmc: Bmc,
    values: dict[str, Any],
    rollback_dir: str | Path | None = None,
    apply_on_reboot: bool = False,
    reason: str = "bios set",
) -> dict[str, Any]:
    """Stage ``values`` as pending (applied at the next boot), after saving a rollback file."""
    bios = _bios(bmc)
    plan = plan_changes(bmc, values, bios)
    send = plan["send"]
    if not send:
        return {
            "changed": False,
            "staged": {},
            "rollback_file": None,
            "message": "every value is already current or pending; nothing sent",
        }
    payload: dict[str, Any] = {"Attributes": send}
    if apply_on_reboot:
        supported = (bios.json.get("@Redfish.Settings") or {}).get("SupportedApplyTimes")
        if supported and "OnReset" not in supported:
            raise BmcError(
                f"this BMC applies BIOS settings only at {', '.join(supported)}",
                "leave out --apply-on-reboot",
                "unsupported",
            )
        payload["@Redfish.SettingsApplyTime"] = {"ApplyTime": "OnReset"}
    path = rollback.save(
        rollback_dir,
        bmc_url=bmc.settings.url,
        system_id=str(bmc.system().identity),
        reason=reason,
        attributes={k: plan["current"][k] for k in send},
        pending_before={k: plan["pending"][k] for k in send if k in plan["pending"]},
    )
    uri, _staged, etag = _read_settings(bmc, bios)
    _patch(bmc, uri, etag, payload)
    _uri, after, _etag = _read_settings(bmc, bios)
    now_after = current(bmc)
    wrong = {
        k: after.get(k, now_after.get(k)) for k, v in send.items() if after.get(k, now_after.get(k)) != v
    }
    if wrong:
        shown = ", ".join(f"{k}={v!r}" for k, v in wrong.items())
        raise BmcError(
            f"the BMC accepted the BIOS change but reads back {shown}",
            f"check the BIOS setup screen; the old values are in {path}",
            "not_applied",
        )
    names = ", ".join(f"{k}={v}" for k, v in send.items())
    return {
        "changed": True,
        "staged": send,
        "rollback_file": str(path),
        "message": f"pending until the next boot: {names} (rollback file {path})",
    }


def clear_pending(bmc: Bmc) -> dict[str, Any]:
    """Put every differing pending value back to its current value, so the next boot changes nothing."""
    bios = _bios(bmc)
    now = dict(bios.attributes or {})
    uri, staged, etag = _read_settings(bmc, bios)
    differing = {k: v for k, v in staged.items() if now.get(k) != v}
    if not differing:
        return {"changed": False, "cleared": [], "message": "nothing pending; nothing sent"}
    _patch(bmc, uri, etag, {"Attributes": {k: now.get(k) for k in differing}})
    left = pending(bmc)
    if left:
        raise BmcError(
            f"pending values survived clear-pending: {', '.join(left)}",
            "clear them in the BIOS setup screen",
            "not_applied",
        )
    return {
        "changed": True,
        "cleared": sorted(differing),
        "message": f"cleared pending {', '.join(sorted(differing))}",
    }


def rollback_from(bmc: Bmc, file: str | Path, rollback_dir: str | Path | None = None) -> dict[str, Any]:
    """Stage the values a rollback file saved (they land at the next boot)."""
    doc = rollback.load(file)
    if doc.get("bmc_url") and doc["bmc_url"].rstrip("/") != bmc.settings.url:
        raise BmcError(
            f"{file} was saved from {doc['bmc_url']}, not {bmc.settings.url}",
            "use the rollback file of this BMC",
            "config",
        )
    result = set_attributes(bmc, doc["attributes"], rollback_dir, reason=f"rollback of {Path(file).name}")
    if result["changed"]:
        result["message"] = f"rollback staged: {result['message']}"
    return result
