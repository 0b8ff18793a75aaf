"""Phase 5 verify rows against real services on loopback: a llama.cpp server, a real Prometheus
(Debian's binary) scraping its /metrics, closed ports for what is not running here."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench.server import free_port
from deploys.checks.stack import decode_tps, headroom_bytes, mgconsole_values
from facts.stack import parse_meminfo

RUNNER = Path(__file__).parent / "phase5_rows_runner.py"


def rows_for(marker: dict | None, tmp_path: Path, verify: dict | None = None) -> dict[str, dict]:
    folder = tmp_path / "markers"
    folder.mkdir(exist_ok=True)
    if marker is not None:
        (folder / "phase5.json").write_text(json.dumps(marker))
    proc = subprocess.run([sys.executable, str(RUNNER), str(folder), json.dumps(verify or {})],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {row["name"]: row for row in json.loads(proc.stdout.splitlines()[-1])}


@pytest.fixture(scope="module")
def prometheus(deb_binaries, llama_server, tmp_path_factory):
    """A real Prometheus scraping the llama server, as phase 5's scrape config does."""
    binary = deb_binaries("prometheus", "/usr/bin/prometheus")["/usr/bin/prometheus"]
    _, _, llama_port = llama_server
    folder = tmp_path_factory.mktemp("prometheus")
    (folder / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: llama-server\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{llama_port}']\n"
        "        labels: {model: architect}\n")
    port = free_port()
    argv = [str(binary), f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=(folder / "log").open("w"),
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets", timeout=2) as reply:
                targets = json.loads(reply.read())["data"]["activeTargets"]
            if targets and targets[0]["health"] == "up":
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"prometheus did not scrape the server: {(folder / 'log').read_text()[-1500:]}")
        time.sleep(0.3)
    yield port
    proc.terminate()
    proc.wait(timeout=10)


def marker(served: str, llama_port: int, prometheus_port: int, grafana_port: int, state_dir: Path,
           headroom_gib: float = 1) -> dict:
    return {"phase": "phase5", "components": ["inference", "memgraph", "observability"], "bind": "127.0.0.1",
            "models": [{"name": "architect", "served_name": served, "engine": "llama-server",
                        "port": llama_port, "service": "llm-architect"}],
            "headroom_gib": headroom_gib, "memgraph": {"port": 7687, "bind": "127.0.0.1"},
            "observability": {"prometheus_port": prometheus_port, "grafana_port": grafana_port,
                              "bind": "127.0.0.1"},
            "phoenix": {"state_dir": str(state_dir), "projects": ["omni-inference"]}}


def test_without_the_marker_every_row_is_unknown_with_the_reason(tmp_path):
    rows = rows_for(None, tmp_path)
    assert len(rows) == 7
    assert all(r["status"] == "UNKNOWN" and "phase 5 not deployed" in r["reason"] for r in rows.values())
    assert rows["/v1/models lists the model"]["weight"] == "CRITICAL"
    assert rows["Phoenix restart marker"]["weight"] == "CRITICAL"  # the Definition of Done's weight
    assert rows["Inference speed"]["weight"] == "HIGH"


def test_rows_against_a_real_server_and_prometheus(tmp_path, llama_server, prometheus):
    _, served, llama_port = llama_server
    state = tmp_path / "phoenix"
    state.mkdir()
    (state / "last-restart").write_text("2026-11-29T08:00:00Z\n")
    rows = rows_for(marker(served, llama_port, prometheus, free_port(), state), tmp_path)
    models = rows["/v1/models lists the model (architect)"]
    assert models["status"] == "PASS" and served in models["measured"]
    speed = rows["Inference speed (architect)"]
    assert speed["status"] == "PASS" and speed["target"] == "> 15 tokens/s decode"
    assert re.fullmatch(r"\d+\.\d tokens/s \(256 tokens, server timings\)", speed["measured"]), speed
    headroom = rows["Memory headroom during inference"]
    assert headroom["status"] == "PASS" and "- mapped page cache" in headroom["measured"]
    assert rows["Prometheus targets up"]["status"] == "PASS"
    assert rows["Prometheus targets up"]["measured"] == "1/1 up"
    grafana = rows["Grafana login page"]
    assert grafana["status"] == "FAIL" and "no answer" in grafana["measured"]  # nothing listens there
    memgraph = rows["Memgraph writes and reads a node"]
    assert memgraph["status"] == "FAIL"  # no memgraph container on this machine
    phoenix = rows["Phoenix restart marker"]
    assert "last restart 2026-11-29T08:00:00Z" in phoenix["measured"]
    assert phoenix["status"] == "FAIL" and "restart requests are not watched" in phoenix["reason"]


