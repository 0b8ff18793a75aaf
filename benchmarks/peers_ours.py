"""`python -m benchmarks.peers_ours`: our load generator as a standalone client process.

Why a process of its own: the peer comparison charges every tool the CPU of its whole process
tree, start-up included, so ours runs exactly like GuideLLM and AIPerf do: started, one cell of
load through `bench.load.run_cell`, a JSON summary written, exit.

`--client` picks the request path: `lowlevel` is `bench.load` as it is; the others are the
paths measured against it when TTFT at concurrency 4 was fixed (docs/perf.md), kept so the
comparison can be rerun. Every path notes its send delay through an httpx request hook.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai

from bench.engines import get_engine
from bench.load import CellLoad, Client, StreamError, make_prompt, run_cell
from bench.metrics import summarize
from bench.stats import pct


class _Entered:
    """An entered `with_streaming_response` context as the response `Client.request` closes."""

    def __init__(self, cm: Any) -> None:
        self.resp = cm.__enter__()  # HTTP errors and dropped connections raise here, as before
        self.cm = cm

    def iter_bytes(self) -> Iterator[bytes]:
        return self.resp.iter_bytes()

    def close(self) -> None:
        self.cm.__exit__(None, None, None)


class CreateClient(Client):
    """`bench.load` before the fix: `completions.with_streaming_response.create(prompt=ids)`,
    whose per-call transform of the token-id list (~2 ms, p90 ~7 ms with 4 threads on the GIL)
    staggers a closed-loop wave of requests so that all but the first miss its prefill batch."""

    prompt_in_extra_body = False

    def body(self, prompt: Any) -> Any:
        return prompt  # the openai client serialises it per call, on the clock

    def _send(self, body: Any) -> Any:
        ld = self.load
        assert ld is not None
        prompt, extra = body, {**ld.fixed_fields, **ld.extra_body}
        if self.prompt_in_extra_body:  # skips the transform of the prompt list (~0.8 ms left)
            prompt, extra = "", {"prompt": body, **extra}
        return _Entered(self.api.completions.with_streaming_response.create(
            model=ld.model, prompt=prompt, max_tokens=ld.output_tokens, stream=True,
            stream_options={"include_usage": True}, extra_body=extra,
        ))


class ExtraBodyClient(CreateClient):
    """`create` with the token ids moved into `extra_body` (the typed `prompt` is empty)."""

    prompt_in_extra_body = True


class RawPostClient(Client):
    """The same pool, retries and SSE parsing, but the request goes out through
    `httpx.Client.stream` with the ready body: no openai client at all in the request path."""

    def _send(self, body: bytes) -> Any:
        ld = self.load
        assert ld is not None
        req = self.http.build_request("POST", f"{ld.base_url}{ld.api_prefix}/completions", content=body,
                                      headers={"Content-Type": "application/json"})
        try:
            resp = self.http.send(req, stream=True)
        except httpx2.TransportError as err:  # the shape bench.load's retry test (_dropped) expects
            raise openai.APIConnectionError(request=err.request) from err
        if resp.status_code >= 400:
            resp.read()
            resp.close()
            raise StreamError(f"HTTP {resp.status_code}: {resp.content[:200]!r}")
        return resp


CLIENTS: dict[str, type[Client]] = {
    "lowlevel": Client, "create": CreateClient, "extra-body": ExtraBodyClient, "rawpost": RawPostClient,
}


def with_send_clock(cls: type[Client]) -> type[Client]:
    """`cls` that also notes, per request, when the request left (httpx's request event hook fires
    in the sending thread right before the transport writes it): the send delay that TTFT holds."""

    class Timed(cls):  # type: ignore[valid-type,misc]
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            self.local = threading.local()
            self.send_ms: dict[int, float] = {}
            self.http.event_hooks["request"] = [self._sent]

        def _sent(self, _request: Any) -> None:
            rec, t0 = self.local.current  # a retry overwrites: TTFT's clock runs to the last send
            self.send_ms[rec.index] = (time.perf_counter() - t0) * 1000

        def request(self, rec: Any, body: Any, t_cell: float) -> Any:
            self.local.current = (rec, time.perf_counter())
            return super().request(rec, body, t_cell)

    return Timed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.peers_ours")
    ap.add_argument("--url", required=True)
    ap.add_argument("--concurrency", type=int, required=True)
    ap.add_argument("--requests", type=int, required=True)
    ap.add_argument("--input-tokens", type=int, required=True)
    ap.add_argument("--output-tokens", type=int, required=True)
    ap.add_argument("--engine", default="xllamacpp")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--extra-body", default="{}", help="JSON merged into every request")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--client", choices=list(CLIENTS), default="lowlevel",
                    help="request path: lowlevel (bench.load as it is), create (bench.load before the "
                         "TTFT fix), extra-body (create, token ids in extra_body), rawpost (httpx only)")
    a = ap.parse_args(argv)
    engine = get_engine(a.engine)
    rng = random.Random(a.seed)
    prompts = [make_prompt(a.url, a.input_tokens, rng, as_text=False) for _ in range(a.requests)]
    load = CellLoad(
        base_url=a.url, endpoint="completions", output_tokens=a.output_tokens, concurrency=a.concurrency,
        fixed_fields=engine.fixed_length_fields, extra_body=json.loads(a.extra_body), timeout_s=600,
        max_retries=3, api_prefix=engine.api_prefix,
    )
    cls = with_send_clock(CLIENTS[a.client])
    client = cls(load.base_url, load.api_prefix, load.concurrency, load.timeout_s)
    records, wall = run_cell(load, prompts, 0, client)
    client.close()
    out = summarize(records, wall)
    ok = [r for r in records if r.ok]
    out["output_tokens_total"] = sum(r.output_tokens or 0 for r in ok)
    # the statistic GuideLLM and AIPerf call ITL: per request (t_last - t_first) / (n - 1), p50 over requests
    out["itl_req_ms_p50"] = pct([1000 / r.decode_tps for r in ok if r.decode_tps], 50)
    # TTFT as if the clock started when the request left, and the send delay itself
    send = [client.send_ms.get(r.index, 0.0) for r in ok]
    sent_ttft = [r.ttft_ms - d for r, d in zip(ok, send, strict=True) if r.ttft_ms is not None]
    out |= {"client": a.client, "send_ms_p50": pct(send, 50), "send_ms_p90": pct(send, 90),
            "ttft_sent_ms_p50": pct(sent_ttft, 50), "ttft_sent_ms_p90": pct(sent_ttft, 90)}
    a.out.write_text(json.dumps(out, indent=1))
    return 0 if out["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
