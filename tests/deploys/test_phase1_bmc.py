"""Real pyinfra runs of deploys/phase1.py against the sushy-tools emulator (host @local, BMC on loopback)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
PYINFRA = str(Path(sys.executable).parent / "pyinfra")
SD = "/Bios/SD"
RESET = "/Actions/ComputerSystem.Reset"


def _harness():
    """tests/bmc/emulator_harness.py (the emulator + AMI-like layer); tests/ is no package, so by path."""
    folder = str(ROOT / "tests" / "bmc")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("emulator_harness")


HOSTS = """
[hosts."@local"]
bmc_poll_s = 0.2
host_reconnect_timeout = 20
[hosts."@local".bios_attribute_map.pcie_link_speed.gen5]
PCIS1LinkSpeed = "Gen5"
PCIS3LinkSpeed = "Gen5"
[hosts."@local".bios_attribute_map.nps."4"]
CbsDfCmnDramNps = "NPS4"
[hosts."@local".bios_attribute_map.memory_profile.expo2]
AiOverclockTuner = "EXPO II"
"""
WANTED = {
    "PCIS1LinkSpeed": "Gen5",
    "PCIS3LinkSpeed": "Gen5",
    "CbsDfCmnDramNps": "NPS4",
    "AiOverclockTuner": "EXPO II",
}


def run_phase(
    tmp_path: Path, emu, deploy: str, *extra: str, hosts: str = HOSTS
) -> subprocess.CompletedProcess:
    hosts_file = tmp_path / "hosts.toml"
    hosts_file.write_text(hosts)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    env |= emu.env | {"OMNI_HOSTS_FILE": str(hosts_file)}
    env.pop("PYINFRA_YES", None)  # --dry shows the plan only when change detection runs
    yes = [] if "--dry" in extra else ["-y"]
    command = [PYINFRA, *yes, str(ROOT / "inventory.py"), str(ROOT / "deploys" / deploy), *extra]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    return run.returncode, run.stdout + run.stderr


@pytest.fixture
def ami(tmp_path):
    with _harness().running_emulator(tmp_path / "emulator", ami_mode=True) as emu:
        yield emu


def _pending(emu) -> dict:
    return emu.get(f"{emu.system_path()}/Bios/SD")["Attributes"]


def _current(emu) -> dict:
    return emu.get(f"{emu.system_path()}/Bios")["Attributes"]


def test_phase1_stages_targets_but_refuses_to_reboot_without_confirmation(ami, tmp_path):
    rc, out = run_phase(tmp_path, ami, "phase1.py", "--dry")
    assert rc == 0, out
    assert "Stage the BIOS targets as pending settings" in out
    assert ami.count("PATCH", SD) == 0

    rc, out = run_phase(tmp_path, ami, "phase1.py")
    assert rc == 0, out
    assert "not rebooting without confirmation: re-run with --data confirm_reboot=yes" in out
    assert ami.count("POST", RESET) == 0
    assert ami.get(ami.system_path())["PowerState"] == "Off"
    assert _pending(ami) == WANTED
    [rollback] = (tmp_path / "backups" / "bmc").glob("bios-rollback-*.json")
    saved = json.loads(rollback.read_text())["attributes"]
    assert saved == {
        "PCIS1LinkSpeed": "Gen4",
        "PCIS3LinkSpeed": "Auto",
        "CbsDfCmnDramNps": "NPS1",
        "AiOverclockTuner": "Auto",
    }

    rc, out = run_phase(tmp_path, ami, "phase1.py")
    assert rc == 0, out
    assert "Stage the BIOS targets" not in out  # converged: nothing to send
    assert ami.count("PATCH", SD) == 1 and ami.count("POST", RESET) == 0


def test_phase1_confirmed_reboot_applies_targets_and_checks_hardware(ami, tmp_path):
    rc, out = run_phase(tmp_path, ami, "phase1.py", "--data", "confirm_reboot=yes")
    assert rc == 0, out
    assert ami.count("POST", RESET) == 1  # the box was Off: the cold cycle is a power-on
    assert {k: _current(ami)[k] for k in WANTED} == WANTED and _pending(ami) == {}
    assert "cold power cycle through the BMC (On): On after" in out
    assert "the BMC answers after the reboot" in out
    assert "NUMA nodes" in out and "DIMM configured speed" in out  # the hardware rows are reported

    rc, out = run_phase(tmp_path, ami, "phase1.py", "--data", "confirm_reboot=yes")
    assert rc == 0, out
    assert "BIOS targets already in effect" in out
    assert ami.count("POST", RESET) == 1  # no second reboot


def test_phase1_without_attribute_mapping_stops_with_one_line(ami, tmp_path):
    hosts = '[hosts."@local"]\n[hosts."@local".bios_targets]\npcie_link_speed = "gen4"\n'
    rc, out = run_phase(tmp_path, ami, "phase1.py", hosts=hosts)
    assert rc != 0
    assert "no BIOS attribute is mapped for pcie_link_speed=gen4" in out
    assert "python -m bmc bios get --grep 'link speed'" in out and "Traceback" not in out
    assert ami.count("PATCH", SD) == 0


REFERENCE = {
    "CbsCmnEarlyLinkSpeedSHP": "GEN5",
    "CbsCmnPcieTargetLinkSpeedSHP": "GEN5",
    "CbsDfCmnDramNpsSHP": "NPS4",
    "AiOverclockTuner": "EXPO II",  # found by its setup label "Ai Overclock Tuner" in the registry
}
BARE = '[hosts."@local"]\nbmc_poll_s = 0.2\nhost_reconnect_timeout = 20\n'


def _power_on(emu) -> None:
    """Test-side setup on the loopback emulator: the box is running before phase 1."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        requests.post(emu.url + emu.system_path() + RESET, json={"ResetType": "On"},
                      auth=(emu.username, emu.password), verify=False, timeout=10).raise_for_status()
    deadline = time.monotonic() + 20
    while emu.get(emu.system_path())["PowerState"] != "On":
        assert time.monotonic() < deadline, "the emulator never powered on"
        time.sleep(0.1)


