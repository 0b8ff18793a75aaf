"""Memory sampling during a server's life, and the OOM guard.

Why a guard: a user on the reference box froze the whole host by loading a model that did not fit;
the kernel's OOM killer arrives too late on a 384 GB box with page cache. We watch MemAvailable
and SIGKILL the server's process group as soon as it drops below a floor, then record `oom-guard`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import mmap
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
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


MODEL_SUFFIX = ".gguf"  # file-backed mappings counted as the model's pages (split GGUFs included)


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def model_mappings(pid: int, suffix: str = MODEL_SUFFIX) -> dict[str, int]:
    """{model file: resident bytes the server maps} from /proc/PID/smaps of the process tree.

    Why smaps and not RSS: RSS hides which pages are the model; a placement that keeps experts in
    host RAM through mmap shows them here. A file mapped by several processes of the tree counts
    once (its largest mapping), so a wrapper process does not double it.
    """
    out: dict[str, int] = {}
    for proc in _tree(pid):
        per_file: dict[str, int] = {}
        current = None
        try:
            with open(f"/proc/{proc.pid}/smaps", encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    head = line.split(maxsplit=5)
                    if len(head) >= 5 and "-" in head[0] and ":" not in head[0]:  # a mapping header
                        path = head[5].strip() if len(head) == 6 else ""
                        current = path if path.endswith(suffix) else None
                    elif current is not None and line.startswith("Rss:"):
                        per_file[current] = per_file.get(current, 0) + int(line.split()[1]) * 1024
        except OSError:  # gone, or not ours to read
            continue
        for path, value in per_file.items():
            out[path] = max(out.get(path, 0), value)
    return out


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                       ctypes.c_long)
_libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
_libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
_MAP_FAILED = ctypes.c_void_p(-1).value


def page_cache_bytes(path: str | Path) -> int | None:
    """Bytes of `path` resident in the page cache (mincore, as fincore does); None when unreadable.

    Mapping a file to ask mincore reads nothing from disk and moves no page into the cache.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return 0
        addr = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, _MAP_FAILED):
            return None
        try:
            page = mmap.PAGESIZE
            vec = (ctypes.c_ubyte * ((size + page - 1) // page))()
            if _libc.mincore(addr, size, vec) != 0:
                return None
            resident = int(np.count_nonzero(np.frombuffer(vec, dtype=np.uint8) & 1))  # bit 0: in memory
            return min(resident * page, size)
        finally:
            _libc.munmap(addr, size)
    finally:
        os.close(fd)


def model_cached(paths: Iterable[str]) -> int:
    return sum(page_cache_bytes(p) or 0 for p in paths)


def host_sample() -> tuple[int, int]:
    vm = psutil.virtual_memory()
    return int(vm.available), int(getattr(vm, "cached", 0) + getattr(vm, "buffers", 0))


class Sampler(threading.Thread):
    """Samples every `interval_s` while a server runs; fires the guard once below `floor_bytes`.

    The model's mapped and cached pages cost a walk of the server's page tables (smaps) and of the
    file's cache pages (mincore), so they are refreshed at most every `model_every_s` and the last
    value is carried in between.
    """

    model_every_s = 1.0

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
        self.failed = ""  # why the sampler stopped on its own (then the server was killed too)
        self._halt = threading.Event()
        self.t0 = time.monotonic()
        self._model_at = -1e9
        self._model: tuple[int | None, int | None] = (None, None)
        self._lock = threading.Lock()  # sample() runs from the loop and this thread

    def _model_pages(self, force: bool) -> tuple[int | None, int | None]:
        now = time.monotonic()
        if force or now - self._model_at >= self.model_every_s:
            self._model_at = now
            maps = model_mappings(self.pid)
            self._model = (sum(maps.values()), model_cached(maps)) if maps else (0, 0)
        return self._model

    def sample(self, force: bool = True) -> MemSample:
        """One sample now; the loop's samples (cell start and end) refresh the model's pages."""
        with self._lock:
            return self._sample(force)

    def _sample(self, force: bool) -> MemSample:
        avail, cached = host_sample()
        mapped, in_cache = self._model_pages(force)
        s = MemSample(
            t=round(time.monotonic() - self.t0, 3), host_available=avail, host_cached=cached,
            server_rss=tree_rss(self.pid), model_mapped=mapped, model_cached=in_cache,
            gpu_used=self.gpus.used() if self.gpus.handles else [],
        )
        self.samples.append(s)
        return s

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                s = self.sample(force=False)
                if self.breached_at is None and s.host_available < self.floor_bytes:
                    self.breached_at, self.breach_available = s.t, s.host_available
                    kill_group(self.pgid, signal.SIGKILL)
                    if self.on_breach:
                        self.on_breach(s.host_available)
                self._halt.wait(self.interval_s)
        except Exception as err:  # a guard that stops watching must not let the server run on
            self.failed = f"{type(err).__name__}: {err}"
            self.breached_at = time.monotonic() - self.t0
            kill_group(self.pgid, signal.SIGKILL)
            if self.on_breach:
                self.on_breach(-1)

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
