"""Run a client command and charge it the CPU time of its whole process tree.

Why two measures: `wait4` returns the CPU of the child plus every descendant it reaped (start-up,
imports, worker processes: what the tool costs in total), and a 20 Hz psutil poll of the live
tree gives the CPU spent inside a time window (what the tool steals from the server while the
server is under load). Descendants still alive after the child exits are reported and killed.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil


@dataclass
class Measured:
    returncode: int
    wall_s: float
    cpu_s: float  # user + system of the child and its reaped descendants (wait4)
    samples: list[tuple[float, dict[int, float]]] = field(default_factory=list)  # (time.time(), pid->cpu)
    orphans: int = 0
    max_procs: int = 0

    def cpu_between(self, t0: float, t1: float) -> float:
        """CPU seconds the tree used between wall-clock times t0 and t1 (from the poll)."""
        def at(t: float) -> dict[int, float]:
            last: dict[int, float] = {}
            for ts, cpu in self.samples:
                if ts > t:
                    break
                last = cpu
            return last

        a, b = at(t0), at(t1)
        return sum(v - a.get(pid, 0.0) for pid, v in b.items())


def _tree_cpu(root: psutil.Process) -> dict[int, float]:
    out: dict[int, float] = {}
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return out
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.Error:
            continue
    return out


def run_measured(argv: list[str], env: dict[str, str], log: Path, timeout_s: float,
                 cwd: Path | None = None) -> Measured:
    """Run `argv` (stdout+stderr to `log`), polling its tree's CPU until it exits."""
    with log.open("wb") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=cwd, start_new_session=True)
    root = psutil.Process(proc.pid)
    samples: list[tuple[float, dict[int, float]]] = []
    seen: set[int] = set()
    stop = threading.Event()
    max_procs = 0

    def poll() -> None:
        nonlocal max_procs
        while not stop.is_set():
            cpu = _tree_cpu(root)
            if cpu:
                samples.append((time.time(), cpu))
                seen.update(cpu)
                max_procs = max(max_procs, len(cpu))
            stop.wait(0.05)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    deadline = t0 + timeout_s
    status = None
    while status is None:
        pid, status_, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status = status_
            break
        if time.monotonic() > deadline:
            os.killpg(proc.pid, 9)
        time.sleep(0.02)
    wall = time.monotonic() - t0
    stop.set()
    th.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    orphans = 0
    for pid in seen - {proc.pid}:
        try:
            p = psutil.Process(pid)
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                orphans += 1
                p.kill()
        except psutil.Error:
            continue
    return Measured(proc.returncode, wall, ru.ru_utime + ru.ru_stime, samples, orphans, max_procs)
