"""Issue 19, class 11 (run flags): a bad ``--data`` value on an entry point is one line naming the key
and the fix, with a non-zero exit, never a traceback (before: ``int('abc')`` in phase3_install.py,
``Path(5)`` in restore.py, ``[1] in YES`` in phase3.py raised out of the deploy file; phases 1 and 2
met a bad BMC timeout only in a callback, after the BIOS settings were staged or the ISO inserted).

Each case runs the real pyinfra CLI on ``@local`` with ``--dry``; phase3_install gets the state it
needs (phase 0's marker, the verified autoinstall ISO, the BMC's install marker) to reach the flag
that used to be parsed last, so the old code's traceback is what a case would meet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploys.bmc.iso_record import record_verified
from deploys.bmc.media import install_marker

REPO = Path(__file__).resolve().parents[2]
PYINFRA = str(Path(sys.executable).parent / "pyinfra")
INSTALL = ["--data", "install_for=box1", "--data", "confirm_install=yes"]


def _installed_state(backups: Path) -> None:
    """What phase 0 and an earlier phase-3 BMC run leave, so the install step itself is a no-op."""
    url, sha = "http://127.0.0.1:9/ubuntu-autoinstall-box1.iso", "a" * 64
    backups.mkdir(parents=True, exist_ok=True)
    (backups / "phase0-ready-box1.json").write_text('{"ready": true, "host": "box1"}')
    record_verified({"name": "ubuntu-autoinstall-box1.iso", "url": "remastered from ubuntu.iso",
                     "served_url": url, "sha256": sha, "size_bytes": 1, "derived_from": "ubuntu.iso"},
                    backups / "iso-verified.json")
    install_marker("ubuntu", "@local").write_text(json.dumps({"sha256": sha, "url": url, "booted_at": "t"}))


@pytest.mark.parametrize(("deploy", "args", "key"), [
    ("phase3_install.py", [*INSTALL, "--data", "install_ssh_port=abc"], "install_ssh_port"),
    ("phase3_install.py", [*INSTALL, "--data", "install_ssh_port=70000"], "install_ssh_port"),
    ("phase3_install.py", [*INSTALL, "--data", "install_ssh_timeout=soon"], "install_ssh_timeout"),
    ("phase3_install.py", [*INSTALL, "--data", "bmc_poll_s=-1"], "bmc_poll_s"),
    ("phase3_install.py", ["--data", "install_for=box1", "--data", "confirm_install=[1]"], "confirm_install"),
    ("restore.py", ["--data", "restore_from=5"], "restore_from"),
    ("restore.py", ["--data", "restore_root=relative/dir"], "restore_root"),
    ("restore.py", ["--data", "restore_staged_sources=etc/pve"], "restore_staged_sources"),
    ("restore.py", ["--data", "restore_names=[1, [2]]"], "restore_names"),
    ("phase0.py", ["--data", "phase0_steps=backups,bios"], "phase0_steps"),
    ("phase3.py", ["--data", "confirm_reboot=[1]"], "confirm_reboot"),
    ("phase3.py", ["--data", "storage_skip=maybe"], "storage_skip"),
    ("phase1.py", ["--data", "bmc_poll_s=abc"], "bmc_poll_s"),
    ("phase1.py", ["--data", "confirm_reboot=maybe"], "confirm_reboot"),
    ("phase1.py", ["--data", "bmc_shutdown_timeout=-1"], "bmc_shutdown_timeout"),
    ("phase2.py", ["--data", "bmc_install_power_action=reboot"], "bmc_install_power_action"),
    ("phase2.py", ["--data", "bmc_media_timeout=0"], "bmc_media_timeout"),
])
def test_a_bad_flag_is_one_line_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deploy: str,
                                          args: list[str], key: str) -> None:
    backups = tmp_path / "backups"
    monkeypatch.setenv("OMNI_BACKUP_DIR", str(backups))  # install_marker() resolves under it, here too
    if deploy == "phase3_install.py":
        _installed_state(backups)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "PYINFRA_"))}
    env |= {"OMNI_HOST": "@local", "OMNI_BACKUP_DIR": str(backups), "PYTHONPATH": str(REPO)}
    command = [PYINFRA, "--dry", str(REPO / "inventory.py"), str(REPO / "deploys" / deploy), *args]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "Traceback" not in out, out
    [line] = [line for line in out.splitlines() if "pyinfra error" in line]
    assert f"@local: {key}" in line and f"pass --data {key}=" in line, line


@pytest.mark.parametrize(("deploy", "table", "needle"), [
    ("verify.py", 'verify]\npcie_load_seconds = "soon"', "verify.pcie_load_seconds: Input should be a valid"),
    ("verify.py", "verify]\nmin_decode_tps = -1", "verify.min_decode_tps: Input should be greater than 0"),
    ("verify.py", "verify]\nmin_decode_tp = 5", "verify.min_decode_tp: Extra inputs are not permitted"),
    ("verify.py", 'storage]\nmountpoint = "nvme"', "storage.mountpoint: 'nvme' is not an absolute path"),
    ("phase3.py", 'storage]\nmin_size_gib = "abc"', "storage.min_size_gib: Input should be a valid number"),
    ("phase3.py", 'storage]\nlayout = "whole"', "storage.layout: Input should be 'append' or 'whole-disk'"),
    ("phase3.py", 'grub]\ncmdline = "quiet"', "grub.cmdline: Input should be a valid list (got 'quiet')"),
    ("phase3.py", 'nvidia]\nbranch = "latest"', "nvidia.branch: Input should be a valid integer"),
])
def test_a_bad_settings_table_is_one_line_before_anything_runs(tmp_path: Path, deploy: str, table: str,
                                                                needle: str) -> None:
    """These tables were read raw (``float()`` in three check modules, ``min_size_gib`` compared as a
    string, ``cmdline = "quiet"`` written one letter at a time): now one model each, checked first."""
    hosts = tmp_path / "hosts.toml"
    hosts.write_text(f'[hosts."@local".{table}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "PYINFRA_"))}
    env |= {"OMNI_HOSTS_FILE": str(hosts), "OMNI_REPORTS_DIR": str(tmp_path / "reports"),
            "OMNI_BACKUP_DIR": str(tmp_path / "backups"), "PYTHONPATH": str(REPO)}
    command = [PYINFRA, "-y", "--dry", str(REPO / "inventory.py"), str(REPO / "deploys" / deploy)]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    out = run.stdout + run.stderr
    assert run.returncode != 0 and "Traceback" not in out, out
    [line] = [line for line in out.splitlines() if "pyinfra error" in line]
    assert needle in line and "hosts file (OMNI_HOSTS_FILE)" in line, line
    assert not (tmp_path / "reports").exists()  # verify stopped before any row ran
