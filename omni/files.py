"""Atomic file writes: a reader (or a crash, or ``kill -9``) sees the old file or the new one, never half.

Why one helper: markers, records, manifests, reports and sweep rows are all read back by a later
run that trusts them; the temp file lives beside the target (same filesystem, so ``os.replace`` is
atomic), is fsynced before the rename and removed if anything fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` (parents created) through a fsynced temp file and ``os.replace``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str, *, mode: int = 0o644,
                      encoding: str = "utf-8") -> Path:
    """:func:`atomic_write_bytes` for text."""
    return atomic_write_bytes(path, text.encode(encoding), mode=mode)


def atomic_write_json(path: str | os.PathLike[str], document: Any, *, mode: int = 0o644,
                      sort_keys: bool = False, default: Any = None) -> Path:
    """``document`` as indented JSON with a trailing newline, written atomically."""
    text = json.dumps(document, indent=2, sort_keys=sort_keys, default=default) + "\n"
    return atomic_write_text(path, text, mode=mode)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; some filesystems cannot open a directory, which is fine."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