def test_phase1_reference_board_map_and_a_cold_power_cycle(ami, tmp_path):
    """No map in the hosts file: the runbook's attribute names; a running box is powered off, then on."""
    _power_on(ami)
    before = ami.count("POST", RESET)
    rc, out = run_phase(tmp_path, ami, "phase1.py", "--data", "confirm_reboot=yes", hosts=BARE)
    assert rc == 0, out
    assert "cold power cycle through the BMC (GracefulShutdown, On): On after" in out
    assert ami.count("POST", RESET) - before == 2  # off, then on: never a warm GracefulRestart
    assert {k: _current(ami)[k] for k in REFERENCE} == REFERENCE and _pending(ami) == {}


def test_phase1_refuses_a_name_the_registry_does_not_know_listing_near_matches(ami, tmp_path):
    table = '[hosts."@local".bios_attribute_map.pcie_link_speed.gen5]\n'
    hosts = BARE + table + 'CbsCmnEarlyLinkSpeedSPH = "GEN5"\n'
    rc, out = run_phase(tmp_path, ami, "phase1.py", hosts=hosts)
    assert rc != 0 and "Traceback" not in out
    assert "unknown BIOS attribute 'CbsCmnEarlyLinkSpeedSPH' (did you mean CbsCmnEarlyLinkSpeedSHP" in out
    assert ami.count("PATCH", SD) == 0


def test_phase1_refuses_an_invalid_mapped_value(ami, tmp_path):
    hosts = HOSTS.replace('CbsDfCmnDramNps = "NPS4"', 'CbsDfCmnDramNps = "NPS3"')
    rc, out = run_phase(tmp_path, ami, "phase1.py", hosts=hosts)
    assert rc != 0
    assert "BIOS attribute CbsDfCmnDramNps does not accept 'NPS3'" in out
    assert ami.count("PATCH", SD) == 0
    assert not (tmp_path / "backups" / "bmc").exists()
