"""facts/files.py: the commands run for real in bash here, their output parsed by the pure parsers."""

from __future__ import annotations

import subprocess
from pathlib import Path

from facts.files import PathsPresent, SpaceAt, parse_paths_present, parse_space


def _sh(command: str) -> list[str]:
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_paths_present_on_a_real_filesystem(tmp_path: Path):
    there, absent = tmp_path / "a file", tmp_path / "nope"
    there.write_text("x")
    output = _sh(PathsPresent().command(paths=[str(there), str(absent)]))
    assert PathsPresent().process(output) == {str(there): True, str(absent): False}
    assert PathsPresent().command(paths=[]) == "true"


def test_space_at_walks_up_to_an_existing_parent(tmp_path: Path):
    value = SpaceAt().process(_sh(SpaceAt().command(path=str(tmp_path / "not" / "yet"), hf="bash")))
    assert isinstance(value["free"], int) and value["free"] > 0
    assert value["hf"] and value["hf"].endswith("bash")
    assert SpaceAt().process(_sh(SpaceAt().command(path=str(tmp_path), hf="no-such-cli-xyz")))["hf"] is None


def test_parsers_ignore_noise():
    found = parse_paths_present(["", "present /etc/x", "absent /etc/y z"])
    assert found == {"/etc/x": True, "/etc/y z": False}
    assert parse_space(["motd noise", "free=", "hf="]) == {"free": None, "hf": None}