def test_wrong_model_low_headroom_and_components_left_out(tmp_path, llama_server):
    _, _, llama_port = llama_server
    document = marker("not-the-served-model", llama_port, free_port(), free_port(), tmp_path)
    document["models"].append({"name": "coder", "served_name": "coder", "engine": "llama-server",
                               "port": free_port(), "service": "llm-coder"})
    document.update(memgraph=None, observability=None, phoenix=None, headroom_gib=100000)
    rows = rows_for(document, tmp_path)
    assert rows["/v1/models lists the model (architect)"]["status"] == "FAIL"
    assert "does not list the model" in rows["/v1/models lists the model (architect)"]["reason"]
    assert rows["/v1/models lists the model (coder)"]["measured"].startswith("no answer")
    assert rows["Memory headroom during inference"]["status"] == "UNKNOWN"  # nothing serving
    for name in ("Memgraph writes and reads a node", "Prometheus targets up", "Grafana login page",
                 "Phoenix restart marker"):
        assert rows[name]["status"] == "UNKNOWN"
        assert "not enabled in the stack inventory" in rows[name]["reason"]


def test_headroom_below_the_goal_fails_and_speed_below_the_goal_fails(tmp_path, llama_server):
    _, served, llama_port = llama_server
    document = marker(served, llama_port, free_port(), free_port(), tmp_path, headroom_gib=100000)
    rows = rows_for(document, tmp_path, {"min_decode_tps": 1e9, "speed_max_tokens": 16})
    row = rows["Memory headroom during inference"]
    assert row["status"] == "FAIL" and row["target"].startswith(">= 100000 GiB")
    speed = rows["Inference speed (architect)"]
    assert speed["status"] == "FAIL" and "16 tokens, server timings" in speed["measured"]


def test_headroom_does_not_count_mapped_page_cache():
    """A 281 GB model mmapped: MemAvailable counts its pages as reclaimable cache; they are not spare."""
    meminfo = "MemFree: 10485760 kB\nMemAvailable: 367001600 kB\nMapped: 274432000 kB\n"
    headroom, available, mapped = headroom_bytes(meminfo)
    assert available == 367001600 * 1024 and mapped == 274432000 * 1024
    assert headroom == (367001600 - 274432000) * 1024  # 88.3 GiB, where MemAvailable alone says 350
    assert headroom_bytes("MemAvailable: 1 kB\n") is None
    capture = (Path(__file__).resolve().parents[3] / "tests/fixtures/hw/h200-proc-meminfo.txt").read_text()
    assert headroom_bytes(capture)[0] == (131464720 - 9936) * 1024


def test_memgraph_and_speed_parsers():
    assert mgconsole_values(['"n.token"', '"verify-1"', ""]) == ["verify-1"]
    assert mgconsole_values(['"n.token"']) == []
    body = json.dumps({"usage": {"completion_tokens": 100}})
    assert decode_tps(body, 4.0) == (25.0, "100 tokens / 4.0 s wall (includes prefill)")
    assert decode_tps("{}", 1.0)[0] is None
    # ik_llama.cpp's predicted_per_second is n / (n - 1 steps): the row counts decode steps, as mainline
    ik = json.dumps({"timings": {"predicted_n": 12, "predicted_ms": 10.0, "predicted_per_second": 1200.0}})
    assert decode_tps(ik, 1.0) == (pytest.approx(1100.0), "12 tokens, server timings")


def test_meminfo_parser_on_the_real_h200_capture():
    root = Path(__file__).resolve().parents[3]
    lines = (root / "tests/fixtures/hw/h200-proc-meminfo.txt").read_text().splitlines()
    values = parse_meminfo(lines)
    assert values["MemTotal"] == 131981020 * 1024 and values["MemAvailable"] == 131464720 * 1024
