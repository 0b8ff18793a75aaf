"""CPU model, topology and AVX-512 support from ``lscpu -J`` or, without lscpu, ``/proc/cpuinfo``.

lscpu sample (util-linux >= 2.38 nests fields under ``children``; older ones are flat)::

    {"lscpu": [{"field": "Model name:", "data": "AMD Ryzen Threadripper PRO 9995WX 96-Cores"},
               {"field": "Socket(s):", "data": "1"}, {"field": "Flags:", "data": "fpu ... avx512f"}]}

Result: ``{"model", "vendor", "family", "model_id", "sockets", "cores", "threads",
"cores_per_socket", "threads_per_core", "numa_nodes", "avx512", "avx512_flags", "amx_flags"}``;
``cores`` are physical cores over all sockets, ``threads`` logical CPUs.
"""

from __future__ import annotations

import json
import re

from .common import ParseError, clean, first_int
from .noise import strip_noise


def _flag_summary(flags: list[str]) -> dict:
    avx512 = sorted(flag for flag in flags if flag.startswith("avx512"))
    return {
        "avx512": "avx512f" in flags,
        "avx512_flags": avx512,
        "avx2": "avx2" in flags,
        "amx_flags": sorted(flag for flag in flags if flag.startswith("amx")),
    }


def _result(fields: dict, flags: list[str]) -> dict:
    sockets, per_socket, per_core = fields["sockets"], fields["cores_per_socket"], fields["threads_per_core"]
    cores = sockets * per_socket if sockets and per_socket else None
    return {
        "model": fields["model"],
        "vendor": fields["vendor"],
        "family": fields["family"],
        "model_id": fields["model_id"],
        "sockets": sockets,
        "cores": cores,
        "threads": fields["threads"] or (cores * per_core if cores and per_core else None),
        "cores_per_socket": per_socket,
        "threads_per_core": per_core,
        "numa_nodes": fields.get("numa_nodes"),
        **_flag_summary(flags),
    }


def _flatten(entries, out: dict[str, str], depth: int = 0) -> None:
    if not isinstance(entries, list) or depth > 8:
        raise ParseError("lscpu JSON entries are not a list of {field, data} objects: is this `lscpu -J`?")
    for entry in entries:
        if not isinstance(entry, dict):
            raise ParseError(f"lscpu JSON entry is a {type(entry).__name__}, not a {{field, data}} object")
        field = str(entry.get("field", "")).rstrip(":").strip()
        if field and field not in out and entry.get("data") is not None:
            out[field] = str(entry["data"])
        _flatten(entry.get("children") or [], out, depth + 1)


def parse_lscpu(output) -> dict:
    text = "\n".join(strip_noise(output))
    start = text.find("{")
    try:
        data = json.loads(text[start:]) if start >= 0 else None
    except json.JSONDecodeError as error:
        raise ParseError(f"lscpu JSON does not parse ({error.msg} at line {error.lineno})") from None
    except RecursionError:
        raise ParseError("lscpu JSON nests too deep to be lscpu output") from None
    if not isinstance(data, dict) or not isinstance(data.get("lscpu"), list):
        raise ParseError("no {\"lscpu\": [...]} object found: is this `lscpu -J` output?")
    raw: dict[str, str] = {}
    _flatten(data["lscpu"], raw)
    fields = {
        "model": clean(raw.get("Model name")),
        "vendor": clean(raw.get("Vendor ID")),
        "family": first_int(raw.get("CPU family")),
        "model_id": first_int(raw.get("Model")),
        "sockets": first_int(raw.get("Socket(s)")),
        "cores_per_socket": first_int(raw.get("Core(s) per socket") or raw.get("Core(s) per cluster")),
        "threads_per_core": first_int(raw.get("Thread(s) per core")),
        "threads": first_int(raw.get("CPU(s)")),
        "numa_nodes": first_int(raw.get("NUMA node(s)")),
    }
    return _result(fields, raw.get("Flags", "").split())


def parse_cpuinfo(output) -> dict:
    processors: list[dict[str, str]] = []
    for line in strip_noise(output):
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        if key == "processor":
            processors.append({})
        if processors:
            processors[-1].setdefault(key, value.strip())
    if not processors:
        raise ParseError("no 'processor : N' entries found: is this /proc/cpuinfo?")
    first = processors[0]
    packages = {proc.get("physical id", "0") for proc in processors}
    cores = len({(proc.get("physical id", "0"), proc.get("core id", str(index)))
                 for index, proc in enumerate(processors)})
    per_socket = first_int(first.get("cpu cores")) or (cores // len(packages))
    fields = {
        "model": clean(first.get("model name")),
        "vendor": clean(first.get("vendor_id")),
        "family": first_int(first.get("cpu family")),
        "model_id": first_int(first.get("model")),
        "sockets": len(packages),
        "cores_per_socket": per_socket,
        "threads_per_core": max(1, len(processors) // (len(packages) * per_socket)) if per_socket else None,
        "threads": len(processors),
        "numa_nodes": None,
    }
    return _result(fields, first.get("flags", "").split())


_NVRM = re.compile(r"^NVRM version:\s*(.*?)\s+(\d+\.\d+(?:\.\d+)?)\s")


def parse_nvidia_version(output) -> dict:
    """``/proc/driver/nvidia/version``: ``{"version", "kernel_module", "open_kernel_module"}``."""
    for line in strip_noise(output):
        match = _NVRM.match(line)
        if match:
            module = match.group(1).strip()
            return {"version": match.group(2), "kernel_module": module,
                    "open_kernel_module": "Open Kernel Module" in module}
    raise ParseError("no 'NVRM version: ...' line found: is this /proc/driver/nvidia/version?")
