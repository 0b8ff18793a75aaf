"""Where phases record that they completed: on the host, and (phase 0) on the controller.

Why two places: phase 0 runs before the point of no return, and the disk it ran against is
reinstalled afterwards, so its "ready" marker lives on the controller
(``backups/phase0-ready-<host>.json``, ``OMNI_BACKUP_DIR`` moves ``backups/``); phase 3 refuses to
run without it. Phases that run on the installed system leave ``/var/lib/omni/<phase>.json`` on the
host, which verify reads to tell "not deployed yet" (UNKNOWN) from "broken" (FAIL).
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omni.files import atomic_write_json

MARKER_DIR = "/var/lib/omni"  # on the host: <phase>.json per completed phase
BACKUP_DIR_ENV = "OMNI_BACKUP_DIR"


def backup_root() -> Path:
    return Path(os.environ.get(BACKUP_DIR_ENV) or "backups")


def safe_name(host_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", host_name).strip("_") or "host"


def phase0_marker_path(host_name: str) -> Path:
    return backup_root() / f"phase0-ready-{safe_name(host_name)}.json"


def read_phase0_marker(host_name: str) -> dict[str, Any] | None:
    path = phase0_marker_path(host_name)
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) and value.get("ready") is True else None


def write_phase0_marker(host_name: str, checks: dict[str, Any]) -> Path:
    """Write the ready marker; ``checks`` maps each phase-0 check to its (passed) result."""
    path = phase0_marker_path(host_name)
    written_at = datetime.now(UTC).isoformat(timespec="seconds")
    document = {"ready": True, "host": host_name, "written_at": written_at, "checks": checks}
    return atomic_write_json(path, document, default=str)


def host_marker_path(phase: str) -> str:
    return f"{MARKER_DIR}/{phase}.json"
