"""The controller's record of ISO images whose sha256 phase 0 verified.

Why a record: the BMC boots whatever URL it is given, so phases 2 and 3 (``deploys/bmc/media.py``)
must refuse an image nobody checked. Phase 0 downloads each ISO to a temporary name, verifies its
sha256 against the inventory, moves it into place, serves it over HTTP and checks two ``Range``
requests (206 and the file's bytes) and the served body's sha256; only then does it call
:func:`record_verified`. The BMC side calls :func:`require_verified` with the URL it is about to insert.

File: ``backups/iso-verified.json`` under the controller's working directory (override with
``OMNI_ISO_RECORD``), written atomically::

    {"version": 1,
     "isos": {"ubuntu-24.04.3-live-server-amd64.iso": {
         "name": "ubuntu-24.04.3-live-server-amd64.iso",
         "url": "https://releases.ubuntu.com/24.04.3/ubuntu-24.04.3-live-server-amd64.iso",
         "served_url": "http://192.0.2.5:8080/ubuntu-24.04.3-live-server-amd64.iso",
         "sha256": "<64 hex>", "size_bytes": 3213064192,
         "host": "isohost", "path": "/srv/omni-iso/ubuntu-24.04.3-live-server-amd64.iso",
         "verified_at": "2026-11-29T08:00:00+00:00"}}}

Entries are keyed by file name; :func:`lookup` also matches the source ``url`` or the
``served_url``, so callers may use whichever they hold.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omni.files import atomic_write_json

RECORD_ENV = "OMNI_ISO_RECORD"
DEFAULT_PATH = Path("backups") / "iso-verified.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REQUIRED = ("name", "url", "sha256", "size_bytes")


class IsoRecordError(ValueError):
    """A missing, unreadable or unverified ISO record; the message names the fix."""


def record_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The record file: the argument, else ``$OMNI_ISO_RECORD``, else ``backups/iso-verified.json``."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(RECORD_ENV) or DEFAULT_PATH)


def load(path: str | os.PathLike[str] | None = None) -> dict[str, dict[str, Any]]:
    """All verified entries keyed by name; an absent file is an empty record."""
    file = record_path(path)
    if not file.exists():
        return {}
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise IsoRecordError(f"ISO record {file} is unreadable ({exc}): delete it, rerun phase 0") from None
    isos = data.get("isos") if isinstance(data, dict) else None
    if not isinstance(isos, dict):
        raise IsoRecordError(f"ISO record {file} has no 'isos' table: delete it and rerun phase 0")
    return isos


def record_verified(entry: Mapping[str, Any], path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Add or replace one verified ISO (``name``, ``url``, ``sha256``, ``size_bytes`` required)."""
    missing = [key for key in _REQUIRED if entry.get(key) in (None, "")]
    if missing:
        raise IsoRecordError(f"ISO record entry lacks {', '.join(missing)}: pass every field")
    sha = str(entry["sha256"]).lower()
    if not _SHA256.match(sha):
        raise IsoRecordError(f"ISO {entry['name']}: sha256 {entry['sha256']!r} is not 64 hex digits")
    row = dict(entry, sha256=sha, size_bytes=int(entry["size_bytes"]))
    row.setdefault("verified_at", datetime.now(UTC).isoformat(timespec="seconds"))
    file = record_path(path)
    isos = load(file)
    isos[row["name"]] = row
    atomic_write_json(file, {"version": 1, "isos": isos}, sort_keys=True, mode=0o600)
    return row


def lookup(key: str, path: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The entry whose name, source URL or served URL is ``key``."""
    for entry in load(path).values():
        if key in (entry.get("name"), entry.get("url"), entry.get("served_url")):
            return entry
    return None


def require_verified(
    key: str, sha256: str | None = None, path: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """The verified entry for ``key`` (name or URL), or one line saying why it may not be booted.

    When ``sha256`` is given (the inventory's value) it must equal the recorded one, so an image
    replaced upstream after verification is refused too.
    """
    entry = lookup(key, path)
    if entry is None:
        raise IsoRecordError(
            f"ISO {key} is not recorded as verified in {record_path(path)}: run phase 0 "
            "(pyinfra inventory.py deploys/phase0.py) to download and verify it first"
        )
    if sha256 is not None and sha256.lower() != entry["sha256"]:
        raise IsoRecordError(
            f"ISO {key}: inventory sha256 {sha256.lower()} differs from the verified {entry['sha256']}: "
            "rerun phase 0 after fixing the inventory"
        )
    return entry
