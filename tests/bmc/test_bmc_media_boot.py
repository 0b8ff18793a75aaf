"""media insert/eject and boot once against the real emulator, plain and AMI-like."""

from __future__ import annotations

import pytest

INSERT = "/Actions/VirtualMedia.InsertMedia"
EJECT = "/Actions/VirtualMedia.EjectMedia"


def _cd(emu) -> dict:
    return emu.get(f"{emu.system_path()}/VirtualMedia/Cd")


def test_insert_confirms_inserted_and_is_idempotent(emulator, run_cli, iso_base):
    url = f"{iso_base}/win11-dummy.iso"
    result = run_cli(emulator, "media", "insert", url, "--poll", "0.1", "--json")
    assert result.rc == 0, result.err
    assert result.json["changed"] is True and result.json["device"] == "Cd"
    drive = _cd(emulator)
    assert drive["Inserted"] is True and drive["Image"] == url
    again = run_cli(emulator, "media", "insert", url, "--json")
    assert again.rc == 0 and again.json["changed"] is False
    assert emulator.count("POST", INSERT) == 1
    status = run_cli(emulator, "status", "--json").json
    assert {"id": "Cd", "media_types": ["CD", "DVD"], "inserted": True, "image": url} in status["media"]


def test_usb_type_uses_the_usb_drive(emulator, run_cli, iso_base):
    result = run_cli(
        emulator, "media", "insert", f"{iso_base}/ubuntu-24.04-dummy.iso", "--type", "usb", "--json"
    )
    assert result.rc == 0, result.err
    assert result.json["device"] == "Floppy"  # the emulator's drive with MediaTypes USBStick


def test_eject_empties_the_drive(emulator, run_cli, iso_base):
    assert run_cli(emulator, "media", "insert", f"{iso_base}/win11-dummy.iso", "--poll", "0.1").rc == 0
    result = run_cli(emulator, "media", "eject", "--poll", "0.1", "--json")
    assert result.rc == 0, result.err
    assert result.json["ejected"] == ["Cd"]
    assert _cd(emulator)["Inserted"] is False
    assert run_cli(emulator, "media", "eject", "--json").json["changed"] is False


def test_ami_insert_sends_transfer_protocol_waits_for_mount_and_ejects_first(ami, run_cli, iso_base):
    first, second = f"{iso_base}/win11-dummy.iso", f"{iso_base}/ubuntu-24.04-dummy.iso"
    result = run_cli(ami, "media", "insert", first, "--poll", "0.1", "--json")
    assert result.rc == 0, result.err
    assert result.json["elapsed_s"] >= 0.9  # AMI-like drive reports Inserted only after 1 s
    assert ami.count("POST", INSERT) == 1  # TransferProtocolType was in the first request
    swapped = run_cli(ami, "media", "insert", second, "--poll", "0.1", "--json")
    assert swapped.rc == 0, swapped.err
    assert ami.count("POST", EJECT) == 1 and ami.count("POST", INSERT) == 2
    assert _cd(ami)["Image"] == second


def test_insert_timeout_is_one_line(ami, run_cli, iso_base):
    result = run_cli(
        ami, "media", "insert", f"{iso_base}/win11-dummy.iso", "--timeout", "0.2", "--poll", "0.05"
    )
    assert result.rc == 1
    assert "did not report Inserted within 0.2 s" in result.err and result.err.strip().count("\n") == 0


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x.iso", "http://user:secret@127.0.0.1/x.iso"])
def test_bad_image_urls_are_refused_before_sending(emulator, run_cli, url):
    result = run_cli(emulator, "media", "insert", url)
    assert result.rc == 1 and "secret" not in result.err
    assert emulator.count("POST", INSERT) == 0


@pytest.mark.parametrize(
    ("device", "target"),
    [
        ("cd", "Cd"),
        ("usb", "Usb"),
        ("hdd", "Hdd"),
        ("pxe", "Pxe"),
        ("bios", "BiosSetup"),
    ],
)
def test_boot_once_reads_back(emulator, run_cli, device, target):
    result = run_cli(emulator, "boot", "once", device, "--uefi", "--json")
    assert result.rc == 0, result.err
    assert (result.json["target"], result.json["enabled"], result.json["mode"]) == (target, "Once", "UEFI")
    boot = emulator.get(emulator.system_path())["Boot"]
    assert (boot["BootSourceOverrideTarget"], boot["BootSourceOverrideEnabled"]) == (target, "Once")
    assert run_cli(emulator, "boot", "once", device, "--uefi", "--json").json["changed"] is False


def test_boot_once_is_consumed_by_the_next_boot(emulator, run_cli):
    assert run_cli(emulator, "boot", "once", "cd", "--uefi").rc == 0
    assert run_cli(emulator, "power", "on", "--wait", "--poll", "0.1").rc == 0
    assert run_cli(emulator, "status", "--json").json["boot_override"]["enabled"] == "Disabled"
