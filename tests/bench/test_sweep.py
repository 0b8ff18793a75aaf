"""Whole sweeps through `python -m bench sweep` against real xllamacpp servers: results.csv, failing
launches, resume after kill -9, a server dying mid-cell, and the OOM guard against a real hog."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench.progress import PHASES
from bench.schema import FIXED_COLUMNS
from tests.bench.benchutil import run_bench, write_spec

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
REQUIRED = (
    "config_id", "engine", "status", "concurrency", "input_tokens", "output_tokens", "requests", "errors",
    "ttft_ms_p50", "ttft_ms_p90", "itl_ms_p50", "e2e_ms_p50", "decode_tps", "server_decode_tps",
    "prefill_tps", "throughput_tps", "host_mem_peak_bytes", "gpu_mem_peak_bytes", "launch_argv",
    "launch_env", "launch_prefix", "launch_command", "repeat", "decode_tps_ci95_lo", "log_tail_path",
)


def spec_text(model: Path, axes: str, workload: str = "", memory: str = "", requests: int = 4,
              output: int = 16) -> str:
    return f"""
name = "t"
engine = "xllamacpp"
[server]
model = "{model}"
args = ["-c", "2048", "--no-warmup", "-t", "1"]
health_timeout_s = 60
stop_timeout_s = 10
[axes]
{axes}
[workload]
input_tokens = [32]
output_tokens = [{output}]
concurrency = [1, 2]
requests = {requests}
warmup = 1
{workload}
[memory]
interval_s = 0.1
release_timeout_s = 20
{memory}
"""


def start_sweep(spec: Path, out: Path, quiet: bool = False) -> subprocess.Popen[str]:
    """The sweep as a background process (the test kills things under it)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    pipe = subprocess.DEVNULL if quiet else subprocess.PIPE
    argv = [sys.executable, "-m", "bench", "sweep", str(spec), "--out", str(out), "--no-report"]
    return subprocess.Popen(argv, cwd=REPO, env=env, stdout=pipe, stderr=pipe, text=True)


def rows(sweep: Path) -> list[dict[str, str]]:
    with (sweep / "results.csv").open() as f:
        return list(csv.DictReader(f))


