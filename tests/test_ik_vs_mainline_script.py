"""scripts/ik_vs_mainline.sh's start/poll: the device pipeline outlives a call, and a poll on a
fresh machine fails at once instead of waiting out its time (a session lost 560 s that way)."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ik_vs_mainline.sh"


def _run(cache: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120,
                          env=os.environ | {"CACHE": str(cache), "WHEELS": str(cache / "no-wheels")} | env)


def test_poll_on_a_fresh_machine_fails_at_once(tmp_path: Path) -> None:
    proc = _run(tmp_path / "cache", "poll", WAIT="100")
    assert proc.returncode == 3
    assert "fresh machine" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_start_runs_in_the_background_and_poll_packs_its_results(tmp_path: Path) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    out.mkdir()
    (cache / "sweep-ik").mkdir(parents=True)
    started = _run(cache, "start", "truth")  # no sweep rows: the stage fails, the pipeline still ends
    assert started.returncode == 0 and "started in the background: truth" in started.stdout
    polled = _run(cache, "poll", WAIT="60", OUT=str(out))
    assert polled.returncode == 0, polled.stdout + polled.stderr
    assert "=== truth" in polled.stdout and "=== done" in polled.stdout
    with tarfile.open(out / "ik-vs-mainline.tgz") as tar:
        names = tar.getnames()
    assert "pipeline.log" in names and "sweep-ik" in names
