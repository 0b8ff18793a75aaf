"""A few seconds of real PCIe traffic to every GPU, and the links' current speed/width meanwhile.

Why: a PCIe link trains down at idle to save power (a Gen5 card at Gen1 is normal), so the link's
*current* generation means something only while data moves; the runbook's CRITICAL fault is a
Gen5 card that stays at Gen3 under load, which the link's *maximum* never shows. The load needs
nothing beyond the driver: Python's ctypes calls the CUDA driver library (``libcuda.so.1``, part
of the driver) to copy a pinned host buffer to each GPU in a loop, while ``nvidia-smi`` samples
``pcie.link.gen.current``/``pcie.link.width.current``; the highest sample per GPU is reported.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from deploys.checks.context import CheckContext

# Runs on the host; prints one JSON line, never a traceback.
_SNIPPET = r"""
import ctypes, json, os, subprocess, sys, threading, time
seconds, size = float(sys.argv[1]), 256 << 20
out = {"load": {}, "samples": {}, "error": None}
stop = threading.Event()
os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
def check(rc, what):
    if rc != 0:
        raise RuntimeError(f"{what} returned CUDA error {rc}")
def copy_loop(cuda, ordinal):
    try:
        dev, ctx, dptr, host = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_uint64(), ctypes.c_void_p()
        check(cuda.cuDeviceGet(ctypes.byref(dev), ordinal), "cuDeviceGet")
        check(cuda.cuCtxCreate_v2(ctypes.byref(ctx), 0, dev), "cuCtxCreate")
        check(cuda.cuMemAlloc_v2(ctypes.byref(dptr), ctypes.c_size_t(size)), "cuMemAlloc")
        check(cuda.cuMemAllocHost_v2(ctypes.byref(host), ctypes.c_size_t(size)), "cuMemAllocHost")
        copies = 0
        while not stop.is_set():
            check(cuda.cuMemcpyHtoD_v2(dptr, host, ctypes.c_size_t(size)), "cuMemcpyHtoD")
            copies += 1
        cuda.cuMemFreeHost(host); cuda.cuMemFree_v2(dptr); cuda.cuCtxDestroy_v2(ctx)
        out["load"][str(ordinal)] = f"{copies * size / 2**30:.0f} GiB copied"
    except Exception as e:
        out["load"][str(ordinal)] = f"error: {e}"
try:
    cuda = ctypes.CDLL("libcuda.so.1")
    cuda.cuMemcpyHtoD_v2.argtypes = [ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t]
    check(cuda.cuInit(0), "cuInit")
    count = ctypes.c_int()
    check(cuda.cuDeviceGetCount(ctypes.byref(count)), "cuDeviceGetCount")
    threads = [threading.Thread(target=copy_loop, args=(cuda, i), daemon=True) for i in range(count.value)]
    for t in threads:
        t.start()
    time.sleep(min(1.0, seconds / 3))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        q = subprocess.run(["nvidia-smi", "--query-gpu=pci.bus_id,pcie.link.gen.current,"
                            "pcie.link.width.current", "--format=csv,noheader,nounits"],
                           capture_output=True, text=True, timeout=30)
        for line in q.stdout.splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                best = out["samples"].setdefault(parts[0].upper(), {"gen": 0, "width": 0})
                best["gen"] = max(best["gen"], int(parts[1]))
                best["width"] = max(best["width"], int(parts[2]))
        time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(30)
except Exception as e:
    stop.set()
    out["error"] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
"""


def sample_links_under_load(ctx: CheckContext, seconds: float) -> dict[str, Any]:
    """``{"load": {ordinal: note}, "samples": {BUS_ID: {"gen", "width"}}, "error": str | None}``."""
    probe = ctx.run(f"python3 -c {shlex.quote(_SNIPPET)} {seconds:g}", timeout=seconds + 60)
    try:
        value = json.loads(probe.lines[-1])
    except (IndexError, ValueError):
        return {"load": {}, "samples": {}, "error": probe.stderr.strip()[-200:] or "no python3 on the host"}
    return value if isinstance(value, dict) else {"load": {}, "samples": {}, "error": "unreadable output"}


def load_failed(result: dict[str, Any]) -> str | None:
    """Why no load ran (None when every GPU copied data)."""
    if result.get("error"):
        return str(result["error"])
    errors = [f"GPU {k}: {v}" for k, v in (result.get("load") or {}).items() if str(v).startswith("error")]
    if errors or not result.get("load"):
        return "; ".join(errors) or "no GPU took the load"
    return None
