"""BIOS rollback files: the values we are about to change, saved before we change them.

Why a file and not memory: the change only lands at the next boot, possibly days later, and a
BIOS change can cost the box its network. The file survives the process and names the BMC it
came from, so ``python -m bmc bios rollback FILE`` can put the old values back.

Format (JSON, one object)::

    {"kind": "omni-bios-rollback", "version": 1, "saved_at": "2026-11-29T10:00:00Z",
     "bmc_url": "https://192.0.2.10", "system_id": "Self", "reason": "bios set",
     "attributes": {"CbsDfCmnDramNps": "NPS1"},          # current values of what we change
     "pending_before": {}}                                # pending values we overwrote
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bmc.errors import BmcError
from omni.files import atomic_write_json
from omni.secrets import redact_url

KIND = "omni-bios-rollback"
VERSION = 1


def default_dir() -> Path:
    """``backups/bmc`` under the working directory (``OMNI_BACKUP_DIR`` moves ``backups/``)."""
    return Path(os.environ.get("OMNI_BACKUP_DIR") or "backups") / "bmc"


def _stem(bmc_url: str) -> str:
    parts = urlsplit(bmc_url)
    host = (parts.hostname or "bmc") + (f"_{parts.port}" if parts.port else "")  # never user:pass@
    return re.sub(r"[^A-Za-z0-9.-]+", "_", host)


def save(
    directory: str | Path | None,
    *,
    bmc_url: str,
    system_id: str,
    attributes: dict[str, Any],
    pending_before: dict[str, Any],
    reason: str,
) -> Path:
    """Write the rollback file atomically (never half-written) and return its path."""
    now = datetime.now(UTC)
    folder = Path(directory).expanduser() if directory else default_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BmcError(
            f"cannot create rollback folder {folder} ({exc.strerror})",
            "pass a writable --rollback-dir",
            "config",
        ) from None
    base = f"bios-rollback-{_stem(bmc_url)}-{now:%Y%m%dT%H%M%SZ}"
    path = folder / f"{base}.json"
    counter = 1
    while path.exists():
        path = folder / f"{base}-{counter}.json"
        counter += 1
    doc = {
        "kind": KIND,
        "version": VERSION,
        "saved_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "bmc_url": redact_url(bmc_url),
        "system_id": system_id,
        "reason": reason,
        "attributes": attributes,
        "pending_before": pending_before,
    }
    return atomic_write_json(path, doc, sort_keys=True, mode=0o600)


def load(path: str | Path) -> dict[str, Any]:
    """Read and check a rollback file; one-line errors for anything that is not one."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise BmcError(
            f"rollback file {file} does not exist",
            "pass a file written by `bios set` (see backups/bmc/)",
            "config",
        )
    try:
        doc = json.loads(file.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise BmcError(
            f"rollback file {file} is not valid JSON ({exc})", "pass an untouched rollback file", "config"
        ) from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND or not isinstance(doc.get("attributes"), dict):
        raise BmcError(
            f"{file} is not a BIOS rollback file (kind {KIND!r} with attributes)",
            "pass a file written by `bios set`",
            "config",
        )
    if doc.get("version") != VERSION:
        raise BmcError(
            f"rollback file {file} has version {doc.get('version')!r}, expected {VERSION}",
            "use the bmc tool version that wrote it",
            "config",
        )
    return doc
