"""Fixtures: a real sushy-tools emulator per test, a loopback ISO server, and the CLI run in-process."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from emulator_harness import Emulator, running_emulator, serving_directory

from bmc.cli import main


@pytest.fixture
def emulator(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """Standard emulator; ``parametrize("emulator", [{...}], indirect=True)`` sets OMNI_* options."""
    options = getattr(request, "param", {}) or {}
    with running_emulator(tmp_path / "emulator", **options) as emu:
        yield emu


@pytest.fixture
def ami(tmp_path: Path) -> Iterator[Emulator]:
    """AMI-like emulator: TransferProtocolType required, eject before insert, slow mount, If-Match on BIOS."""
    with running_emulator(tmp_path / "ami", ami_mode=True, mount_delay_s=1.0) as emu:
        yield emu


@pytest.fixture(scope="session")
def iso_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("isos")
    for name in ("win11-dummy.iso", "ubuntu-24.04-dummy.iso"):
        (folder / name).write_bytes(b"CD001" + bytes(64 * 1024))
    with serving_directory(folder) as base:
        yield base


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def json(self) -> dict:
        return json.loads(self.out)


@pytest.fixture
def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> Callable[..., Result]:
    """``run_cli(emu, "power", "on")``: the real CLI in-process, env pointing at ``emu``, cwd in tmp."""
    for var in [v for v in os.environ if v.startswith("OMNI_")]:
        monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)

    def run(emu: Emulator | None, *args: str, env: dict[str, str] | None = None) -> Result:
        with monkeypatch.context() as patch:
            for key, value in ((emu.env if emu else {}) | (env or {})).items():
                patch.setenv(key, value)
            rc = main(list(args))
        captured = capsys.readouterr()
        return Result(rc, captured.out, captured.err)

    return run
