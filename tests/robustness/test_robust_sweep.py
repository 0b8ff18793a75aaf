"""Issue 19, classes 1-3: a sweep directory has one writer, a fixed port measures only our server,
and the OOM guard cannot be configured off or die while the sweep reports ok. Real xllamacpp
servers on loopback, real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from bench.engines.base import Launch
from bench.memory import Gpus, Sampler
from bench.runrow import run_status
from bench.server import ServerProcess
from bench.store import SweepStore
from tests.bench.benchutil import run_bench, write_spec
from tests.bench.test_sweep import rows, spec_text, start_sweep

pytestmark = pytest.mark.slow


def test_second_sweep_into_a_live_sweep_dir_exits_at_once_and_kills_nothing(tiny_model: Path, tmp_path: Path):
    spec = write_spec(tmp_path / "s.toml", spec_text(tiny_model, '"-np" = [1]', requests=5000))
    out = tmp_path / "sweep"
    first = start_sweep(spec, out, quiet=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (out / "server.pid").is_file():
            time.sleep(0.05)
        server = json.loads((out / "server.pid").read_text())["pid"]
        started = time.monotonic()
        second = run_bench("sweep", str(spec), "--out", str(out), "--no-report", timeout=60)
        elapsed = time.monotonic() - started
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and str(out) in lines[0] and f"pid {first.pid}" in lines[0], second.stderr
        assert elapsed < 30  # no facts, no launch: it stops before any work (interpreter start aside)
        assert psutil.pid_exists(server) and psutil.Process(server).status() != psutil.STATUS_ZOMBIE
        assert first.poll() is None  # the first sweep runs on
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
    with SweepStore(out).locked():  # the lock went with its holder: a resume may take it
        pass


def test_fixed_port_taken_by_another_server_fails_the_launch(tiny_model: Path, tmp_path: Path, start_server):
    other = start_server(tiny_model, "-c", "512")
    port = int(other.rsplit(":", 1)[1])
    text = spec_text(tiny_model, '"-np" = [1]')
    text = text.replace("health_timeout_s = 60", f"health_timeout_s = 60\nport = {port}")
    spec = write_spec(tmp_path / "s.toml", text)
    out = tmp_path / "sweep"
    proc = run_bench("sweep", str(spec), "--out", str(out), "--no-report")
    # every launch failed, so the sweep exits non-zero (issue 20) with the cause on the terminal
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "every launch failed" in proc.stderr
    table = rows(out)
    assert table and {r["status"] for r in table} == {"launch-failed"}
    assert f"port {port} on 127.0.0.1 is already in use" in table[0]["error_reason"]
    assert all(r["decode_tps"] == "" for r in table)  # nothing of the other server was measured


def test_healthy_answer_from_someone_else_is_not_our_server(tmp_path: Path):
    """The race the pre-launch check cannot close: our server starts, another answers the port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    srv = ServerProcess(Launch(argv=["sleep", "30"], env={}, prefix=[], base_url=f"http://127.0.0.1:{port}"),
                        tmp_path / "log")
    srv.proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        ok, reason = srv._answered_by_us()
    finally:
        srv.proc.kill()
        srv.proc.wait()
        listener.close()
    assert not ok and f"port {port}" in reason and str(os.getpid()) in reason and "not our server" in reason


@pytest.mark.parametrize("memory,needle", [("interval_s = inf", "interval_s"),
                                           ("interval_s = 600", "interval_s"),
                                           ('oom_floor = "0%"', "turns the OOM guard off"),
                                           ('oom_floor = "0B"', "turns the OOM guard off"),
                                           ('oom_floor = "100%"', "turns the OOM guard off")])
def test_oom_guard_settings_that_switch_it_off_are_refused(tiny_model: Path, tmp_path: Path, memory: str,
                                                            needle: str):
    text = spec_text(tiny_model, '"-np" = [1]').replace("interval_s = 0.1\n", "") + memory + "\n"
    proc = run_bench("sweep", str(write_spec(tmp_path / "s.toml", text)), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


class _FailingGpus(Gpus):
    """NVML failing mid-run, as when a GPU falls off the bus (no driver here to make it happen)."""

    def __init__(self) -> None:
        super().__init__(enabled=False)
        self.handles = [object()]

    def used(self) -> list[int]:
        raise RuntimeError("NVML_ERROR_GPU_IS_LOST")


def test_a_dying_sampler_kills_the_server_and_marks_the_rows():
    server = subprocess.Popen(["sleep", "60"], start_new_session=True)
    stopped = threading.Event()
    sampler = Sampler(server.pid, server.pid, 0.05, 0, _FailingGpus(), on_breach=lambda _a: stopped.set())
    sampler.start()
    try:
        assert stopped.wait(10)
        assert server.wait(timeout=10) == -signal.SIGKILL
    finally:
        server.kill()
        sampler.stop()
    assert "NVML_ERROR_GPU_IS_LOST" in sampler.failed and sampler.breached_at is not None
    status, reason = run_status([], True, None, 0, None, sampler.failed)
    assert status == "oom-guard" and "sampler stopped" in reason and "not measured" in reason
