"""The objective the page ranks by, co-leaders when the 95 % CIs overlap, and what would separate them:
the math on chosen numbers, the page on a real sweep whose two configurations are the same server."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from bench.report.criteria import recommend
from bench.report.objective import Score, parse_objective, score, separation
from bench.report.options import ReportOptions
from bench.report.summary import ConfigSummary
from bench.stats import t_quantile

ROOT = Path(__file__).resolve().parents[2]

SPEC = """
name = "twins"
engine = "xllamacpp"
[server]
args = ["-c", "512", "--no-warmup", "--threads", "1", "-np", "2"]
health_timeout_s = 60
[server.generate]
n_embd = 64
n_layer = 1
n_ff = 128
n_head = 2
n_head_kv = 1
n_vocab = 512
[axes]
"env.OMNI_TWIN" = ["a", "b"]   # the server ignores it: two launches of the same configuration
[workload]
input_tokens = [16]
output_tokens = [16]
concurrency = [1, 2]
requests = 4
warmup = 1
repeats = 2
[memory]
interval_s = 0.05
"""


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")} | {"PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.read_text())))


@pytest.mark.parametrize(("text", "kind"), [("decode", "decode"), ("throughput@8", "throughput_at"),
                                             ("throughput:ttft_p90<500", "throughput_ttft"),
                                             ("decode_per_gb", "decode_per_gb")])
def test_objectives_parse(text: str, kind: str):
    assert parse_objective(text).kind == kind


@pytest.mark.parametrize("text", ["fastest", "throughput@0", "throughput@", "throughput:ttft_p90>5"])
def test_a_bad_objective_is_one_line_with_the_syntax(text: str):
    with pytest.raises(ValueError, match=re.escape("decode | throughput@N")):
        parse_objective(text)


def test_separation_finds_the_repeats_at_which_the_intervals_stop_overlapping():
    """Half-widths shrink like t(0.975, n-1)/sqrt(n): with n = 3, means 10 and 9 and half-widths 1
    each, the CIs stop overlapping at the first n where 2 * h(n)/h(3) < 1."""
    lead, other = Score(10.0, 9.0, 11.0, 3, "repeats"), Score(9.0, 8.0, 10.0, 3, "repeats")
    sep = separation(lead, other)
    h = lambda n: t_quantile(0.975, n - 1) / n**0.5  # noqa: E731
    want = next(n for n in range(4, 200) if 2 * h(n) / h(3) < 1)
    assert sep.n_needed == want and sep.n_now == 3 and sep.basis == "repeats"
    assert separation(lead, Score(10.0, 9.0, 11.0, 3, "repeats")).n_needed is None  # equal means


def _config(cid: str, decode: list[float], gpu_gb: float | None) -> tuple[ConfigSummary, list[dict]]:
    """A configuration of 3 repeats: c=1 decode as given, c=2 and c=8 aggregate throughput below."""
    s = ConfigSummary(cid, cid, "llama-server", "ok", "", [], {}, decode_concurrency=1.0,
                      decode_tps=sum(decode) / len(decode), decode_lo=min(decode), decode_hi=max(decode),
                      served=True, host_available_min=50e9)
    rows = [{"config_id": cid, "status": "ok", "repeat": r, "input_tokens": 64, "output_tokens": 32,
             "ci_basis": "repeats", "ok_requests": 8, "concurrency": 1, "decode_tps": d,
             "throughput_tps": d, "ttft_ms_p90": 40.0,
             **({"gpu0_mem_peak_bytes": gpu_gb * 1e9} if gpu_gb is not None else {})}
            for r, d in enumerate(decode)]
    return s, rows


def _with_cells(rows: list[dict], cells: dict[int, tuple[list[float], float]]) -> list[dict]:
    """Add cells {concurrency: ([throughput per repeat], TTFT p90 ms)} beside the c=1 rows."""
    out = list(rows)
    for conc, (tps, ttft) in cells.items():
        out += [{**rows[r], "concurrency": conc, "decode_tps": rows[r]["decode_tps"] / conc,
                 "throughput_tps": t, "throughput_tps_ci95_lo": None, "ttft_ms_p90": ttft}
                for r, t in enumerate(tps)]
    return out


def _rank(obj_text: str, configs: list[tuple[ConfigSummary, list[dict]]]):
    frame = pd.DataFrame([row for _, rows in configs for row in rows])
    obj = parse_objective(obj_text)
    scores = {s.config_id: score(obj, s, frame[frame["config_id"] == s.config_id]) for s, _ in configs}
    rec = recommend([s for s, _ in configs], ReportOptions(objective=obj_text, min_headroom_gb=10),
                    SimpleNamespace(ok_rows=frame))
    return scores, rec


def test_ttft_limit_ranks_the_best_throughput_among_concurrencies_under_the_limit():
    """fast: 90 tokens/s at c=8 but TTFT p90 700 ms, so 50 at c=2 (300 ms) is what counts;
    steady: 60 at c=8 with TTFT p90 450 ms. Under 500 ms steady leads; under 800 ms fast does."""
    fast, fast_rows = _config("fast", [20.0, 21.0, 19.0], 4.0)
    steady, steady_rows = _config("steady", [18.0, 18.5, 17.5], 4.0)
    fast_rows = _with_cells(fast_rows, {2: ([50.0, 51.0, 49.0], 300.0), 8: ([90.0, 92.0, 88.0], 700.0)})
    steady_rows = _with_cells(steady_rows, {2: ([35.0, 35.5, 34.5], 200.0), 8: ([60.0, 61.0, 59.0], 450.0)})
    configs = [(fast, fast_rows), (steady, steady_rows)]
    scores, rec = _rank("throughput:ttft_p90<500", configs)
    assert scores["fast"].value == pytest.approx(50.0)
    assert "at concurrency 2 (TTFT p90 300 ms)" in scores["fast"].detail
    assert scores["steady"].value == pytest.approx(60.0) and "at concurrency 8" in scores["steady"].detail
    assert scores["steady"].n == 3 and scores["steady"].basis == "repeats"
    assert rec.config is steady and not rec.coleaders and rec.objective.kind == "throughput_ttft"
    scores, rec = _rank("throughput:ttft_p90<800", configs)
    assert scores["fast"].value == pytest.approx(90.0) and rec.config is fast
    scores, rec = _rank("throughput:ttft_p90<30", configs)  # c=1 is 40 ms: nothing qualifies
    assert scores["fast"].value is None
    assert "no concurrency kept TTFT p90 under 30 ms" in scores["fast"].reason
    assert rec.config is None and "no concurrency kept TTFT p90 under 30 ms" in rec.why


def test_decode_per_gb_ranks_decode_over_peak_vram_and_skips_unmeasured_gpus():
    """big: 30 tokens/s on 12 GB (2.5 per GB); small: 20 tokens/s on 4 GB (5 per GB) leads, though
    its decode is lower; cpu: no GPU memory measured, so no value (never a division by zero)."""
    big, big_rows = _config("big", [30.0, 31.0, 29.0], 12.0)
    small, small_rows = _config("small", [20.0, 20.5, 19.5], 4.0)
    cpu, cpu_rows = _config("cpu", [25.0, 25.0, 25.0], None)
    scores, rec = _rank("decode_per_gb", [(big, big_rows), (small, small_rows), (cpu, cpu_rows)])
    assert scores["big"].value == pytest.approx(30.0 / 12.0)
    assert (scores["big"].lo, scores["big"].hi) == (pytest.approx(29.0 / 12.0), pytest.approx(31.0 / 12.0))
    assert scores["small"].value == pytest.approx(20.0 / 4.0) and "4.0 GB peak VRAM" in scores["small"].detail
    assert scores["cpu"].value is None and scores["cpu"].reason == "no GPU memory measured"
    assert rec.config is small and not rec.coleaders and rec.objective.unit == "tokens/s per GB"
    _, by_decode = _rank("decode", [(big, big_rows), (small, small_rows), (cpu, cpu_rows)])
    assert by_decode.config is big  # the same rows, ranked by decode alone


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("twins")
    (base / "spec.toml").write_text(SPEC)
    out = base / "sweep"
    proc = _bench("sweep", str(base / "spec.toml"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_the_same_server_twice_is_a_tie_with_the_rule_and_what_would_separate_it(twins: Path):
    text = _text(twins / "index.html")
    rec = text.split("Recommended configuration")[1].split("Success criteria")[0]
    assert "Ranked by decode tokens/s per request" in rec and "objective decode" in rec
    assert "Not separable: 2 co-leaders" in rec, rec[:1500]
    assert "95 % confidence interval on the objective overlaps the leader's" in rec
    assert "What would separate them:" in rec and ("more repeat(s)" in rec or "treat them as equal" in rec)


def test_objective_flag_ranks_by_aggregate_throughput_and_says_so(twins: Path):
    proc = _bench("report", str(twins), "--objective", "throughput@2")
    assert proc.returncode == 0, proc.stderr
    rec = _text(twins / "index.html").split("Recommended configuration")[1].split("Success criteria")[0]
    assert "Ranked by aggregate output tokens/s at concurrency 2" in rec and "at concurrency 2" in rec
    proc = _bench("report", str(twins), "--objective", "fastest")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "throughput@N" in proc.stderr
