"""Phase 0 backups: tar the configured paths on the host, pull them to the controller, verify.

Why on the controller: the box is reinstalled after phase 0, so a backup left on it is no backup.
Each path becomes ``<name>.tar.gz`` plus its sha256 (computed on the host), pulled into
``backups/<host>-<YYYYMMDD>/`` and re-hashed there; ``manifest.json`` records path, sha256, size and
the verification, and lists source paths that did not exist. A missing source is a warning here,
but phase 0's ready marker is then refused (one line naming them) unless the host data accepts the
loss in ``backups.allow_missing``. A same-day rerun whose manifest verifies is a no-op.
``deploys/restore.py`` puts them back.

The archives hold secrets (``/etc/pve`` has the cluster's private keys, Letta's database its
memories), so the controller's folder is created ``0700`` before anything is pulled into it and
every file in it is made ``0600``; on the host they are written under ``umask 077`` in a ``0700``
staging folder.

Host data ``backups`` (merged over :data:`DEFAULTS`): ``paths`` (name → absolute path on the host;
the runbook's Letta data in ``/var/lib/letta``, the Proxmox configuration ``/etc/pve`` with the
database behind it, ``/var/lib/pve-cluster/config.db``, network and manifests; a host's ``paths``
replaces the defaults), ``allow_missing`` (names whose absence is accepted), ``remote_dir``
(staging folder on the host). ``OMNI_BACKUP_DIR`` moves the controller's ``backups/``.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.operations import files, server

from deploys.core import markers
from deploys.core.controller import controller_check
from facts.files import PathsPresent
from omni.files import atomic_write_json
from omni.settings import settings

DEFAULTS: dict[str, Any] = {
    "paths": {
        "letta": "/var/lib/letta",  # runbook 0.1
        "proxmox-etc": "/etc/pve",  # runbook 0.2 (pmxcfs: restored to a staging folder, docs/deploys.md)
        "proxmox-db": "/var/lib/pve-cluster/config.db",  # the database pmxcfs serves /etc/pve from
        "proxmox-network": "/etc/network/interfaces",
        "manifests": "/root/manifests",  # runbook 0.2
    },
    "allow_missing": [],
    "remote_dir": "/var/tmp/omni-backups",
}
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600


def backup_settings(data: Any) -> dict[str, Any]:
    cfg = settings(DEFAULTS, data, "backups")
    override = (data.get("backups") or {}).get("paths")
    if override is not None:  # a host's own list replaces the runbook's, it does not extend it
        cfg["paths"] = dict(override)
    for name, path in cfg["paths"].items():
        if not str(path).startswith("/") or "/" in name:
            raise ValueError(f"backups.paths[{name!r}]={path!r}: give a plain name and an absolute path")
    if not isinstance(cfg["allow_missing"], list):
        raise ValueError("backups.allow_missing must be a list of backups.paths names")
    return cfg


def backup_dir(host_name: str, day: str | None = None) -> Path:
    day = day or datetime.now(UTC).strftime("%Y%m%d")
    return markers.backup_root() / f"{markers.safe_name(host_name)}-{day}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _well_formed(entry: Any) -> bool:
    """A manifest entry we can check: a plain file name in the folder, a sha256 and a size."""
    if not isinstance(entry, dict) or not isinstance(entry.get("size_bytes"), int):
        return False
    file, sha = entry.get("file"), entry.get("sha256")
    return isinstance(file, str) and isinstance(sha, str) and Path(file).name == file


def verify_manifest(folder: Path) -> list[str]:
    """Problems with the backups in ``folder`` (empty: every archive matches its recorded sha256).

    Total over damaged manifests (hand-edited, truncated, another tool's): each flaw is a problem
    line, never a KeyError, and an entry's file must sit in ``folder`` itself."""
    manifest = folder / "manifest.json"
    try:
        document = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return [f"no readable {manifest}"]
    archives = document.get("archives") if isinstance(document, dict) else None
    if not isinstance(archives, dict):
        return [f"{manifest} has no 'archives' table: it is damaged or not ours; take a new backup (phase 0)"]
    problems = []
    for name, entry in archives.items():
        if not _well_formed(entry):
            problems.append(f"{manifest}: archive {name!r} lacks a plain file name, sha256 or size_bytes")
            continue
        archive = folder / entry["file"]
        if not archive.is_file():
            problems.append(f"{archive} missing")
        elif archive.stat().st_size != entry["size_bytes"] or sha256_file(archive) != entry["sha256"]:
            problems.append(f"{archive} does not match its recorded sha256/size")
    return problems


def not_private(folder: Path) -> list[str]:
    """Files or the folder itself readable by others than the owner (backups hold secrets)."""
    problems = []
    if folder.is_dir() and folder.stat().st_mode & 0o777 != PRIVATE_DIR:
        problems.append(f"{folder} is mode {folder.stat().st_mode & 0o777:04o}, not 0700")
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.is_file() and path.stat().st_mode & 0o777 != PRIVATE_FILE:
            problems.append(f"{path} is mode {path.stat().st_mode & 0o777:04o}, not 0600")
    return problems


def missing_sources(folder: Path, allowed: list[str]) -> dict[str, str]:
    """Sources the manifest records as absent that the host data does not accept losing."""
    try:
        recorded = json.loads((folder / "manifest.json").read_text()).get("missing_sources") or {}
    except (OSError, ValueError):
        return {}
    return {name: path for name, path in recorded.items() if name not in allowed}


def _prepare(folder: Path) -> list[str]:
    """The controller's folder for today's backups: created 0700 before anything lands in it."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(PRIVATE_DIR)
    return []


def latest_backup(host_name: str) -> Path | None:
    folders = sorted(markers.backup_root().glob(f"{markers.safe_name(host_name)}-[0-9]*"))
    return folders[-1] if folders else None


def _record(folder: Path, present: dict[str, str], missing: dict[str, str]) -> list[str]:
    """Check each pulled archive against the host's sha256 file, then write manifest.json."""
    archives, problems = {}, []
    for name, path in present.items():
        archive, sum_file = folder / f"{name}.tar.gz", folder / f"{name}.tar.gz.sha256"
        try:
            expected = sum_file.read_text().split()[0]
        except (OSError, IndexError):
            problems.append(f"{sum_file} missing: the pull failed")
            continue
        actual = sha256_file(archive) if archive.is_file() else None
        for pulled in (archive, sum_file):
            if pulled.is_file():
                pulled.chmod(PRIVATE_FILE)
        if actual != expected:
            problems.append(f"{archive}: sha256 {actual} differs from the host's {expected}")
            continue
        archives[name] = {
            "source": path,
            "file": archive.name,
            "sha256": actual,
            "size_bytes": archive.stat().st_size,
        }
    if not problems:
        document = {
            "host": host.name,
            "verified_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "archives": archives,
            "missing_sources": missing,
        }
        atomic_write_json(folder / "manifest.json", document, mode=PRIVATE_FILE)
    return problems


@deploy("Back up the configured paths to the controller")
def backup_paths() -> None:
    cfg = backup_settings(host.data)
    folder = backup_dir(host.name)
    if not verify_manifest(folder):
        host.noop(f"today's backups in {folder} verify")
        return
    found = host.get_fact(PathsPresent, paths=list(cfg["paths"].values())) or {}
    present = {n: p for n, p in cfg["paths"].items() if found.get(p)}
    missing = {n: p for n, p in cfg["paths"].items() if not found.get(p)}
    for name, path in missing.items():
        logger.warning(f"{host.print_prefix}backup source {name}={path} does not exist: recorded as missing")
    remote = cfg["remote_dir"]
    files.directory(name=f"Create {remote}", path=remote, mode="700")
    controller_check(_prepare, folder, name=f"Create {folder} on the controller (mode 0700)")
    for name, path in present.items():
        archive = f"{remote}/{name}.tar.gz"
        server.shell(
            name=f"Archive {path}",
            commands=[
                f"umask 077 && tar -C / -czf {shlex.quote(archive)} {shlex.quote(path.lstrip('/'))} && "
                f"sha256sum {shlex.quote(archive)} > {shlex.quote(archive)}.sha256"
            ],
        )
        for suffix in ("", ".sha256"):
            files.get(
                name=f"Pull {name}.tar.gz{suffix}",
                src=f"{archive}{suffix}",
                dest=str(folder / f"{name}.tar.gz{suffix}"),
                create_local_dir=True,
                force=True,
            )
    controller_check(_record, folder, present, missing, name=f"Verify the backups in {folder}")
