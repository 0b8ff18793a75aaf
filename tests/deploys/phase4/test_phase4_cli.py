"""``pyinfra inventory.py deploys/phase4.py`` end to end: the real CLI, inventory.py and a hosts file
whose ``@fake`` hosts carry scripted facts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.deploys.phase4.phase4_boxes import OS_RELEASE_DEBIAN, Box, converged, hosts_toml

ROOT = Path(__file__).resolve().parents[3]
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))


def pyinfra(tmp_path: Path, hosts: dict, *args: str) -> subprocess.CompletedProcess:
    hosts_file = tmp_path / "hosts.toml"
    hosts_file.write_text(hosts_toml(hosts))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "PYINFRA_"))}
    env.update(OMNI_HOSTS_FILE=str(hosts_file), PYINFRA_PROGRESS="off")
    return subprocess.run([PYINFRA, "inventory.py", "deploys/phase4.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_non_ubuntu_host_is_refused_with_one_line(tmp_path):
    proc = pyinfra(tmp_path, {"@fake/deb": (Box(os_release=OS_RELEASE_DEBIAN).data(), ["workstations"])},
                   "--dry")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "@fake/deb: phase 4 supports Ubuntu 24.04 only, found Debian 12: install Ubuntu 24.04" in output
    assert "Traceback" not in output
    assert [line for line in output.splitlines() if "supports Ubuntu 24.04 only" in line] == [
        next(line for line in output.splitlines() if "pyinfra error" in line)]


def test_gpu_machine_shape_plans_cleanly_without_systemd_docker_or_gpg(tmp_path):
    """The H200 machine: Ubuntu 24.04, no systemd, no docker, no gpg, nothing of phase 4 installed."""
    box = Box(systemd=False)
    box.packages.pop("gnupg")
    proc = pyinfra(tmp_path, {"@fake/h200": (box.data(), ["workstations"])}, "--dry")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-2000:]
    assert "Traceback" not in output and "could not load fact" not in output
    for step in ("Refuse to apply phase 4 without systemd", "Install Docker CE at the pinned versions",
                 "Install the NVIDIA Container Toolkit at the pinned versions", "Install K3s v1.35.6+k3s1",
                 "Verify a runtimeClassName nvidia pod runs nvidia-smi"):
        assert step in output


def test_converged_host_applies_with_no_change(tmp_path):
    proc = pyinfra(tmp_path, {"@fake/box": (converged().data(phase4={"verify": False}), ["workstations"])},
                   "-y", "--json")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]
    results = json.loads(proc.stdout)["results"]
    totals = results["totals"]
    assert totals["error"] == 0 and totals["no_change"] == totals["hosts"] > 10
    assert [op["name"] for op in results["operations"] if op["success"]] == []
