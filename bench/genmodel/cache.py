"""The model cache: generated models live under one folder, named by their shape's content hash.

Why: a sweep, a test or a recipe asks for a shape and gets the same file every time, generated
once; an interrupted split (a shard missing) is written again instead of loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.genmodel.shape import ModelShape
from bench.genmodel.write import shard_glob, write_model
from omni import gguf_files


def cache_dir() -> Path:
    """Where generated models live (override with OMNI_MODEL_CACHE)."""
    env = os.environ.get("OMNI_MODEL_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "protocol-omni" / "models"


def model_file(shape: ModelShape, directory: Path | None = None) -> Path:
    """Where the cached model for `shape` is (its first shard when split), generated or not."""
    path = (directory or cache_dir()) / f"{shape.file_stem}.gguf"
    if shape.split_max_size:
        shards = shard_glob(path)
        return shards[0] if shards else path.with_name(f"{path.stem}-00001-of-NNNNN.gguf")
    return path


def ensure_model(shape: ModelShape, directory: Path | None = None) -> Path:
    """Path of the cached model for `shape` (first shard when split), generating it when absent."""
    path = model_file(shape, directory)
    if path.exists():
        try:
            gguf_files.shard_paths(str(path))
            return path
        except gguf_files.ShardError:
            pass  # an interrupted split: write it again
    return write_model(shape, (directory or cache_dir()) / f"{shape.file_stem}.gguf")
