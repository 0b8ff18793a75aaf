"""What the phase-0 tests share: the entry points, @fake host data with its canned answers, the
environment that keeps backups and the ISO record in the test's folder."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PHASE0, RESTORE = ROOT / "deploys/phase0.py", ROOT / "deploys/restore.py"
ISO_CHECK = Path(__file__).with_name("iso_check_deploy.py")
SHA = "a" * 64
GROUPS = {"workstations": ["@fake"], "iso_servers": ["@fake"]}


def iso_data(**http) -> dict:
    return {
        "http": {"bind": "127.0.0.1", **http},
        "images": [{"name": "ubuntu.iso", "url": "https://example.invalid/ubuntu.iso", "sha256": SHA}],
    }


def fake(**data) -> tuple[str, dict]:
    responses = {
        "test -e": [
            "present /var/lib/letta",
            "absent /etc/pve",
            "absent /var/lib/pve-cluster/config.db",
            "present /etc/network/interfaces",
            "absent /root/manifests",
        ]
    }
    responses["test -d /run/systemd/system"] = "booted"
    return "@fake", {"isos": iso_data(), "iso_http_port": 8080, "fake_responses": responses, **data}


def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "OMNI_BACKUP_DIR": str(tmp_path / "backups"),
        "OMNI_ISO_RECORD": str(tmp_path / "backups" / "iso-verified.json"),
    }


def iso_check_data(served: Path, port: int, sha: str) -> dict:
    return {
        "iso_http_port": port,
        "isos": {
            "dir": str(served),
            "http": {"bind": "127.0.0.1"},
            "images": [{"name": "ubuntu.iso", "url": "https://example.invalid/ubuntu.iso", "sha256": sha}],
        },
    }
