"""Filesystem facts the deploys read before they copy anything: which paths exist, free space.

Both answer with exit 0 and parse with pure functions, so a missing path or tool is data.
"""

from __future__ import annotations

import re
import shlex

from pyinfra.api import FactBase


def parse_paths_present(output: list[str]) -> dict[str, bool]:
    """``present /etc/x`` / ``absent /etc/y`` lines -> ``{path: exists}``."""
    return {line.split(" ", 1)[1]: line.startswith("present ") for line in output if " " in line}


class PathsPresent(FactBase[dict]):
    """Which of the given absolute paths exist on the host: ``{path: bool}``."""

    def command(self, paths: list[str]) -> str:
        quoted = [shlex.quote(p) for p in paths]
        return "; ".join(f"test -e {p} && echo present {p} || echo absent {p}" for p in quoted) or "true"

    def process(self, output: list[str]) -> dict:
        return parse_paths_present(output)


def parse_space(output: list[str]) -> dict:
    """``free=BYTES`` and ``hf=PATH`` lines -> ``{"free": int | None, "hf": str | None}``."""
    values = dict(line.split("=", 1) for line in output if "=" in line)
    free = values.get("free", "").strip()
    # ASCII digits only, and few: str.isdigit() takes '²' and int() refuses over 4300 digits
    return {"free": int(free) if re.fullmatch(r"[0-9]{1,20}", free) else None, "hf": values.get("hf") or None}


class SpaceAt(FactBase[dict]):
    """Free bytes on the filesystem holding ``path`` (or its nearest existing parent) and whether the
    ``hf`` CLI is on PATH. Bytes already downloaded come from the GGUF probe (all shards present)."""

    def command(self, path: str, hf: str = "hf") -> str:
        quoted = shlex.quote(path)
        return (
            f'p={quoted}; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; '
            f'echo free=$(df -B1 --output=avail "$p" | tail -1); '
            f"echo hf=$(command -v {shlex.quote(hf)} || true)"
        )

    @staticmethod
    def default() -> dict:
        return {"free": None, "hf": None}

    def process(self, output: list[str]) -> dict:
        return parse_space(output)