def test_sweep_rows_and_a_failing_launch(tiny_model: Path, tmp_path: Path):
    """Two good configs and one whose flag value the server rejects: three launches, no crash."""
    spec = write_spec(tmp_path / "s.toml", spec_text(tiny_model, '"-np" = [1, 2]\n"-ctk" = ["f16", "bogus"]'))
    out = tmp_path / "sweep"
    proc = run_bench("sweep", str(spec), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == str(out / "index.html") and (out / "index.html").is_file()
    table = rows(out)
    assert len(table) == 4 * 2  # 4 configs x 2 cells
    header = list(table[0])
    assert header[: len(FIXED_COLUMNS)] == list(FIXED_COLUMNS)
    assert set(REQUIRED) <= set(header)
    dynamic = {"axis.-np", "axis.-ctk", "version.xllamacpp", "host.cpu.model", "host.mem_total_bytes"}
    assert dynamic <= set(header)
    good = [r for r in table if r["axis.-ctk"] == "f16"]
    bad = [r for r in table if r["axis.-ctk"] == "bogus"]
    assert {r["status"] for r in good} == {"ok"} and {r["status"] for r in bad} == {"launch-failed"}
    for r in good:
        assert int(r["ok_requests"]) == 4 and r["errors"] == "0"
        assert float(r["decode_tps"]) > 0 and float(r["throughput_tps"]) > 0
        assert float(r["input_tokens_measured"]) == 32 and float(r["output_tokens_measured"]) == 16
        assert int(r["host_mem_peak_bytes"]) > 0 and int(r["server_rss_peak_bytes"]) > 10e6
        assert r["gpu_mem_peak_bytes"] == ""  # no GPU here: empty, not zero
        assert json.loads(r["launch_argv"])[1:3] == ["-m", "bench.xllamacpp_server"]
        assert json.loads(r["launch_prefix"]) == [] and r["numa"] == "none"
        assert (out / r["run_json"]).is_file() and (out / r["log_path"]).is_file()
        applied = json.loads(r["applied_config"])
        assert applied["total_slots"] == int(r["axis.-np"])
    for r in bad:
        assert "exited with code 2" in r["error_reason"]
        tail = (out / r["log_tail_path"]).read_text()
        assert "bad value" in tail and "bogus" in tail
    run = json.loads((out / good[0]["run_json"]).read_text())
    assert len(run["requests"]) == 5 and run["requests"][0]["warmup"] is True
    assert len(run["memory"]) >= 1 and run["memory"][0]["server_rss"] > 0
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["status"] == "finished" and meta["launches"] == 4
    assert json.loads((out / "facts.json").read_text())["facts"]["cpu"]
    launch = json.loads((out / "runs" / good[0]["config_id"] / "r0" / "launch.json").read_text())
    assert launch["memory_released"] is True and launch["status"] == "ok"
    assert not (out / "server.pid").exists()


def test_llama_server_engine_runs_the_binary_from_the_spec(tiny_model: Path, tmp_path: Path):
    """engine = "llama-server" with server.binary: here a wrapper exec'ing llama.cpp's server from the
    xllamacpp wheel (no llama-server build on this machine); asked -c 1000 is rounded by llama.cpp."""
    binary = tmp_path / "llama-server"
    binary.write_text(f"#!/bin/sh\nexec {sys.executable} -m bench.xllamacpp_server \"$@\"\n")
    binary.chmod(0o755)
    text = spec_text(tiny_model, '"-c" = [1000]').replace('engine = "xllamacpp"', 'engine = "llama-server"')
    text = text.replace(f'model = "{tiny_model}"', f'model = "{tiny_model}"\nbinary = "{binary}"')
    spec = write_spec(tmp_path / "s.toml", text.replace('"-c", "2048", ', ""))
    out = tmp_path / "sweep"
    proc = run_bench("sweep", str(spec), "--out", str(out), "--no-report")
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = rows(out)
    assert {r["status"] for r in table} == {"ok"} and {r["engine"] for r in table} == {"llama-server"}
    assert json.loads(table[0]["launch_argv"])[0] == str(binary)
    assert table[0]["version.llama-server"].startswith("xllamacpp ")
    assert table[0]["config_mismatches"].startswith("ctx_size asked 1000, server applied ")


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def test_resume_after_kill_9_loses_at_most_the_cell_in_flight(tiny_model: Path, tmp_path: Path):
    text = spec_text(tiny_model, '"-np" = [1, 2, 3]', workload="repeats = 2")
    spec = write_spec(tmp_path / "s.toml", text)
    out = tmp_path / "sweep"
    proc = start_sweep(spec, out, quiet=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.glob("runs/*/r*/in*.json"))) < 3:
        time.sleep(0.05)
    server = [p for p in _children(proc.pid) if "xllamacpp_server" in " ".join(p.cmdline())]
    for p in server:  # frozen, so a server the sweep was stopping cannot exit on its own before the resume
        with contextlib.suppress(psutil.Error):
            p.suspend()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {p: p.read_bytes() for p in out.glob("runs/*/r*/in*.json")}
    assert 3 <= len(before) < 12
    orphan = json.loads((out / "server.pid").read_text()) if (out / "server.pid").exists() else None
    if orphan:  # the killed sweep's server is still up: the resume must take it down
        assert psutil.pid_exists(orphan["pid"])
    resumed = run_bench("sweep", "--resume", str(out), "--no-report")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    if orphan:
        assert "left running by an interrupted sweep" in resumed.stdout
    for p in server:
        assert not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
    for path, data in before.items():
        assert path.read_bytes() == data  # finished cells were not rerun
    table = rows(out)
    keys = [(r["config_id"], r["repeat"], r["cell_id"]) for r in table]
    assert len(keys) == len(set(keys)) == 3 * 2 * 2
    assert {r["status"] for r in table} == {"ok"}
    assert {r["ci_basis"] for r in table} == {"repeats"} and {r["n_repeats"] for r in table} == {"2"}
    again = run_bench("sweep", "--resume", str(out), "--no-report")  # nothing left to launch
    assert again.returncode == 0 and "(0 launches" not in again.stdout
    assert json.loads((out / "sweep.json").read_text())["status"] == "finished"


