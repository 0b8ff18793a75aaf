"""Phase 0 Ubuntu autoinstall: the NoCloud seed, the remastered ISO, both served and recorded."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from deploys.core.pyinfra_run import plan
from tests.deploys.phase0.phase0_env import (
    GROUPS,
    ISO_CHECK,
    PHASE0,
    env,
    fake,
    iso_check_data,
)
from tests.sysdeps import ensure_binary

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKu0omniTestKeyOnly0000000000000000000000000 owner@mac"
AUTOINSTALL = {"password_hash": "$6$saltsalt$" + "x" * 86, "ssh_authorized_keys": [KEY]}
WS_DISKS = [
    {"role": "ubuntu", "model": "CT4000T705SSD3", "serial": "2413E8A1B2C3"},
    {"role": "windows", "model": "WD_BLACK SN8100 4000GB", "serial": "25123A800001"},
]
GRUB_CFG = """set timeout=30
loadfont unicode
menuentry "Try or Install Ubuntu Server" {
\tset gfxpayload=keep
\tlinux\t/casper/vmlinuz  ---
\tinitrd\t/casper/initrd
}
menuentry "Ubuntu Server with the HWE kernel" {
\tlinux\t/casper/hwe-vmlinuz  ---
\tinitrd\t/casper/hwe-initrd
}
"""


def test_autoinstall_settings_refuse_in_one_line():
    from deploys.bmc.autoinstall import AutoinstallConfigError, autoinstall_settings

    cases = [
        ({"autoinstall": {**AUTOINSTALL, "password_hash": "hunter2"}, "disks": WS_DISKS},
         "box1.lan: autoinstall.password_hash is not set: give a crypt hash (`openssl passwd -6`)"),
        ({"autoinstall": {**AUTOINSTALL, "ssh_authorized_keys": []}, "disks": WS_DISKS},
         "box1.lan: autoinstall.ssh_authorized_keys must list your SSH public keys"),
        ({"autoinstall": AUTOINSTALL, "disks": [{**WS_DISKS[0], "serial": None}, WS_DISKS[1]]},
         "set OMNI_DISK_UBUNTU_SERIAL"),
    ]
    for data, message in cases:
        with pytest.raises(AutoinstallConfigError) as error:
            autoinstall_settings(data, "box1.lan")
        assert message in str(error.value) and "\n" not in str(error.value)


def test_user_data_targets_the_ubuntu_disk_by_model_and_serial_with_the_runbook_layout():
    import yaml

    from deploys.bmc.autoinstall import autoinstall_settings, user_data

    text = user_data(autoinstall_settings({"autoinstall": AUTOINSTALL, "disks": WS_DISKS}, "box1.lan"))
    assert text.startswith("#cloud-config\n")
    auto = yaml.safe_load(text)["autoinstall"]  # what cloud-init/subiquity parse
    assert auto["version"] == 1 and auto["identity"]["hostname"] == "box1"
    assert auto["ssh"] == {"install-server": True, "allow-pw": False, "authorized-keys": [KEY]}
    assert auto["kernel"] == {"package": "linux-generic-hwe-24.04"}
    config = auto["storage"]["config"]
    (disk,) = [c for c in config if c["type"] == "disk"]
    assert disk["match"] == {"serial": "*2413E8A1B2C3", "model": "CT4000T705SSD3"}
    assert "25123A800001" not in text and "SN8100" not in text  # the Windows disk is never named
    sizes = {c["id"]: c["size"] for c in config if c["type"] == "partition"}
    assert sizes == {"esp": "512M", "root": "500G", "home": "500G"}  # the rest stays free for /nvme
    mounts = {c["path"] for c in config if c["type"] == "mount"}
    assert mounts == {"/", "/home", "/boot/efi"}


def make_iso(folder: Path, grub_cfg: str) -> Path:
    xorriso = ensure_binary("xorriso", "xorriso")
    tree = folder / "tree"
    (tree / "boot" / "grub").mkdir(parents=True)
    (tree / "boot" / "grub" / "grub.cfg").write_text(grub_cfg)
    (tree / "casper").mkdir()
    (tree / "casper" / "vmlinuz").write_text(os.urandom(4096).hex())
    iso = folder / "ubuntu.iso"
    subprocess.run([xorriso, "-as", "mkisofs", "-quiet", "-V", "Ubuntu-Server 24.04.3 LTS amd64", "-o",
                    str(iso), str(tree)], check=True, capture_output=True)
    return iso


def read_from_iso(iso: Path, member: str, dest: Path) -> str:
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", member, str(dest)],
                   check=True, capture_output=True)
    return dest.read_text()


def test_remaster_puts_the_seed_on_every_kernel_line_and_keeps_the_rest(tmp_path):
    from deploys.bmc.autoinstall import remaster_command

    iso = make_iso(tmp_path, GRUB_CFG)
    url = "http://192.0.2.5:8080/autoinstall/box1/"
    run = subprocess.run(["sh", "-c", remaster_command(str(tmp_path), iso.name, "auto.iso", url)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    grub = read_from_iso(tmp_path / "auto.iso", "/boot/grub/grub.cfg", tmp_path / "grub.cfg")
    assert f"linux\t/casper/vmlinuz autoinstall 'ds=nocloud;s={url}'  ---" in grub
    assert "linux\t/casper/hwe-vmlinuz" in grub and grub.count("ds=nocloud") == 1  # only /casper/vmlinuz
    assert grub.startswith("set timeout=5\n")
    kernel = read_from_iso(tmp_path / "auto.iso", "/casper/vmlinuz", tmp_path / "k")
    assert kernel == read_from_iso(iso, "/casper/vmlinuz", tmp_path / "k0")  # the rest is the base's
    sha = hashlib.sha256((tmp_path / "auto.iso").read_bytes()).hexdigest()
    assert (tmp_path / "auto.iso.sha256").read_text().strip() == sha
    assert (tmp_path / "auto.iso.inputs").read_text().splitlines() == [
        url, hashlib.sha256(iso.read_bytes()).hexdigest()]
    # not an Ubuntu live-server ISO: refused, nothing left behind
    other = make_iso(tmp_path / "other", GRUB_CFG.replace("/casper/vmlinuz", "/boot/vmlinuz"))
    bad = subprocess.run(["sh", "-c", remaster_command(str(other.parent), other.name, "auto.iso", url)],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "not an Ubuntu live-server ISO" in bad.stderr
    assert not (other.parent / "auto.iso").exists()


def test_phase0_plans_the_seed_and_the_remastered_iso_for_a_workstation(tmp_path):
    name, data = fake()
    data.update(autoinstall={**AUTOINSTALL, "base_iso": "ubuntu.iso"}, disks=WS_DISKS)
    result = plan(PHASE0, [(name, data)], groups=GROUPS, env=env(tmp_path))
    assert result.error is None, result.error
    user_data = result.op("Write the autoinstall user-data of @fake")
    assert user_data.will_change
    assert "/srv/omni-iso/autoinstall/fake/user-data" in " ".join(user_data.commands)
    remaster = result.op("Remaster ubuntu.iso into ubuntu-autoinstall-fake.iso").commands[0]
    assert "ds=nocloud;s=http://127.0.0.1:8080/autoinstall/fake/" in remaster
    assert "-boot_image any replay" in remaster
    missing = {**data, "autoinstall": {**AUTOINSTALL, "base_iso": "nope.iso"}}
    refused = plan(PHASE0, [(name, missing)], groups=GROUPS, env=env(tmp_path))
    assert "autoinstall.base_iso 'nope.iso' of @fake is not in isos.images" in refused.error


def test_the_seed_and_the_remastered_iso_are_served_and_recorded(tmp_path, nginx_iso_server):
    import yaml

    from deploys.bmc.autoinstall import autoinstall_settings, remaster_command, user_data

    served, port = nginx_iso_server
    base = make_iso(tmp_path / "base", GRUB_CFG)
    shutil.copy(base, served / "ubuntu.iso")
    url = f"http://127.0.0.1:{port}/autoinstall/box1/"
    build = remaster_command(str(served), "ubuntu.iso", "ubuntu-autoinstall-box1.iso", url)
    subprocess.run(["sh", "-c", build], check=True, capture_output=True)
    (served / "autoinstall" / "box1").mkdir(parents=True)
    text = user_data(autoinstall_settings({"autoinstall": AUTOINSTALL, "disks": WS_DISKS}, "box1"))
    (served / "autoinstall" / "box1" / "user-data").write_text(text)
    for path in [served / "autoinstall", served / "autoinstall" / "box1"]:
        path.chmod(0o755)
    for path in served.rglob("*"):
        if path.is_file():
            path.chmod(0o644)
    with urllib.request.urlopen(url + "user-data", timeout=10) as answer:  # what the installer fetches
        disk = yaml.safe_load(answer.read())["autoinstall"]["storage"]["config"][0]
    assert disk["match"]["model"] == "CT4000T705SSD3"
    data = iso_check_data(served, port, hashlib.sha256(base.read_bytes()).hexdigest())
    data["isos"]["derived"] = [{"name": "ubuntu-autoinstall-box1.iso", "url": "remastered from ubuntu.iso",
                                "derived_from": "ubuntu.iso"}]
    result = plan(ISO_CHECK, [("@local", data)], execute=True, env=env(tmp_path))
    assert all(o.success for o in result.ops), result.output[-2000:]
    record = json.loads((tmp_path / "backups" / "iso-verified.json").read_text())["isos"]
    derived = record["ubuntu-autoinstall-box1.iso"]
    assert derived["derived_from"] == "ubuntu.iso"
    remastered = (served / "ubuntu-autoinstall-box1.iso").read_bytes()
    assert derived["sha256"] == hashlib.sha256(remastered).hexdigest()
