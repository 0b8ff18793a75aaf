"""Memory sampling during a server's life, and the OOM guard.

Why a guard: a user on the reference box froze the whole host by loading a model that did not fit;
the kernel's OOM killer arrives too late on a 384 GB box with page cache. We watch MemAvailable
and SIGKILL the server's process group as soon as it drops below a floor, then record `oom-guard`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable

import psutil

from bench.schema import MemSample


class Gpus:
    """Per-GPU used/total memory through NVML; empty when there is no driver (not an error)."""

    def __init__(self, enabled: bool = True) -> None:
        self.handles: list = []
        self.error = ""
        if not enabled:
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception as err:  # NVMLError_LibraryNotFound/DriverNotLoaded: no GPU here
            self.error = f"{type(err).__name__}: {err}"

    def used(self) -> list[int]:
        return [int(self._nvml.nvmlDeviceGetMemoryInfo(h).used) for h in self.handles]

    def total(self) -> list[int]:
        return [int(self._nvml.nvmlDeviceGetMemoryInfo(h).total) for h in self.handles]

    def names(self) -> list[str]:
        out = []
        for h in self.handles:
            name = self._nvml.nvmlDeviceGetName(h)
            out.append(name.decode() if isinstance(name, bytes) else str(name))
        return out


def tree_rss(pid: int) -> int:
    """RSS of a process and all its descendants (0 when gone)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def host_sample() -> tuple[int, int]:
    vm = psutil.virtual_memory()
    return int(vm.available), int(getattr(vm, "cached", 0) + getattr(vm, "buffers", 0))


class Sampler(threading.Thread):
    """Samples every `interval_s` while a server runs; fires the guard once below `floor_bytes`."""

    def __init__(self, pid: int, pgid: int, interval_s: float, floor_bytes: int, gpus: Gpus,
                 on_breach: Callable[[int], None] | None = None) -> None:
        super().__init__(daemon=True, name="omni-mem-sampler")
        self.pid, self.pgid = pid, pgid
        self.interval_s = interval_s
        self.floor_bytes = floor_bytes
        self.gpus = gpus
        self.on_breach = on_breach
        self.samples: list[MemSample] = []
        self.breached_at: float | None = None
        self.breach_available: int | None = None
        self._halt = threading.Event()
        self.t0 = time.monotonic()

    def sample(self) -> MemSample:
        avail, cached = host_sample()
        s = MemSample(
            t=round(time.monotonic() - self.t0, 3), host_available=avail, host_cached=cached,
            server_rss=tree_rss(self.pid), gpu_used=self.gpus.used() if self.gpus.handles else [],
        )
        self.samples.append(s)
        return s

    def run(self) -> None:
        while not self._halt.is_set():
            s = self.sample()
            if self.breached_at is None and s.host_available < self.floor_bytes:
                self.breached_at, self.breach_available = s.t, s.host_available
                kill_group(self.pgid, signal.SIGKILL)
                if self.on_breach:
                    self.on_breach(s.host_available)
            self._halt.wait(self.interval_s)

    def mark(self) -> int:
        return len(self.samples)

    def since(self, mark: int) -> list[MemSample]:
        return list(self.samples[mark:])

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def kill_group(pgid: int, sig: int) -> None:
    if pgid <= 1:  # 0 would signal our own group
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_released(pgid: int, baseline_available: int, tolerance: int, timeout_s: float,
                  gpus: Gpus, gpu_baseline: list[int]) -> tuple[bool, str]:
    """Wait until the server's processes are gone and host/GPU memory is back near its baseline."""
    deadline = time.monotonic() + timeout_s
    detail = ""
    while True:
        alive = [p.pid for p in psutil.process_iter(["pid"]) if _pgid(p.pid) == pgid]
        avail, _ = host_sample()
        gpu_now = gpus.used() if gpus.handles else []
        gpu_ok = all(now <= base + 512 * 2**20 for now, base in zip(gpu_now, gpu_baseline, strict=False))
        host_ok = avail >= baseline_available - tolerance
        if not alive and host_ok and gpu_ok:
            return True, ""
        detail = (
            f"{len(alive)} server processes left, MemAvailable {avail >> 20} MiB vs "
            f"{baseline_available >> 20} MiB before launch, GPU used {[g >> 20 for g in gpu_now]} MiB"
        )
        if time.monotonic() > deadline:
            return False, detail
        time.sleep(0.2)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None
