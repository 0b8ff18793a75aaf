"""inventory.py and omni/hostdata.py: defaults, overrides, and refusing to guess a target."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from omni.hostdata import NO_HOST_MESSAGE, InventoryError, bmc_credentials, host_data, inventory_groups

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_the_reference_box():
    data = host_data(env={})
    assert data["numa_nodes"] == 4
    assert data["memory"]["speed_mts"] == 6400
    assert [g["memory_mib"] for g in data["gpus"]] == [97887, 32607]
    assert {d["role"] for d in data["disks"]} == {"ubuntu", "windows"}
    assert all(d["serial"] is None for d in data["disks"])


def test_unset_ssh_user_is_left_to_ssh():
    assert "ssh_user" not in host_data(env={})
    assert host_data(env={"OMNI_SSH_USER": "omni"})["ssh_user"] == "omni"


def test_environment_overrides_typed_values():
    env = {"OMNI_NUMA_NODES": "1", "OMNI_DISK_UBUNTU_SERIAL": "S7XYZ", "OMNI_BMC_VERIFY_TLS": "no"}
    data = host_data(env=env)
    assert data["numa_nodes"] == 1
    assert data["bmc_verify_tls"] is False
    assert next(d for d in data["disks"] if d["role"] == "ubuntu")["serial"] == "S7XYZ"


def test_bad_integer_names_the_variable():
    with pytest.raises(InventoryError, match="OMNI_NUMA_NODES='four' is not an integer"):
        host_data(env={"OMNI_NUMA_NODES": "four"})


def test_no_host_configured_is_an_error():
    with pytest.raises(InventoryError, match="no host configured"):
        inventory_groups(env={})


def test_hosts_file_groups_and_data(tmp_path):
    hosts = tmp_path / "hosts.toml"
    hosts.write_text('[hosts.box1]\nssh_user = "omni"\n[hosts.box1.memory]\nspeed_mts = 6000\n'
                     '[hosts.node2]\ngroups = ["k3s_agents"]\n')
    groups = inventory_groups(env={"OMNI_HOSTS_FILE": str(hosts)})
    (name, data), = groups["workstations"]
    assert name == "box1" and data["ssh_user"] == "omni" and data["memory"]["speed_mts"] == 6000
    assert data["memory"]["channels"] == 8  # merged, not replaced
    assert [n for n, _ in groups["k3s_agents"]] == ["node2"]


def test_bmc_credentials_from_env_or_file(tmp_path):
    data = host_data(env={})
    with pytest.raises(InventoryError, match="export OMNI_BMC_USERNAME"):
        bmc_credentials(data, env={})
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    data["bmc_password_file"] = str(secret)
    assert bmc_credentials(data, env={"OMNI_BMC_USERNAME": "admin"}) == ("admin", "s3cret")


def _pyinfra(args, env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    env.update(env_extra)
    pyinfra = Path(sys.executable).with_name("pyinfra")
    return subprocess.run([str(pyinfra), "-y", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_pyinfra_run_without_host_stops_with_one_line():
    proc = _pyinfra(["inventory.py", "exec", "--", "true"], {})
    assert proc.returncode != 0
    assert NO_HOST_MESSAGE in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_pyinfra_run_with_local_host_executes():
    proc = _pyinfra(["inventory.py", "exec", "--", "echo", "omni-ok"], {"OMNI_HOST": "@local"})
    assert proc.returncode == 0, proc.stderr
    assert "omni-ok" in proc.stdout + proc.stderr


def test_pyinfra_accepts_ssh_host_data():
    """Connector data must type-check: the run reaches the SSH connection (refused on a closed port)."""
    proc = _pyinfra(["inventory.py", "exec", "--", "true"], {"OMNI_HOST": "127.0.0.1", "OMNI_SSH_PORT": "1"})
    out = proc.stdout + proc.stderr
    assert "Connector data type error" not in out
    assert proc.returncode != 0 and "127.0.0.1" in out
