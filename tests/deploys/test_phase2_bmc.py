"""Real pyinfra runs of deploys/phase2.py and install_os_from_iso against the sushy-tools emulator."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from pathlib import Path

import pytest
from test_phase1_bmc import ROOT, _harness, run_phase

from deploys.bmc.iso_record import record_verified

INSERT = "/Actions/VirtualMedia.InsertMedia"
RESET = "/Actions/ComputerSystem.Reset"


@pytest.fixture(scope="module")
def iso(tmp_path_factory):
    """A dummy ISO served on loopback: (url, sha256, size)."""
    folder = tmp_path_factory.mktemp("iso")
    data = b"CD001" + os.urandom(32 * 1024)
    (folder / "installer.iso").write_bytes(data)
    with _harness().serving_directory(folder) as base:
        yield f"{base}/installer.iso", hashlib.sha256(data).hexdigest(), len(data)


def _hosts(role: str, image: str, sha256: str | None = None) -> str:
    sha = f'sha256 = "{sha256}"\n' if sha256 else ""
    return (
        f'[hosts."@local"]\nbmc_poll_s = 0.2\n[hosts."@local".install_isos.{role}]\nimage = "{image}"\n{sha}'
    )


def _record(tmp_path: Path, url: str, sha256: str, size: int) -> None:
    """What phase 0 writes after downloading, checking and serving an ISO."""
    entry = {
        "name": "installer.iso",
        "url": "https://example.invalid/installer.iso",
        "served_url": url,
        "sha256": sha256,
        "size_bytes": size,
    }
    record_verified(entry, tmp_path / "backups" / "iso-verified.json")


@pytest.fixture
def emulator(tmp_path):
    with _harness().running_emulator(tmp_path / "emulator") as emu:
        yield emu


def test_phase2_refuses_an_iso_phase0_did_not_verify(emulator, tmp_path, iso):
    url, sha256, _size = iso
    rc, out = run_phase(tmp_path, emulator, "phase2.py", hosts=_hosts("windows", url, sha256))
    assert rc != 0
    assert f"refusing to boot the windows ISO: ISO {url} is not recorded as verified" in out
    assert "run phase 0" in out and "Traceback" not in out
    assert emulator.count("POST", INSERT) == 0 and emulator.count("POST", RESET) == 0


def test_phase2_refuses_when_the_inventory_sha256_differs(emulator, tmp_path, iso):
    url, sha256, size = iso
    _record(tmp_path, url, sha256, size)
    rc, out = run_phase(tmp_path, emulator, "phase2.py", hosts=_hosts("windows", url, "0" * 64))
    assert rc != 0 and "differs from the verified" in out
    assert emulator.count("POST", INSERT) == 0


def test_phase2_boots_the_verified_windows_iso_once(emulator, tmp_path, iso):
    url, sha256, size = iso
    _record(tmp_path, url, sha256, size)
    hosts = _hosts("windows", "installer.iso")  # by its name in phase 0's record: the BMC mounts served_url
    rc, out = run_phase(tmp_path, emulator, "phase2.py", hosts=hosts)
    assert rc == 0, out
    for step in (
        "Insert the windows ISO as virtual CD",
        "Boot once from the virtual CD in UEFI mode",
        "Power-cycle the box into the windows installer",
    ):
        assert step in out
    system = emulator.get(emulator.system_path())
    assert system["PowerState"] == "On"
    assert (system["Boot"]["BootSourceOverrideTarget"], system["Boot"]["BootSourceOverrideMode"]) == (
        "Cd",
        "UEFI",
    )
    assert emulator.get(f"{emulator.system_path()}/VirtualMedia/Cd")["Image"] == url
    assert emulator.count("POST", INSERT) == 1 and emulator.count("PATCH", emulator.system_path()) == 1
    marker = json.loads((tmp_path / "backups" / "bmc-install-windows-local.json").read_text())
    assert marker["sha256"] == sha256 and marker["url"] == url and marker["booted_at"]

    resets = emulator.count("POST", RESET)
    rc, out = run_phase(tmp_path, emulator, "phase2.py", hosts=hosts)
    assert rc == 0, out
    assert "the windows installer was already booted" in out
    assert emulator.count("POST", RESET) == resets and emulator.count("POST", INSERT) == 1


def test_install_os_from_iso_for_ubuntu_on_an_ami_like_bmc(tmp_path, iso):
    """The BMC half of phase 3 calls the same @deploy; on an AMI-like BMC (slow mount, PowerCycle)."""
    url, sha256, size = iso
    _record(tmp_path, url, sha256, size)
    deploy = ROOT / "deploys" / "phase2.py"  # run the phase-3 call through a deploy file of its own
    phase3_bmc = tmp_path / "phase3_bmc.py"
    phase3_bmc.write_text(deploy.read_text().replace('role="windows"', 'role="ubuntu"'))
    with _harness().running_emulator(tmp_path / "ami", ami_mode=True, mount_delay_s=1.0) as ami:
        assert ami.get(ami.system_path())["PowerState"] == "Off"
        rc, out = run_phase(tmp_path, ami, str(phase3_bmc), hosts=_hosts("ubuntu", url, sha256))
        assert rc == 0, out
        assert ami.count("POST", INSERT) == 1 and ami.count("POST", RESET) == 1  # Off: the cycle is one On
        assert ami.get(ami.system_path())["PowerState"] == "On"
        assert (tmp_path / "backups" / "bmc-install-ubuntu-local.json").exists()


@pytest.fixture
def ssh_listener():
    """A loopback TCP server that identifies itself as OpenSSH (the installed system coming up)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.5\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    server.close()


