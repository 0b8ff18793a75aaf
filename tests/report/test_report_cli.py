"""`python -m bench report SWEEP_DIR [flags]` on a REAL sweep whose spec carries a `[report]` table:
the settings' precedence (flag > report.toml > spec [report] > defaults) as the page shows it, and
one-line errors with exit 2 for a bad directory, a bad setting or a bad flag."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

SPEC = """
name = "report-cli"
engine = "xllamacpp"
[server]
args = ["-c", "512", "--no-warmup", "--threads", "1"]
health_timeout_s = 60
stop_timeout_s = 10
[server.generate]
n_embd = 64
n_layer = 1
n_ff = 128
n_head = 2
n_head_kv = 1
n_vocab = 512
[workload]
input_tokens = [16]
output_tokens = [8]
concurrency = [1]
requests = 2
warmup = 0
[memory]
interval_s = 0.05
[report]
min_decode_tps = 0.5
min_headroom_gb = 1.5
host_bandwidth_gbps = 77
"""


def bench(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OMNI_REPORT_SHOTS"} | {"PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=240, stdin=subprocess.DEVNULL)


def page_text(sweep: Path) -> str:
    """The page's words, tags stripped: what the criteria table and ceiling inputs say."""
    raw = (sweep / "index.html").read_text()
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", raw)))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One launch, one cell: the sweep renders its page with the spec's [report] settings."""
    base = tmp_path_factory.mktemp("report-cli")
    spec = base / "spec.toml"
    spec.write_text(SPEC)
    out = base / "sweep"
    proc = bench("sweep", str(spec), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == str(out / "index.html")
    return out


@pytest.fixture
def sweep(recorded: Path, tmp_path: Path) -> Path:
    """A private copy: each test rewrites index.html and report.toml."""
    return Path(shutil.copytree(recorded, tmp_path / "sweep"))


def test_the_sweep_page_judges_by_the_spec_report_table(recorded: Path):
    text = page_text(recorded)
    assert "> 0.5 tokens/s per request" in text and "> 1.5 GB MemAvailable" in text
    assert "measured, given in the spec: 77 GB/s" in text
    assert "> 15 tokens/s" not in text and "> 80 GB" not in text  # not the defaults


def test_report_toml_beats_the_spec_and_flags_beat_both(sweep: Path):
    (sweep / "report.toml").write_text("[report]\nmin_decode_tps = 2\n")
    proc = bench("report", str(sweep))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(sweep / "index.html")
    text = page_text(sweep)
    assert "> 2 tokens/s per request" in text and "> 1.5 GB MemAvailable" in text  # headroom: the spec's
    proc = bench("report", str(sweep), "--min-decode-tps", "3", "--min-headroom-gb", "4",
                 "--host-bandwidth-gbps", "123", "--gpu-bandwidth-gbps", "900", "--memory-channels", "2")
    assert proc.returncode == 0, proc.stderr
    text = page_text(sweep)
    assert "> 3 tokens/s per request" in text and "> 4 GB MemAvailable" in text
    assert "measured, given in the spec: 123 GB/s" in text and "77 GB/s" not in text


def test_defaults_apply_where_no_source_sets_a_key(sweep: Path):
    spec = (sweep / "spec.toml").read_text()
    (sweep / "spec.toml").write_text(spec.replace("min_decode_tps = 0.5\n", ""))
    proc = bench("report", str(sweep))
    assert proc.returncode == 0, proc.stderr
    text = page_text(sweep)
    assert "> 15 tokens/s per request" in text and "> 1.5 GB MemAvailable" in text


def test_headroom_goal_scales_with_the_host_unless_the_target_box_is_named(sweep: Path):
    """Unset, the goal is the reference box's share (80 of 384 GiB) of this host's MemTotal; a spec
    naming the target box (target_mem_gb = 384) gets the runbook's 80 GB back."""
    import pandas as pd

    spec = (sweep / "spec.toml").read_text().replace("min_headroom_gb = 1.5\n", "")
    (sweep / "spec.toml").write_text(spec)
    total = float(pd.read_csv(sweep / "results.csv")["host_mem_total_bytes"].max())
    assert bench("report", str(sweep)).returncode == 0
    goal = round(total / 1e9 * 80 / 384, 1)
    text = page_text(sweep)
    assert f"> {goal:g} GB MemAvailable" in text and f"this host's {total / 1e9:.1f} GB MemTotal" in text
    (sweep / "spec.toml").write_text(spec.replace("[report]\n", "[report]\ntarget_mem_gb = 384\n"))
    assert bench("report", str(sweep)).returncode == 0
    text = page_text(sweep)
    assert "> 80 GB MemAvailable" in text and "the target box's 384 GB (target_mem_gb)" in text
    assert bench("report", str(sweep), "--min-headroom-gb", "2").returncode == 0
    assert "> 2 GB MemAvailable" in page_text(sweep) and "headroom 2 GB as set" in page_text(sweep)


def _options_section(sweep: Path) -> str:
    """The page's "Report options" part of Provenance, as words."""
    text = page_text(sweep)
    return text.split("Report options", 1)[1].split("Versions", 1)[0]


def test_report_records_the_options_it_was_run_with_beside_sweep_json_and_on_the_page(sweep: Path):
    """Two real `bench report` runs with different flags, then one with none: report-options.json
    and the page's provenance say what each page was made with, key by key and where it came from."""
    proc = bench("report", str(sweep), "--min-decode-tps", "3", "--objective", "throughput@1",
                 "--gpu-bandwidth-gbps", "900", "--gpu-bandwidth-gbps", "800")
    assert proc.returncode == 0, proc.stderr
    first = json.loads((sweep / "report-options.json").read_text())
    assert first["command_line"] == {"min_decode_tps": 3.0, "objective": "throughput@1",
                                     "gpu_bandwidth_gbps": [900.0, 800.0]}
    assert first["options"] == {
        "min_decode_tps": 3.0, "min_headroom_gb": 1.5, "target_mem_gb": None, "objective": "throughput@1",
        "host_bandwidth_gbps": 77.0, "gpu_bandwidth_gbps": [900.0, 800.0], "memory_channels": None,
        "vram_budget_gib": []}
    assert first["sources"] == {
        "min_decode_tps": "command line", "min_headroom_gb": "spec [report]", "target_mem_gb": "default",
        "objective": "command line", "host_bandwidth_gbps": "spec [report]",
        "gpu_bandwidth_gbps": "command line", "memory_channels": "default", "vram_budget_gib": "default"}
    assert first["command"] == (f"python -m bench report {sweep} --min-decode-tps 3 --objective throughput@1 "
                                "--gpu-bandwidth-gbps 900 --gpu-bandwidth-gbps 800")
    assert f"report written {first['generated_at']}" in page_text(sweep)  # the record is of this page
    shown = _options_section(sweep)
    assert f"Rendered by {first['command']} ;" in shown and "report-options.json beside sweep.json" in shown
    for row in ("min_decode_tps 3 command line", "min_headroom_gb 1.5 spec [report]",
                "objective throughput@1 command line", "host_bandwidth_gbps 77 spec [report]",
                "gpu_bandwidth_gbps 900, 800 command line",
                "memory_channels unset: one per populated DIMM default"):
        assert row in shown, shown

    proc = bench("report", str(sweep), "--min-headroom-gb", "4")  # other flags: the record is replaced
    assert proc.returncode == 0, proc.stderr
    second = json.loads((sweep / "report-options.json").read_text())
    assert second["command_line"] == {"min_headroom_gb": 4.0}
    used, sources = second["options"], second["sources"]
    assert used["min_decode_tps"] == 0.5 and sources["min_decode_tps"] == "spec [report]"
    assert used["objective"] == "decode" and sources["objective"] == "default"
    assert used["min_headroom_gb"] == 4.0 and sources["min_headroom_gb"] == "command line"
    shown = _options_section(sweep)
    assert f"Rendered by python -m bench report {sweep} --min-headroom-gb 4 ;" in shown
    assert "min_headroom_gb 4 command line" in shown and "objective decode default" in shown
    assert "throughput@1" not in shown and "900" not in shown

    proc = bench("report", str(sweep))  # no flags: the page and the record say which values it used
    assert proc.returncode == 0, proc.stderr
    third = json.loads((sweep / "report-options.json").read_text())
    assert third["command_line"] == {} and third["command"] == f"python -m bench report {sweep}"
    assert third["options"]["min_decode_tps"] == 0.5 and third["options"]["min_headroom_gb"] == 1.5
    assert set(third["sources"].values()) == {"default", "spec [report]"}
    shown = _options_section(sweep)
    assert "Rendered with no command-line options" in shown and "Rendered by" not in shown
    assert "min_decode_tps 0.5 spec [report]" in shown and "objective decode default" in shown
    assert "target_mem_gb unset: the sweep host's MemTotal default" in shown


@pytest.mark.parametrize(("args", "setup", "needle"), [
    (["{missing}"], None, "not a directory; give the sweep dir"),
    (["{empty}"], None, "no results.csv; run `python -m bench sweep` first"),
    (["{sweep}"], "min_decode_tps = -1\n", "report setting min_decode_tps=-1"),
    (["{sweep}"], "min_decode_tps = \n", "report.toml is not valid TOML"),
    (["{sweep}", "--min-decode-tps", "fast"], None, "argument --min-decode-tps: invalid float value: 'fast'"),
    (["{sweep}", "--gpu-bandwidth-gbps", "0"], None, "report setting gpu_bandwidth_gbps[0]=0.0"),
    (["{sweep}", "--no-such-flag"], None, "unrecognized arguments: --no-such-flag"),
])
def test_errors_are_one_line_and_exit_2(sweep: Path, tmp_path: Path, args: list[str], setup: str | None,
                                        needle: str):
    (tmp_path / "empty").mkdir()
    if setup is not None:
        (sweep / "report.toml").write_text(setup)
    names = {"missing": tmp_path / "missing", "empty": tmp_path / "empty", "sweep": sweep}
    before = (sweep / "index.html").read_bytes()
    record = (sweep / "report-options.json").read_bytes()
    proc = bench("report", *(a.format(**names) for a in args))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert (sweep / "index.html").read_bytes() == before  # nothing half-written
    assert (sweep / "report-options.json").read_bytes() == record  # nor re-recorded


def test_report_help_lists_every_flag_and_bench_help_lists_report():
    proc = bench("report", "--help")
    assert proc.returncode == 0
    for flag in ("--min-decode-tps", "--min-headroom-gb", "--host-bandwidth-gbps", "--gpu-bandwidth-gbps",
                 "--memory-channels"):
        assert flag in proc.stdout
    proc = bench("--help")
    assert proc.returncode == 0 and "report" in proc.stdout
