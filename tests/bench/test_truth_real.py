"""Our client's decode rate against the server's own `timings` on REAL servers at concurrency 1:
mainline llama-server and ik_llama.cpp (the CPU builds of tests/llama_builds.py) and xllamacpp.

What this guards (issue 17's "client-vs-server decode within 2 %", docs/bench.md "Truth check"):
both sides count decode steps (tokens - 1) over the span from the first token to the last, on the
same requests, pooled (`decode_client_over_server`). ik_llama.cpp's own `predicted_per_second`
divides n, not n - 1, by that span (n/(n-1) high: +1.6 % at 64 tokens), so the server side is
recomputed from `predicted_n` / `predicted_ms`; this test pins that on the real binaries.

The tolerance is what a shared, loaded 2-core box allows, not the 2 % of an idle GPU host: the
decode window here is ~200-700 ms per request (the SMALL model, 128 tokens, one thread), and one
4-10 ms scheduler slice that stalls the server's HTTP thread or our reader lands in our window
only. Measured while two builds and other sessions ran (load average ~8): 0.999-1.021 pooled over
10 requests, windows 227-727 ms (docs/bench.md, "Client vs server decode").
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.load import CellLoad, make_prompt, run_cell
from bench.metrics import summarize

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # the first use builds the servers

TOLERANCE = 0.05
OUT = 128


def _command(engine: str, request: pytest.FixtureRequest) -> list[str]:
    if engine == "xllamacpp":
        return [sys.executable, "-m", "bench.xllamacpp_server"]
    fixture = {"llama-server": "llama_server_binary", "ik_llama": "ik_llama_server_binary"}[engine]
    return [str(request.getfixturevalue(fixture))]


@pytest.mark.parametrize("engine", ["llama-server", "ik_llama", "xllamacpp"])
def test_client_and_server_decode_agree_at_concurrency_1(engine: str, request: pytest.FixtureRequest,
                                                        small_model: Path, serve: Callable[..., str]):
    base = serve(*_command(engine, request), "-m", str(small_model), "-t", "1", "-np", "1", "-c", "1024",
                 "--no-warmup")
    rng = random.Random(17)
    prompts = [make_prompt(base, 32, rng, False) for _ in range(1 + 6)]
    load = CellLoad(base_url=base, endpoint="completions", output_tokens=OUT, concurrency=1,
                    fixed_fields={"ignore_eos": True}, extra_body={}, timeout_s=60, max_retries=3)
    recs, wall = run_cell(load, prompts, 1)
    measured = [r for r in recs if not r.warmup]
    assert all(r.ok and r.output_tokens == OUT for r in measured), [r.error for r in measured]
    for r in measured:  # the server side counts decode steps, whatever the engine's own division
        t = r.server_timings
        assert t is not None and t["predicted_n"] == OUT
        assert r.server_decode_tps == pytest.approx((OUT - 1) / t["predicted_ms"] * 1000)
        own = OUT / (OUT - 1) if engine == "ik_llama" else 1.0  # the fork divides n, mainline n - 1
        assert t["predicted_per_second"] == pytest.approx(r.server_decode_tps * own, rel=1e-3), engine
    row = summarize(recs, wall)
    assert row["burst_requests"] <= 3, "most streams arrived in bursts: is the machine overloaded?"
    window, ratio = row["server_decode_window_ms"], row["decode_client_over_server"]
    assert window >= 20, f"decode took {window:.1f} ms per request: too short to compare clocks"
    assert ratio == pytest.approx(1.0, abs=TOLERANCE), (engine, ratio, window)
