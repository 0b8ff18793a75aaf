"""`python -m bench.perf.peers_ours`: our load generator as a standalone client process.

Why a process of its own: the peer comparison charges every tool the CPU of its whole process
tree, start-up included, so ours runs exactly like GuideLLM and AIPerf do: started, one cell of
load through `bench.load.run_cell`, a JSON summary written, exit.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import openai

from bench.engines import get_engine
from bench.load import CellLoad, Client, StreamError, make_prompt, run_cell
from bench.metrics import pct, summarize


class RawPostClient(Client):
    """The proposed fix, measured side by side: the same pool, retries and SSE parsing, but the
    request goes out through `httpx.Client.stream` with a ready JSON body instead of the openai
    client's per-call option processing (~2-3 ms of CPU before the first byte is sent, which
    lands in TTFT and staggers the first wave of a cell)."""

    @contextmanager
    def _create(self, prompt: Any) -> Iterator[Any]:
        ld = self.load
        assert ld is not None
        body = {"model": ld.model, "prompt": prompt, "max_tokens": ld.output_tokens, "stream": True,
                "stream_options": {"include_usage": True}, **ld.fixed_fields, **ld.extra_body}
        cm = self.http.stream("POST", f"{ld.base_url}{ld.api_prefix}/completions", content=json.dumps(body),
                              headers={"Content-Type": "application/json"})
        try:
            resp = cm.__enter__()
        except httpx2.TransportError as err:  # the shape bench.load's retry test (_dropped) expects
            raise openai.APIConnectionError(request=err.request) from err
        try:
            if resp.status_code >= 400:
                raise StreamError(f"HTTP {resp.status_code}: {resp.read()[:200]!r}")
            yield resp
        except BaseException:
            if not cm.__exit__(*sys.exc_info()):
                raise
        else:
            cm.__exit__(None, None, None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.perf.peers_ours")
    ap.add_argument("--url", required=True)
    ap.add_argument("--concurrency", type=int, required=True)
    ap.add_argument("--requests", type=int, required=True)
    ap.add_argument("--input-tokens", type=int, required=True)
    ap.add_argument("--output-tokens", type=int, required=True)
    ap.add_argument("--engine", default="xllamacpp")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--extra-body", default="{}", help="JSON merged into every request")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--raw-post", action="store_true", help="send through RawPostClient (the proposed fix)")
    a = ap.parse_args(argv)
    engine = get_engine(a.engine)
    rng = random.Random(a.seed)
    prompts = [make_prompt(a.url, a.input_tokens, rng, as_text=False) for _ in range(a.requests)]
    load = CellLoad(
        base_url=a.url, endpoint="completions", output_tokens=a.output_tokens, concurrency=a.concurrency,
        fixed_fields=engine.fixed_length_fields, extra_body=json.loads(a.extra_body), timeout_s=600,
        max_retries=3, api_prefix=engine.api_prefix,
    )
    client = None
    if a.raw_post:
        client = RawPostClient(load.base_url, load.api_prefix, load.concurrency, load.timeout_s)
    records, wall = run_cell(load, prompts, 0, client)
    out = summarize(records, wall)
    ok = [r for r in records if r.ok]
    out["output_tokens_total"] = sum(r.output_tokens or 0 for r in ok)
    # the statistic GuideLLM and AIPerf call ITL: per request (t_last - t_first) / (n - 1), p50 over requests
    out["itl_req_ms_p50"] = pct([1000 / r.decode_tps for r in ok if r.decode_tps], 50)
    a.out.write_text(json.dumps(out, indent=1))
    return 0 if out["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