def test_server_dying_mid_cell_is_a_row_not_a_crash(tiny_model: Path, tmp_path: Path):
    spec = write_spec(tmp_path / "s.toml", spec_text(tiny_model, '"-np" = [1]', requests=400, output=64))
    out = tmp_path / "sweep"
    proc = start_sweep(spec, out)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out / "server.pid").exists():
        time.sleep(0.05)
    time.sleep(1.0)  # let the first cell get going
    pid = json.loads((out / "server.pid").read_text())["pid"]
    os.killpg(pid, signal.SIGKILL)  # a crash: the server vanishes under load
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "every launch failed" in stderr, stderr[-3000:]  # nothing served
    table = {r["cell_id"]: r for r in rows(out)}
    first, second = table["in32-out64-c1"], table["in32-out64-c2"]
    assert first["status"] == "server-died" and "exited with code -9" in first["error_reason"]
    assert int(first["errors"]) > 0 and (out / first["log_tail_path"]).is_file()
    assert second["status"] == "server-died" and second["error_reason"].startswith("not run: ")


def test_oom_guard_kills_the_server_when_a_real_hog_eats_memory(tiny_model: Path, tmp_path: Path):
    """Floor set 2 GiB below what is available now; a 4 GiB hog starts once requests flow.

    The margin is wide on purpose: memory freed by earlier tests' processes can raise
    MemAvailable between writing the spec and starting the hog, and in a VM whose memory is
    ballooned MemAvailable comes back ~1 GiB short for a while after the hog exits (with a 1 GiB
    margin the next launch tripped the guard too, and every launch failed)."""
    floor = psutil.virtual_memory().available - 2 * 2**30
    one_cell_each = ('"-np" = [1, 2]\n[[exclude]]\n"-np" = 1\nconcurrency = 2\n'
                     '[[exclude]]\n"-np" = 2\nconcurrency = 1')
    # enough requests that the cell is still running when the hog has filled its memory (the
    # guard ends it early; 300 finished in ~3 s on a quiet machine, before a 4 GiB hog was ready)
    text = spec_text(tiny_model, one_cell_each, requests=2000, memory=f'oom_floor = "{floor}B"')
    spec = write_spec(tmp_path / "s.toml", text)
    out = tmp_path / "sweep"
    proc = start_sweep(spec, out)
    deadline = time.monotonic() + 60
    log = None
    while time.monotonic() < deadline:
        logs = list(out.glob("logs/*-r0.log"))
        if logs and "launch_slot_" in logs[0].read_text(errors="replace"):
            log = logs[0]
            break
        time.sleep(0.05)
    assert log is not None, "the first server never got a request"
    hog = subprocess.Popen([sys.executable, "-c",
                            "import time; x = bytearray(b'h') * (4 << 30); time.sleep(4)"])
    try:
        _, stderr = proc.communicate(timeout=180)
    finally:
        hog.kill()
        hog.wait()
    assert proc.returncode == 0, stderr[-3000:]
    table = rows(out)
    first = [r for r in table if r["axis.-np"] == "1"]
    later = [r for r in table if r["axis.-np"] == "2"]
    assert {r["status"] for r in first} == {"oom-guard"}
    assert "fell below the floor" in first[0]["error_reason"] and "server killed" in first[0]["error_reason"]
    assert int(first[0]["host_mem_available_min_bytes"]) < floor
    assert int(first[0]["oom_floor_bytes"]) == floor
    assert {r["status"] for r in later} == {"ok"}  # the sweep went on once the memory came back
    launch = json.loads((out / "runs" / first[0]["config_id"] / "r0" / "launch.json").read_text())
    assert launch["status"] == "oom-guard"


