"""The bench CLI as a user meets it: --help describes every option, --version, and a --dry-run that
plans (launches, estimated time, warnings) instead of stopping for what only the target host has."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import pytest

from bench.cli import parser
from tests.bench.benchutil import run_bench, write_spec

SPEC = """
name = "dry"
engine = "xllamacpp"
[server]
model = "{model}"
args = ["-c", "1024", "--no-warmup", "-t", "1"]
[axes]
"-np" = [1, 2]
numa = ["none", "interleave=all"]
[workload]
input_tokens = [16]
output_tokens = [8]
concurrency = [1]
requests = 2
warmup = 0
[memory]
interval_s = 0.05
"""


def _actions(p: argparse.ArgumentParser, where: str = "bench"):
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{where} {name}")
        else:
            yield where, action


def test_every_option_of_every_command_is_described():
    missing = [f"{where} {a.option_strings or a.dest}" for where, a in _actions(parser())
               if not a.help or a.help == argparse.SUPPRESS]
    assert missing == []


def test_version_and_help_exit_0():
    proc = run_bench("--version")
    assert proc.returncode == 0 and re.fullmatch(r"protocol-omni bench \S+\n", proc.stdout), proc.stdout
    proc = run_bench("sweep", "--help")
    assert proc.returncode == 0 and "--dry-run" in proc.stdout and "estimated time" in proc.stdout


def test_dry_run_warns_about_a_missing_numactl_instead_of_stopping(tmp_path: Path):
    """A spec meant for another host: numactl absent here is a warning; the plan is still printed."""
    spec = write_spec(tmp_path / "s.toml", SPEC.replace("{model}", str(tmp_path / "absent.gguf")))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(sys.executable, bin_dir / "python3")
    proc = run_bench("sweep", str(spec), "--dry-run", cwd=tmp_path, env={"PATH": str(bin_dir)})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count("argv:   ") == 4 and "numactl --interleave=all" in out
    assert "warning (a real run on this host would stop here): numa 'interleave=all' needs numactl" in out
    assert "does not exist" in out  # the model lives on the target host
    assert "estimated time: unknown until measured" in out and "at most" in out


@pytest.mark.slow
def test_dry_run_estimates_from_an_earlier_sweep_of_the_same_spec(tiny_model: Path, tmp_path: Path):
    spec = write_spec(tmp_path / "s.toml", SPEC.replace("{model}", str(tiny_model)).replace(
        'numa = ["none", "interleave=all"]\n', ""))
    proc = run_bench("sweep", str(spec), "--out", str(tmp_path / "reports" / "first"), "--no-report",
                     cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_bench("sweep", str(spec), "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("estimated time:"))
    assert re.match(r"estimated time: \d+ s at most \(launch \d+ s each, cells from [0-9.]+ ms per token",
                    line), line
    assert "measured in reports/first (the same spec)" in line


def test_dry_run_estimate_counts_every_shard_of_a_split_model(tmp_path: Path):
    """The load-time guess reads all shards (omni.gguf_files), not the first one's size only."""
    shards = [tmp_path / f"m-{i:05d}-of-00003.gguf" for i in (1, 2, 3)]
    for s in shards:  # sparse 40 GB files: sizes without disk use
        with s.open("wb") as f:
            f.truncate(40 * 10**9)
    spec = write_spec(tmp_path / "s.toml", SPEC.replace("{model}", str(shards[0])).replace(
        'numa = ["none", "interleave=all"]\n', ""))
    proc = run_bench("sweep", str(spec), "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("estimated time:"))
    from bench.progress import human_s

    assert f"{human_s(5.0 + 120e9 / 2e9)} per launch" in line, line  # 3 x 40 GB at 2 GB/s, + 5 s start
