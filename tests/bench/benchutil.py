"""Helpers for the bench tests (a uniquely named module: `conftest` names collide across folders)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.genmodel import ModelShape

TINY = ModelShape(n_embd=128, n_layer=2, n_ff=256, n_head=4, n_head_kv=2, n_vocab=1024)
# decodes at a few hundred tokens/s on one thread: token times are meaningful, tests stay short
SMALL = ModelShape(n_embd=384, n_layer=4, n_ff=1024, n_head=6, n_head_kv=2, n_vocab=2048)


def write_spec(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def run_bench(*args: str, cwd: Path | None = None, timeout: float = 240,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m bench ARGS` as a user runs it."""
    repo = Path(__file__).resolve().parents[2]
    full_env = {**os.environ, "PYTHONPATH": str(repo), **(env or {})}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd or repo, capture_output=True,
                          text=True, timeout=timeout, env=full_env)
