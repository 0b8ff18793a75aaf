"""Read a GGUF model's ``general.architecture`` and total size ON the host, with only python3.

Why not the ``gguf`` package: the workstation has no project venv (and the GPU machine no pip), and
a 281 GB model must not be copied to the controller to be checked. The snippet reads the header
only and sums the shards of a split model (``name-00001-of-00005.gguf``).
"""

from __future__ import annotations

import inspect
import json
import shlex
from typing import Any

from pyinfra.api import FactBase

from omni import gguf_files

# Prints one JSON line: {"exists", "files", "missing", "total_bytes", "architecture", "error"}.
# The shard rule is omni.gguf_files' own source, shipped ahead of this probe (one home, no copy).
_PROBE = r"""
import json, struct, sys
path = sys.argv[1]
present, missing = present_shards(path)
out = {"exists": bool(present) and os.path.isfile(path), "files": present, "missing": missing,
       "total_bytes": sum(os.path.getsize(p) for p in present), "architecture": None, "error": None}
SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
def skip(f, vtype):
    if vtype in SIZES: f.read(SIZES[vtype]); return
    if vtype == 8: (n,) = struct.unpack("<Q", f.read(8)); f.read(n); return
    if vtype == 9:
        (itype, count) = struct.unpack("<IQ", f.read(12))
        for _ in range(count): skip(f, itype)
        return
    raise ValueError(f"unknown GGUF value type {vtype}")
if missing and present:
    out["error"] = f"{len(present)} of {len(present) + len(missing)} shards present"
if out["exists"]:
    try:
        with open(present[0], "rb") as f:
            if f.read(4) != b"GGUF": raise ValueError("not a GGUF file (bad magic)")
            version, tensors, kvs = struct.unpack("<IQQ", f.read(20))
            for _ in range(kvs):
                (n,) = struct.unpack("<Q", f.read(8)); key = f.read(n).decode("utf-8", "replace")
                (vtype,) = struct.unpack("<I", f.read(4))
                if key == "general.architecture" and vtype == 8:
                    (n,) = struct.unpack("<Q", f.read(8)); out["architecture"] = f.read(n).decode(); break
                skip(f, vtype)
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
"""
SNIPPET = inspect.getsource(gguf_files) + _PROBE


def command(path: str) -> str:
    return f"python3 -c {shlex.quote(SNIPPET)} {shlex.quote(path)}"


#: The snippet's keys and the types it prints them in (``total_bytes`` a count, never a bool).
_ANSWER: dict[str, tuple[type, ...]] = {"exists": (bool,), "files": (list,), "missing": (list,),
                                        "total_bytes": (int,), "architecture": (str, type(None)),
                                        "error": (str, type(None))}


def _no_answer(why: str) -> dict[str, Any]:
    return {"exists": None, "files": [], "missing": [], "total_bytes": 0, "architecture": None, "error": why}


def _malformed(value: Any) -> list[str]:
    """The snippet's keys that ``value`` lacks or holds in another type or range."""
    if not isinstance(value, dict):
        return ["not an object"]
    wrong = [key for key, types in _ANSWER.items() if not isinstance(value.get(key), types)
             or (isinstance(value.get(key), bool) and bool not in types)]
    wrong += [key for key in ("files", "missing") if key not in wrong
              and not all(isinstance(item, str) for item in value[key])]
    return wrong or (["total_bytes"] if value["total_bytes"] < 0 else [])


def parse(lines: list[str]) -> dict[str, Any]:
    """The snippet's JSON, or an ``error`` naming why there is none (no python3, no output, an
    answer not of the snippet's shape). Total: callers index and add its fields without checks."""
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except (ValueError, RecursionError):
                break
            wrong = _malformed(value)
            if wrong:
                return _no_answer(f"the model probe's answer is malformed ({', '.join(wrong)}): rerun, "
                                  "and check python3 on the host")
            return value
    return _no_answer("no answer from python3 on the host")


def judge_model(probe: dict[str, Any], size_bytes: int | None, architecture: str | None,
                tolerance: float = 0.0) -> list[str]:
    """Problems with a downloaded model; empty when size and architecture match the inventory."""
    problems = []
    if not probe.get("exists"):
        return ["model file absent"]
    if probe.get("error"):
        problems.append(str(probe["error"]))
    if architecture and probe.get("architecture") != architecture:
        problems.append(f"architecture {probe.get('architecture')!r}, expected {architecture!r}")
    total = probe.get("total_bytes") or 0
    if size_bytes and abs(total - size_bytes) > tolerance * size_bytes:
        problems.append(f"{total} bytes, expected {size_bytes}" + (f" ±{tolerance:.0%}" if tolerance else ""))
    return problems


class GgufProbe(FactBase[list]):
    """The snippet's raw output lines for one model path (parse them with :func:`parse`)."""

    def command(self, path: str) -> str:
        return command(path)

    @staticmethod
    def default() -> list:
        return []

    def process(self, output: list[str]) -> list:
        return output
