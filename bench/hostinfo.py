"""Hardware facts and software versions recorded with every sweep (and flattened into its rows).

Why flattened too: results.csv rows must compare across machines without joins (llama-bench
style). The full facts document is kept as facts.json in the sweep dir; the rows carry the facts
a reader compares: CPU, NUMA, DIMM speed, GPUs.
"""

from __future__ import annotations

import json
import platform
import socket
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import psutil

from bench.schema import HOST_PREFIX, VERSION_PREFIX

PACKAGES = ("protocol-omni", "xllamacpp", "openai", "httpx2", "gguf", "numpy", "pydantic", "psutil",
            "nvidia-ml-py", "rich")


def collect_facts() -> tuple[dict[str, Any], str]:
    """(facts document, source). `facts.collect.collect_local()` when it works, else a minimal one."""
    try:
        from facts.collect import collect_local

        return collect_local(), "facts.collect.collect_local"
    except Exception as err:  # facts is another module: a failure there must not stop a sweep
        doc = {
            "host": "@local", "system": {"hostname": socket.gethostname(), "kernel": platform.release()},
            "facts": {"cpu": {"model": platform.processor() or platform.machine(),
                              "threads": psutil.cpu_count(), "cores": psutil.cpu_count(logical=False)}},
            "error": f"facts.collect failed: {type(err).__name__}: {err}",
        }
        return doc, "bench.hostinfo fallback"


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def flatten_facts(doc: dict[str, Any]) -> dict[str, Any]:
    """The host.* columns (names follow the facts document so the report can unflatten them)."""
    f = doc.get("facts") or {}
    out: dict[str, Any] = {
        "system.hostname": _get(doc, "system", "hostname"),
        "system.kernel": _get(doc, "system", "kernel"),
        "mem_total_bytes": psutil.virtual_memory().total,
        "logical_cpus": psutil.cpu_count(),
    }
    for key in ("model", "vendor", "sockets", "cores", "threads", "numa_nodes", "avx512", "avx2"):
        out[f"cpu.{key}"] = _get(f, "cpu", key)
    out["cpu.amx_flags"] = json.dumps(_get(f, "cpu", "amx_flags") or [])
    out["numa.count"] = _get(f, "numa", "count")
    mm = f.get("memory_modules") or {}
    out["memory_modules.total_mib"] = mm.get("total_mib")
    out["memory_modules.slots_total"] = mm.get("slots_total")
    out["memory_modules.slots_empty"] = mm.get("slots_empty")
    mods = mm.get("modules") or []
    out["memory_modules.configured_mts"] = _distinct(m.get("configured_mts") for m in mods)
    out["memory_modules.speed_mts"] = _distinct(m.get("speed_mts") for m in mods)
    out["memory_modules.reason"] = mm.get("reason")
    out["nvidia_driver.version"] = _get(f, "nvidia_driver", "version")
    gpus = _get(f, "nvidia_gpus", "gpus") or []
    for i, g in enumerate(gpus):
        for key in ("name", "memory_total_mib", "pcie_link_gen_current", "pcie_link_width_current"):
            if key in g:
                out[f"nvidia_gpus.gpus.{i}.{key}"] = g[key]
    out["nvidia_gpus.reason"] = _get(f, "nvidia_gpus", "reason")
    return {HOST_PREFIX + k: v for k, v in out.items() if v is not None}


def _distinct(values: Any) -> str | None:
    got = sorted({v for v in values if v is not None})
    return "/".join(str(v) for v in got) if got else None


def versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    """version.* columns: Python, our packages, and the engine's own build strings."""
    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    out |= {k: v for k, v in (extra or {}).items() if v}
    return {VERSION_PREFIX + k: v for k, v in out.items()}
