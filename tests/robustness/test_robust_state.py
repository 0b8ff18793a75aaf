"""Issue 19, class 5: corrupt sweep state is refused with one line naming the file and the recovery
(which works), and a full disk while generating a model leaves no partial model."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bench.genmodel.write import GenModelError, write_model
from tests.bench.benchutil import TINY, run_bench, write_spec
from tests.bench.test_sweep import rows, spec_text

pytestmark = pytest.mark.slow


def test_corrupt_sweep_json_is_refused_and_the_named_recovery_works(tiny_model: Path, tmp_path: Path):
    spec = write_spec(tmp_path / "s.toml", spec_text(tiny_model, '"-np" = [1]'))
    out = tmp_path / "sweep"
    assert run_bench("sweep", str(spec), "--out", str(out), "--no-report").returncode == 0
    before = {(r["config_id"], r["cell_id"], r["started_at"]) for r in rows(out)}
    text = (out / "sweep.json").read_text()
    (out / "sweep.json").write_text(text[: len(text) // 2])  # torn
    proc = run_bench("sweep", "--resume", str(out), "--no-report")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert f"{out / 'sweep.json'} is corrupt" in proc.stderr and "move it away" in proc.stderr
    (out / "sweep.json").rename(tmp_path / "sweep.json.bad")  # the recovery the line names
    again = run_bench("sweep", str(spec), "--out", str(out), "--no-report")
    assert again.returncode == 0, again.stderr[-2000:]
    assert {(r["config_id"], r["cell_id"], r["started_at"]) for r in rows(out)} == before  # nothing re-run


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 512 KiB tmpfs (root only): a real ENOSPC, not a simulated one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a tiny tmpfs")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_in_genmodel_leaves_no_partial_model(tiny_disk: Path):
    with pytest.raises(GenModelError, match="nothing partial was kept") as info:
        write_model(TINY, tiny_disk / "m.gguf")
    assert "\n" not in str(info.value)
    assert list(tiny_disk.iterdir()) == []
    proc = run_bench("genmodel", "--n-vocab", "1024", "--out", str(tiny_disk / "m.gguf"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert list(tiny_disk.iterdir()) == []
