"""bios get/set/pending/clear-pending/rollback against the emulator's BIOS layer (plain and AMI-like)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from emulator_harness import attribute_defaults, running_emulator

PATCH_SETTINGS = "/Bios/Settings"
PATCH_SD = "/Bios/SD"


@pytest.fixture(scope="module")
def untouched(tmp_path_factory):
    """One emulator for the tests that must fail before writing anything (they check that nothing was)."""
    with running_emulator(tmp_path_factory.mktemp("untouched")) as emu:
        yield emu


def _rollback_files(folder: Path) -> list[Path]:
    return sorted((folder / "backups" / "bmc").glob("bios-rollback-*.json"))


def test_get_all_named_and_grep(emulator, run_cli):
    everything = run_cli(emulator, "bios", "get", "--json")
    assert everything.rc == 0 and everything.json["attributes"] == attribute_defaults()
    named = run_cli(emulator, "bios", "get", "CbsDfCmnDramNps", "BootTimeout", "--json")
    assert named.json["attributes"] == {"CbsDfCmnDramNps": "NPS1", "BootTimeout": 5}
    found = run_cli(emulator, "bios", "get", "--grep", "numa nodes", "--json")  # matches the display name
    assert found.json["attributes"] == {"CbsDfCmnDramNps": "NPS1"}


def test_set_stages_pending_and_writes_rollback_file(emulator, run_cli, tmp_path):
    result = run_cli(
        emulator, "bios", "set", "CbsDfCmnDramNps=NPS4", "BootTimeout=10", "SecureBootEnable=true", "--json"
    )
    assert result.rc == 0, result.err
    assert result.json["staged"] == {"CbsDfCmnDramNps": "NPS4", "BootTimeout": 10, "SecureBootEnable": True}
    [saved] = _rollback_files(tmp_path)
    assert str(saved.relative_to(tmp_path)) == result.json["rollback_file"]
    doc = json.loads(saved.read_text())
    assert doc["attributes"] == {"CbsDfCmnDramNps": "NPS1", "BootTimeout": 5, "SecureBootEnable": False}
    assert doc["bmc_url"] == emulator.url and doc["kind"] == "omni-bios-rollback"
    pending = run_cli(emulator, "bios", "pending", "--json").json["pending"]
    assert pending == {"BootTimeout": 10, "CbsDfCmnDramNps": "NPS4", "SecureBootEnable": True}
    assert (
        run_cli(emulator, "bios", "get", "CbsDfCmnDramNps", "--json").json["attributes"]["CbsDfCmnDramNps"]
        == "NPS1"
    )
    again = run_cli(emulator, "bios", "set", "CbsDfCmnDramNps=NPS4", "--json")
    assert again.json["changed"] is False and len(_rollback_files(tmp_path)) == 1
    assert emulator.count("PATCH", PATCH_SETTINGS) == 1


def test_ami_bios_patch_carries_if_match(ami, run_cli):
    result = run_cli(ami, "bios", "set", "AiOverclockTuner=EXPO II", "--apply-on-reboot", "--json")
    assert result.rc == 0, result.err  # the AMI-like layer answers 428 without If-Match, 412 on a stale one
    assert ami.count("PATCH", PATCH_SD) == 1
    assert run_cli(ami, "bios", "pending", "--json").json["pending"] == {"AiOverclockTuner": "EXPO II"}


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        ("CbsDfCmnDramNPS=NPS4", "unknown BIOS attribute 'CbsDfCmnDramNPS' (did you mean CbsDfCmnDramNps,"),
        (
            "CbsDfCmnDramNps=NPS3",
            "CbsDfCmnDramNps does not accept 'NPS3' (not in the registry's list): pick one of",
        ),
        ("AiOverclockTuner=expo ii", "write it as 'EXPO II'"),
        ("BootTimeout=31", "range 0..30"),
        ("BootTimeout=soon", "it is an integer"),
        ("SecureBootEnable=maybe", "it is a boolean"),
        ("BiosBuildDate=2030-01-01", "read-only"),
        ("NoEqualsSign", "is not NAME=VALUE"),
    ],
)
def test_invalid_sets_fail_before_anything_is_written(untouched, run_cli, tmp_path, assignment, expected):
    result = run_cli(untouched, "bios", "set", assignment)
    assert result.rc == 1
    assert expected in result.err and result.err.strip().count("\n") == 0
    assert untouched.count("PATCH", PATCH_SETTINGS) == 0
    assert _rollback_files(tmp_path) == []


@pytest.mark.parametrize("emulator", [{"bios_registry": False}], indirect=True)
def test_without_registry_names_and_types_come_from_current_values(emulator, run_cli):
    unknown = run_cli(emulator, "bios", "set", "CbsDfCmnDramNPS=NPS4")
    assert unknown.rc == 1 and "did you mean CbsDfCmnDramNps" in unknown.err
    typed = run_cli(emulator, "bios", "set", "BootTimeout=12", "--json")
    assert typed.rc == 0 and typed.json["staged"] == {"BootTimeout": 12}


def test_clear_pending(ami, run_cli):
    assert run_cli(ami, "bios", "set", "CbsDfCmnDramNps=NPS4", "SvmMode=Disabled").rc == 0
    cleared = run_cli(ami, "bios", "clear-pending", "--json")
    assert cleared.rc == 0, cleared.err
    assert cleared.json["cleared"] == ["CbsDfCmnDramNps", "SvmMode"]
    assert run_cli(ami, "bios", "pending", "--json").json["pending"] == {}
    assert run_cli(ami, "bios", "clear-pending", "--json").json["changed"] is False


def test_rollback_restores_the_saved_values(ami, run_cli, tmp_path):
    assert run_cli(ami, "power", "on", "--wait", "--poll", "0.1").rc == 0
    staged = run_cli(ami, "bios", "set", "CbsDfCmnDramNps=NPS4", "PCIS1LinkSpeed=Gen5", "--json")
    assert staged.rc == 0, staged.err
    assert run_cli(ami, "power", "restart", "--wait", "--poll", "0.1").rc == 0
    applied = run_cli(ami, "bios", "get", "CbsDfCmnDramNps", "PCIS1LinkSpeed", "--json").json["attributes"]
    assert applied == {"CbsDfCmnDramNps": "NPS4", "PCIS1LinkSpeed": "Gen5"}
    rolled = run_cli(ami, "bios", "rollback", staged.json["rollback_file"], "--json")
    assert rolled.rc == 0, rolled.err
    assert rolled.json["staged"] == {"CbsDfCmnDramNps": "NPS1", "PCIS1LinkSpeed": "Gen4"}
    assert run_cli(ami, "power", "restart", "--wait", "--poll", "0.1").rc == 0
    assert run_cli(ami, "bios", "get", "--json").json["attributes"] == attribute_defaults()
    assert len(_rollback_files(tmp_path)) == 2  # the rollback saved what it replaced, too


def test_rollback_refuses_a_file_from_another_bmc(emulator, run_cli, tmp_path):
    staged = run_cli(emulator, "bios", "set", "SvmMode=Disabled", "--json")
    doc = json.loads(Path(staged.json["rollback_file"]).read_text())
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc | {"bmc_url": "https://192.0.2.10"}))
    result = run_cli(emulator, "bios", "rollback", str(other))
    assert result.rc == 2 and "was saved from https://192.0.2.10" in result.err
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    assert "is not valid JSON" in run_cli(emulator, "bios", "rollback", str(garbage)).err


def test_a_firmware_that_rejects_its_own_etag_fails_with_one_line(tmp_path, run_cli):
    with running_emulator(tmp_path / "buggy", ami_mode=True, bios_reject_etag=True) as buggy:
        result = run_cli(buggy, "bios", "set", "SvmMode=Disabled")
        assert result.rc == 1 and result.err.strip().count("\n") == 0
        assert "If-Match" in result.err and "update the BMC firmware" in result.err
        assert run_cli(buggy, "bios", "pending", "--json").json["pending"] == {}
