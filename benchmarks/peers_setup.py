"""The peers' own virtual environment and a Hugging Face tokenizer converted from the GGUF vocab.

Why a separate venv: GuideLLM and AIPerf pull torch, transformers and ~150 packages we do not want
in the project's runtime dependencies. torch is installed first at the version whose CPU wheel is
on disk here, so neither peer drags in a multi-GB CUDA build. The tokenizer is written as a local
Hugging Face cache snapshot, because AIPerf in offline mode only resolves repo ids from the cache.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

PEER_PINS = ["guidellm==0.8.1", "aiperf==0.13.0", "transformers==5.24.0", "gguf==0.19.0",
             "sentencepiece==0.2.3"]
TORCH_PIN = "torch==2.13.0"  # the CPU wheel provided on this machine kind

_CONVERT = """
import sys
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1], gguf_file=sys.argv[2])
tok.save_pretrained(sys.argv[3])
print(len(tok))
"""


def ensure_venv(venv: Path, log: Path) -> None:
    """Create `venv` with the pinned peers unless both entry points are already there."""
    if (venv / "bin" / "guidellm").exists() and (venv / "bin" / "aiperf").exists():
        return
    with log.open("ab") as out:
        def run(*argv: str) -> None:
            if subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                raise SystemExit(f"peers venv: `{' '.join(argv)}` failed; see {log}")

        run(sys.executable, "-m", "venv", str(venv))
        pip = str(venv / "bin" / "pip")
        run(pip, "install", "-q", "--upgrade", "pip")
        run(pip, "install", "-q", TORCH_PIN)
        run(pip, "install", "-q", *PEER_PINS)


def ensure_tokenizer(venv: Path, model: Path, hf_home: Path) -> tuple[str, Path]:
    """(repo id, snapshot dir) of the model's tokenizer inside the HF cache at `hf_home`."""
    key = hashlib.sha256(model.name.encode()).hexdigest()[:40]
    repo = f"omni/{model.stem}"
    base = hf_home / "hub" / f"models--omni--{model.stem}"
    snap = base / "snapshots" / key
    if not (snap / "tokenizer.json").exists():
        snap.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([str(venv / "bin" / "python"), "-c", _CONVERT, str(model.parent), model.name,
                               str(snap)], capture_output=True, text=True,
                              env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
        if proc.returncode != 0:
            raise SystemExit(f"tokenizer conversion failed: {proc.stderr.strip().splitlines()[-1:]}")
        (base / "refs").mkdir(parents=True, exist_ok=True)
        (base / "refs" / "main").write_text(key)
    return repo, snap
