"""5.7 evaluation: the golden set on the host, beside the stack it measures."""

from __future__ import annotations

from pathlib import Path

from pyinfra.api import deploy

from .compose import host_stack, upload
from .config import StackConfig

EVALS = Path(__file__).resolve().parents[2] / "evals"


@deploy("Evaluation golden set")
def evaluation(config: StackConfig | None = None) -> None:
    config = config or host_stack()
    folder = EVALS / config.eval.golden_dir
    cases = {f"golden/{p.name}": p.read_text() for p in sorted(folder.glob("*.jsonl"))}
    upload(config, "eval", cases)
