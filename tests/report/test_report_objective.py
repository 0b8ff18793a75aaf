"""The objective the page ranks by, co-leaders when the 95 % CIs overlap, and what would separate them:
the math on chosen numbers, the page on a real sweep whose two configurations are the same server."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report.objective import Score, parse_objective, separation
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