def test_phase3_install_boots_the_autoinstall_iso_and_waits_for_ssh(emulator, tmp_path, iso, ssh_listener):
    url, sha256, size = iso
    record_verified({"name": "ubuntu-autoinstall-box1.iso", "url": "remastered from ubuntu.iso",
                     "served_url": url, "sha256": sha256, "size_bytes": size, "derived_from": "ubuntu.iso"},
                    tmp_path / "backups" / "iso-verified.json")
    hosts = '[hosts."@local"]\nbmc_poll_s = 0.2\ninstall_ssh_timeout = 20\n'
    args = ["--data", "install_for=box1", "--data", "install_ssh_host=127.0.0.1",
            "--data", f"install_ssh_port={ssh_listener}"]
    rc, out = run_phase(tmp_path, emulator, "phase3_install.py", *args, hosts=hosts)
    assert rc != 0 and "box1: phase 0 has not completed" in out and "Traceback" not in out
    (tmp_path / "backups" / "phase0-ready-box1.json").write_text('{"ready": true, "host": "box1"}')
    rc, out = run_phase(tmp_path, emulator, "phase3_install.py", *args, hosts=hosts)
    assert rc != 0 and "ERASES the ubuntu-role disk" in out and "confirm_install=yes" in out
    assert emulator.count("POST", INSERT) == 0 and emulator.count("POST", RESET) == 0

    rc, out = run_phase(tmp_path, emulator, "phase3_install.py", *args, "--data", "confirm_install=yes",
                        hosts=hosts)
    assert rc == 0, out
    assert emulator.get(f"{emulator.system_path()}/VirtualMedia/Cd")["Image"] == url
    assert emulator.count("POST", INSERT) == 1 and emulator.count("POST", RESET) == 1
    boot = emulator.get(emulator.system_path())["Boot"]
    # boot once from CD, consumed by that boot: the installed system's reboot comes from its disk
    assert "Boot once from the virtual CD in UEFI mode" in out
    assert (boot["BootSourceOverrideTarget"], boot["BootSourceOverrideEnabled"]) == ("Cd", "Disabled")
    assert f"127.0.0.1:{ssh_listener} answers (SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.5)" in out
    assert "ssh-keygen -R 127.0.0.1" in out
