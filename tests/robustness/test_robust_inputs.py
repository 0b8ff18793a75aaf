"""Issue 19, class 11 (host data): a hand-typed hosts file or stack table with a wrong type, a typo'd
key or a bind that is not an address is one line naming the key and the fix, and a non-zero exit
from the tools that read it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploys.stack.config import StackConfigError, stack_config
from omni.hostdata import InventoryError, host_data, inventory_groups

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("line,needle", [
    ('ssh_port = "22a"', "ssh_port = '22a' is not a number"),
    ("memory = 5", "memory = '5' is not a table"),
    ('memory = {total_gib = "384"}', "memory.total_gib = '384' is not a number"),
    ("inference = {port = true}", "inference.port = 'True' is not a number"),
    ('gpus = [{memory_mib = "97887"}]', "gpus[0].memory_mib = '97887' is not a number"),
    ('gpus = ["RTX 5090"]', "gpus[0] = 'RTX 5090' is not a table"),
    ("disks = [{role = 1}]", "disks[0].role = '1' is not a string"),
    ("bmc_verify_tls = 1", "bmc_verify_tls = '1' is not a boolean"),
    ('bmc_ulr = "https://192.0.2.10"', "unknown key 'bmc_ulr': did you mean 'bmc_url'?"),
    ('groups = "workstations"', "groups must be a list"),
])
def test_hosts_file_errors(tmp_path: Path, line: str, needle: str) -> None:
    hosts = tmp_path / "hosts.toml"
    hosts.write_text(f"[hosts.box]\n{line}\n")
    with pytest.raises(InventoryError) as info:
        inventory_groups({"OMNI_HOSTS_FILE": str(hosts)})
    assert needle in str(info.value) and "\n" not in str(info.value)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    env |= {"OMNI_HOSTS_FILE": str(hosts), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "facts", "collect", "--host", "box"], cwd=REPO, text=True,
                          capture_output=True, env=env, timeout=120)
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr


def test_hosts_file_values_of_the_right_kind_pass(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.toml"
    hosts.write_text('[hosts.box]\nssh_port = 2222\nmemory_headroom_gib = 60.5\nbios_targets = {A = 1}\n'
                     '[hosts.box.memory]\nspeed_mts = 6000\n')
    assert inventory_groups({"OMNI_HOSTS_FILE": str(hosts)})["workstations"][0][1]["ssh_port"] == 2222


@pytest.mark.parametrize("stack,needle", [
    ({"bind": "localhost"}, "stack.bind: 'localhost' is not an IP address"),
    ({"memgraph": {"bind": "my host"}}, "stack.memgraph.bind: 'my host' is not an IP address"),
    ("on", "stack: is a str, not a table"),
])
def test_stack_errors(stack, needle: str) -> None:
    data = host_data(env={})
    data["stack"] = stack
    with pytest.raises(StackConfigError) as info:
        stack_config(data)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_stack_bind_addresses_pass() -> None:
    data = host_data(env={})
    data["stack"] = {"bind": "0.0.0.0", "observability": {"bind": "::1"}}
    assert stack_config(data).bind == "0.0.0.0"