def test_resume_latest_finds_the_unfinished_sweep_and_a_changed_spec_is_refused(tiny_model: Path,
                                                                                 tmp_path: Path):
    from bench.store import spec_hash

    text = spec_text(tiny_model, '"-np" = [1]').replace("concurrency = [1, 2]", "concurrency = [1]")
    spec = write_spec(tmp_path / "s.toml", text)
    old = tmp_path / "reports" / "t-old"
    old.mkdir(parents=True)
    (old / "spec.toml").write_text(text)
    (old / "sweep.json").write_text(json.dumps({"sweep_id": "t-old", "spec_hash": spec_hash(text),
                                                "status": "running"}))
    proc = run_bench("sweep", str(spec), "--resume", "--no-report", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "sweep reports/t-old (resumed)" in proc.stdout and len(rows(old)) == 1
    changed = write_spec(tmp_path / "c.toml", text.replace("requests = 4", "requests = 5"))
    proc = run_bench("sweep", str(changed), "--out", str(old), cwd=tmp_path)
    assert proc.returncode == 2 and "holds a sweep of a different spec" in proc.stderr
    proc = run_bench("sweep", str(changed), "--resume", cwd=tmp_path)
    assert proc.returncode == 2 and "no unfinished sweep of this spec" in proc.stderr


def test_zero_config_demo(tmp_path: Path):
    """README command (1): `python -m bench sweep` with no spec, from the repository root."""
    import tomllib

    from bench.cli_sweep import demo_text
    from bench.plan import count_runs, server_configs
    from bench.spec import parse_spec

    spec = parse_spec(tomllib.loads(demo_text()))
    n_runs = count_runs(spec, server_configs(spec))[1]
    out = tmp_path / "demo"
    proc = run_bench("sweep", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == str(out / "index.html") and (out / "index.html").is_file()
    table = rows(out)
    assert len(table) == n_runs and {r["status"] for r in table} == {"ok"}
    criteria = (out / "index.html").read_text().split('id="criteria"')[1].split("</table>")[0]
    assert 'class="fail"' not in criteria, "a healthy small machine must not open the demo with a FAIL"
    html = (out / "index.html").read_text()  # the demo measures its own ceiling's bandwidth
    assert json.loads((out / "bandwidth.json").read_text())["host_read_gbps"] > 0
    assert "measured at sweep start" in html and (out / "model.json").is_file()


def test_spec_hash_ignores_the_report_table_and_layout_only():
    from bench.store import spec_hash

    base = 'name = "t"\nengine = "xllamacpp"\n[axes]\n"-np" = [1, 2]\n[report]\nmin_decode_tps = 0.5\n'
    same = ('# thresholds changed, comments and layout too\nengine="xllamacpp"\nname = "t"\n'
            '[report]\nmin_decode_tps = 7\nmemory_channels = 8\n[axes]\n"-np" = [ 1, 2 ]\n')
    assert spec_hash(base) == spec_hash(same) == spec_hash(base.split("[report]")[0])
    assert spec_hash(base) != spec_hash(base.replace("[1, 2]", "[1, 3]"))
    assert spec_hash(base) != spec_hash(base.replace('name = "t"', 'name = "u"'))
    assert spec_hash(base) != spec_hash(base + "[workload]\nrequests = 5\n")


def test_a_sweep_recorded_with_the_raw_text_hash_still_resumes(tmp_path: Path):
    """sweep.json written before the hash ignored [report]: sha256 of the raw spec text."""
    import hashlib

    from bench.store import SweepStore, spec_hash

    text = 'name = "t"\nengine = "xllamacpp"\n[report]\nmin_decode_tps = 1\n'
    (tmp_path / "spec.toml").write_text(text)
    raw = hashlib.sha256(text.encode()).hexdigest()[:16]
    (tmp_path / "sweep.json").write_text(json.dumps({"spec_hash": raw, "status": "running"}))
    store = SweepStore(tmp_path)
    assert store.meta()["spec_hash"] == spec_hash(text) == spec_hash(text.replace("= 1", "= 9"))
    store.update_meta(status="finished")  # the upgraded hash is what gets written back
    assert json.loads((tmp_path / "sweep.json").read_text())["spec_hash"] == spec_hash(text)
    (tmp_path / "spec.toml").write_text(text + "# edited by hand\n")  # no longer what was hashed
    (tmp_path / "sweep.json").write_text(json.dumps({"spec_hash": raw, "status": "running"}))
    assert store.meta()["spec_hash"] == raw  # left alone: a mismatch refuses, as before


def test_resume_accepts_a_changed_report_table_and_refuses_a_changed_axis(tiny_model: Path, tmp_path: Path):
    """A real sweep interrupted after its first launch: resumed with new [report] thresholds (the
    finished cell is kept, the page uses the new ones); with an axis changed it is refused."""
    text = spec_text(tiny_model, '"-np" = [1, 2]').replace("concurrency = [1, 2]", "concurrency = [1]")
    spec = write_spec(tmp_path / "s.toml", text + "[report]\nmin_decode_tps = 0.5\n")
    out = tmp_path / "reports" / "t-1"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "bench", "sweep", str(spec), "--out", str(out), "--no-report"]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob("runs/*/r0/in*.json")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # unwinds like Ctrl-C: server stopped, sweep left "running"
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "rerun with --resume" in stderr, stderr[-2000:]
    assert json.loads((out / "sweep.json").read_text())["status"] == "running"
    first = {p: p.read_bytes() for p in out.glob("runs/*/r0/in*.json")}
    assert len(first) == 1

    changed = write_spec(tmp_path / "c.toml", text + "[report]  # stricter now\nmin_decode_tps = 7\n")
    proc = run_bench("sweep", str(changed), "--resume", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "sweep reports/t-1 (resumed)" in proc.stdout and "spec.toml in" in proc.stdout
    assert all(p.read_bytes() == data for p, data in first.items())  # the finished cell was kept
    assert len(rows(out)) == 2 and json.loads((out / "sweep.json").read_text())["status"] == "finished"
    assert (out / "spec.toml").read_text() == changed.read_text()
    page = (out / "index.html").read_text()
    assert "&gt; 7 tokens/s per request" in page or "> 7 tokens/s per request" in page

    axis = write_spec(tmp_path / "a.toml", changed.read_text().replace('"-np" = [1, 2]', '"-np" = [1, 3]'))
    for args in (("--out", str(out)), ("--resume", str(out))):
        proc = run_bench("sweep", str(axis), *args, "--no-report", cwd=tmp_path)
        assert proc.returncode == 2 and proc.stdout == "", proc.stdout[-2000:]
        assert proc.stderr.strip().count("\n") == 0 and "holds a sweep of a different spec" in proc.stderr
    assert len(rows(out)) == 2


def test_every_launch_failing_exits_1_with_the_servers_words_and_is_not_relaunched_per_repeat(
        tiny_model: Path, tmp_path: Path):
    """A bad flag fails before serving: repeat 0 is launch-failed, repeats 1-2 are recorded as
    skipped without a launch; no configuration served, so the sweep exits 1 and says why."""
    text = spec_text(tiny_model, '"-ctk" = ["bogus"]', workload="repeats = 3")
    spec = write_spec(tmp_path / "s.toml", text)
    out = tmp_path / "sweep"
    proc = run_bench("sweep", str(spec), "--out", str(out))
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "every launch failed" in proc.stderr and str(out / "index.html") in proc.stderr
    assert "server says:" in proc.stdout
    assert "bogus" in proc.stdout.split("server says:")[1].splitlines()[0].lower()
    assert "every launch failed: no configuration served a request." in proc.stdout
    table = rows(out)
    assert [r["status"] for r in table if r["repeat"] == "0"] == ["launch-failed"] * 2
    skipped = [r for r in table if r["repeat"] != "0"]
    assert len(skipped) == 4 and {r["status"] for r in skipped} == {"skipped"}
    assert all(r["error_reason"].startswith("not relaunched: repeat 0 failed before serving")
               for r in skipped)
    assert len(list((out / "logs").glob("*.log"))) == 1  # one launch, not one per repeat
    assert json.loads((out / "sweep.json").read_text())["served_runs"] == 0
    html = (out / "index.html").read_text()
    assert 'id="failed-configs"' in html and "skipped" in html


def test_progress_shows_labels_phases_and_an_eta_not_hashes(tiny_model: Path, tmp_path: Path):
    """On a terminal (rich forced interactive, as a user's shell is) every phase of every launch is
    drawn with the launch's label, and each cell's line starts with the label, never a hash id."""
    spec = write_spec(tmp_path / "s.toml", spec_text(tiny_model, '"-np" = [1, 2]'))
    out = tmp_path / "sweep"
    tty = {"COLUMNS": "200", "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "TERM": "xterm", "NO_COLOR": "1"}
    proc = run_bench("sweep", str(spec), "--out", str(out), "--no-report", env=tty)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "\n", proc.stdout).replace("\r", "\n")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    ids = {r["config_id"] for r in rows(out)}
    assert not any(i in ln for ln in lines for i in ids), [ln for ln in lines if any(i in ln for i in ids)]
    for seq, label in ((1, "np=1"), (2, "np=2")):
        drawn = {m.group(1) for ln in lines if (m := re.match(rf"launch {seq}/2 {label} r0 · (\w+)", ln))}
        assert set(PHASES) <= drawn, (label, drawn)
        for cell in ("in32-out16-c1", "in32-out16-c2"):
            assert any(ln.startswith(f"{label} r0 {cell}: ok decode ") for ln in lines), (label, cell, lines)
            for phase in ("warming", "measuring"):
                assert any(ln.startswith(f"launch {seq}/2 {label} r0 · {phase} {cell}") for ln in lines), \
                    (label, phase, cell)
    assert any(re.search(r"ETA \d+ (s|min|h)", ln) for ln in lines), lines[-5:]
