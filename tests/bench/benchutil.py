"""Helpers for the bench tests (a uniquely named module: `conftest` names collide across folders)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from bench.genmodel.shape import ModelShape

TINY = ModelShape(n_embd=128, n_layer=2, n_ff=256, n_head=4, n_head_kv=2, n_vocab=1024)
# decodes at a few hundred tokens/s on one thread: token times are meaningful, tests stay short
SMALL = ModelShape(n_embd=384, n_layer=4, n_ff=1024, n_head=6, n_head_kv=2, n_vocab=2048)


def write_spec(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def run_bench(*args: str, cwd: Path | None = None, timeout: float = 240,
              env: dict[str, str] | None = None, module: str = "bench") -> subprocess.CompletedProcess[str]:
    """`python -m bench ARGS` (or another of our modules) as a user runs it."""
    repo = Path(__file__).resolve().parents[2]
    full_env = {**os.environ, "PYTHONPATH": str(repo), **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd or repo, capture_output=True,
                          text=True, timeout=timeout, env=full_env)


def real_server_spec(name: str, engine: str, binary: Path | str, model: Path, cases: list[str]) -> str:
    """The two-config sweep the real-binary tests run: one `args.case` axis, 24 in / 12 out, c=1,2."""
    return f"""
name = "{name}"
engine = "{engine}"
[server]
binary = "{binary}"
model = "{model}"
args = ["--no-warmup", "-t", "1"]
health_timeout_s = 60
stop_timeout_s = 10
[axes]
"args.case" = {json.dumps(cases)}
[workload]
input_tokens = [24]
output_tokens = [12]
concurrency = [1, 2]
requests = 2
warmup = 1
[memory]
interval_s = 0.1
release_timeout_s = 20
"""


def rows_by_case(sweep: Path) -> dict[str, list[dict[str, str]]]:
    """results.csv rows grouped by their `args.case` axis value."""
    with (sweep / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    by_case: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_case.setdefault(r["axis.args.case"], []).append(r)
    return by_case
