"""Drive a running server with streamed requests through the `openai` client and time every token.

Why this shape: the harness must cost the box less CPU than the server it measures (the issue-7
benchmark compares client CPU per 1000 tokens with GuideLLM and AIPerf). One thread per
concurrent stream on the sync client (measured here: half the CPU per token of the asyncio
client, whose anyio/httpcore layers cost more than the parsing), the raw SSE bytes of the
response (no per-chunk pydantic model), one clock read and one `json.loads` per chunk.
Prompts are token-id lists of the exact input length, cut from the server's own `/tokenize`
output; a dropped keep-alive connection is retried on a fresh connection (bounded) and counted,
never hidden.

Why request bodies are serialised before the cell and sent with the openai client's low-level
`post(..., content=bytes, stream=True)`: `completions.with_streaming_response.create` spends
~2 ms (p90 ~7 ms with 4 streaming threads on the GIL) transforming a 128-token prompt before
the request leaves. In a closed loop the requests of a wave then reach llama.cpp after the
~1 ms in which it gathers new tasks into one prefill batch: at concurrency 4 the first request
of every wave was prefilled alone and the other three waited out its prefill (+150 ms of TTFT
in every run, docs/perf.md). The low-level call keeps the openai client's URL, headers,
status-error mapping and connection-error wrapping, and sends in ~0.4 ms. TTFT's clock still
starts when the ready request is handed to the client: what a user waits.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai

from bench.schema import RequestRecord
from bench.server import http_json
from omni.llamacpp import decode_rate

_SYLL = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]


def _words(rng: random.Random, n: int) -> str:
    return " ".join("".join(rng.choice(_SYLL) for _ in range(rng.randint(1, 3))) for _ in range(n))


def make_prompt(base_url: str, n_tokens: int, rng: random.Random, as_text: bool) -> tuple[Any, int]:
    """(prompt, tokens it holds). Token ids of exactly `n_tokens` (BOS included when the model adds
    one) for /completions; for chat a text of `n_tokens` content tokens (the template adds more)."""
    words = max(8, n_tokens)
    for _ in range(8):
        text = f"{rng.randrange(10**9)} {_words(rng, words)}"
        status, body = http_json(f"{base_url}/tokenize", {"content": text, "add_special": not as_text})
        if status != 200 or not isinstance(body, dict):
            return text if as_text else _words(rng, n_tokens), 0  # no /tokenize: approximate, flagged
        ids = [t["id"] if isinstance(t, dict) else t for t in body["tokens"]]
        if len(ids) >= n_tokens:
            ids = ids[:n_tokens]
            if not as_text:
                return ids, n_tokens
            status, back = http_json(f"{base_url}/detokenize", {"tokens": ids})
            if status == 200 and isinstance(back, dict):
                return back.get("content", text), n_tokens
            return text, 0
        words *= 2
    raise RuntimeError(f"/tokenize never returned {n_tokens} tokens")


@dataclass
class CellLoad:
    """What one cell sends."""

    base_url: str
    endpoint: str  # "completions" | "chat"
    output_tokens: int
    concurrency: int
    fixed_fields: dict[str, Any]
    extra_body: dict[str, Any]
    timeout_s: float
    max_retries: int
    model: str = "omni"
    api_prefix: str = "/v1"
    progress: Any = None  # callable(record) after each finished request
    on_phase: Any = None  # callable("warming" | "measuring") as the cell moves on (the live display)
    abort: threading.Event = field(default_factory=threading.Event)


class StreamError(Exception):
    """The server reported an error inside the stream."""


def _dropped(err: BaseException) -> bool:
    """A keep-alive connection the server closed under us (not a refused or timed-out one)."""
    cause = err.__cause__ or err
    if isinstance(cause, httpx2.ConnectError | httpx2.TimeoutException):
        return False
    return isinstance(cause, httpx2.RemoteProtocolError | httpx2.ReadError | httpx2.WriteError
                      | ConnectionResetError)


def _one_line(err: BaseException) -> str:
    if isinstance(err, openai.APIStatusError):
        return f"HTTP {err.status_code}: {str(err.message)[:200]}"
    if isinstance(err, StreamError):
        return str(err)
    cause = err.__cause__ or err
    return f"{type(cause).__name__}: {str(cause)[:200] or type(err).__name__}"


class Client:
    """One sync OpenAI client per server launch (building one costs ~70 ms of TLS setup), over
    a connection pool as large as the launch's highest concurrency."""

    def __init__(self, base_url: str, api_prefix: str = "/v1", pool: int = 1, timeout_s: float = 600) -> None:
        self.http = httpx2.Client(
            limits=httpx2.Limits(max_connections=pool, max_keepalive_connections=pool),
            timeout=httpx2.Timeout(timeout_s, connect=10.0),
        )
        self.api = openai.OpenAI(
            base_url=base_url + api_prefix, api_key="omni-bench", max_retries=0,
            http_client=self.http, timeout=timeout_s,
        )
        self.load: CellLoad | None = None

    def close(self) -> None:
        self.api.close()

    def body(self, prompt: Any) -> bytes:
        """The whole JSON request body for `prompt`, serialised once, before any clock starts."""
        ld = self.load
        assert ld is not None
        if ld.endpoint == "chat":
            head: dict[str, Any] = {"model": ld.model, "messages": [{"role": "user", "content": prompt}]}
        else:
            head = {"model": ld.model, "prompt": prompt}
        return json.dumps({**head, "max_tokens": ld.output_tokens, "stream": True,
                           "stream_options": {"include_usage": True}, **ld.fixed_fields,
                           **ld.extra_body}).encode()

    def _send(self, body: bytes) -> Any:
        """The openai client's own streaming POST of a ready body: the response, headers read,
        body not yet (the caller closes it). HTTP >= 400 raises APIStatusError, a transport
        failure APIConnectionError, as `create` would."""
        ld = self.load
        assert ld is not None
        path = "/chat/completions" if ld.endpoint == "chat" else "/completions"
        return self.api.post(path, cast_to=httpx2.Response, content=body, stream=True)

    def request(self, rec: RequestRecord, body: bytes, t_cell: float) -> RequestRecord:
        """Send one streamed request (`body` from `Client.body`); fill `rec` in place."""
        t0 = time.perf_counter()
        rec.start_ms = (t0 - t_cell) * 1000
        assert self.load is not None
        for attempt in range(self.load.max_retries + 1):
            resp = None
            try:
                resp = self._send(body)
                self._consume(resp, rec, t0)
                break
            except (openai.APIConnectionError, httpx2.RequestError, OSError) as err:
                if resp is None and attempt < self.load.max_retries and _dropped(err):
                    rec.retries += 1
                    continue
                rec.error = _one_line(err)
                break
            except (openai.APIStatusError, StreamError, ValueError) as err:
                rec.error = _one_line(err)
                break
            finally:
                if resp is not None:
                    resp.close()
        return rec

    def _consume(self, resp: Any, rec: RequestRecord, t0: float) -> None:
        """Per chunk: one clock read, one split, one json.loads per SSE line. Nothing else."""
        clock = time.perf_counter
        loads = json.loads
        chat = self.load is not None and self.load.endpoint == "chat"
        times: list[float] = []
        t_content: float | None = None
        usage = timings = None
        buf = b""
        coalesced = 0  # token events that arrived in the same read as the previous one
        for chunk in resp.iter_bytes():
            now = clock()
            buf += chunk
            if b"\n" not in chunk:
                continue
            *lines, buf = buf.split(b"\n")
            before = len(times)
            for line in lines:
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    break
                obj = loads(payload)
                if "error" in obj:
                    raise StreamError(f"server error in stream: {str(obj['error'])[:200]}")
                if obj.get("usage"):
                    usage = obj["usage"]
                if "timings" in obj:
                    timings = obj["timings"]
                choices = obj.get("choices")
                if not choices:
                    continue
                c0 = choices[0]
                if chat:
                    delta = c0.get("delta") or {}
                    content = delta.get("content")
                    if content or delta.get("reasoning_content") or delta.get("tool_calls"):
                        times.append(now)
                        if content and t_content is None:
                            t_content = now
                elif c0.get("text"):
                    times.append(now)
                    if t_content is None:
                        t_content = now
            coalesced += max(0, len(times) - before - 1)
        rec.burst = len(times) > 2 and 2 * coalesced > len(times) - 1
        _finish(rec, times, t0, t_content, clock(), usage, timings)


def _finish(rec: RequestRecord, times: list[float], t0: float, t_content: float | None, t_end: float,
            usage: dict[str, Any] | None, timings: dict[str, Any] | None) -> None:
    rec.client_tokens = len(times)
    rec.e2e_ms = (t_end - t0) * 1000
    if usage:
        rec.input_tokens = usage.get("prompt_tokens")
        rec.output_tokens = usage.get("completion_tokens")
    if rec.output_tokens is None:
        rec.output_tokens = rec.client_tokens
    rec.token_count_mismatch = rec.output_tokens != rec.client_tokens
    if times:
        rec.ttft_ms = (times[0] - t0) * 1000
        rec.ttft_content_ms = (t_content - t0) * 1000 if t_content is not None else None
        rec.itl_ms = [round((b - a) * 1000, 4) for a, b in itertools.pairwise(times)]
        n_in = rec.input_tokens or rec.input_tokens_asked
        rec.prefill_tps = n_in / (times[0] - t0) if times[0] > t0 and n_in else None
        if rec.output_tokens and rec.output_tokens > 1:
            rec.tpot_ms = (rec.e2e_ms - rec.ttft_ms) / (rec.output_tokens - 1)
            span = times[-1] - times[0]
            rec.decode_tps = (rec.output_tokens - 1) / span if span > 0 else None
    if timings:
        rec.server_timings = {k: float(v) for k, v in timings.items() if isinstance(v, int | float)}
        rec.server_decode_tps = decode_rate(rec.server_timings)
        rec.server_prefill_tps = timings.get("prompt_per_second")
        server_ms = rec.server_timings.get("predicted_ms")
        if server_ms and len(times) > 2 and (times[-1] - times[0]) * 1000 < 0.5 * server_ms:
            rec.burst = True  # decoding took twice as long as the tokens took to reach us

    rec.ok = not rec.error and bool(times)
    if not times and not rec.error:
        rec.error = "stream ended without a token"


Prompts = list[tuple[Any, int]]


def _threads(n: int, target: Any) -> None:
    ts = [threading.Thread(target=target, daemon=True, name=f"omni-load-{i}") for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def run_cell(load: CellLoad, prompts: Prompts, n_warmup: int,
             client: Client | None = None) -> tuple[list[RequestRecord], float]:
    """Warm-up, then the measured requests with `concurrency` worker threads (each thread sends its
    next request as soon as the previous one ends: a closed loop). Returns (records, wall s)."""
    own = client is None
    if client is None:
        client = Client(load.base_url, load.api_prefix, load.concurrency, load.timeout_s)
    client.load = load
    records: list[RequestRecord] = []
    try:
        bodies = [(client.body(p), n) for p, n in prompts]
        t_cell = time.perf_counter()
        warm = [RequestRecord(index=i, warmup=True, input_tokens_asked=n)
                for i, (_b, n) in enumerate(bodies[:n_warmup])]
        todo = list(zip(warm, (b for b, _n in bodies[:n_warmup]), strict=True))

        def send_warm() -> None:
            while todo:
                rec, body = todo.pop()
                client.request(rec, body, t_cell)

        if todo and load.on_phase:
            load.on_phase("warming")
        _threads(min(load.concurrency, len(todo)), send_warm)
        records += warm
        queue = deque(enumerate(bodies[n_warmup:], start=n_warmup))
        measured: list[RequestRecord] = []

        def worker() -> None:
            while not load.abort.is_set():
                try:
                    i, (body, n) = queue.popleft()
                except IndexError:
                    return
                rec = RequestRecord(index=i, input_tokens_asked=n)
                client.request(rec, body, t_cell)
                measured.append(rec)
                if load.progress:
                    load.progress(rec)

        if load.on_phase:
            load.on_phase("measuring")
        t_start = time.perf_counter()
        _threads(load.concurrency, worker)
        wall = time.perf_counter() - t_start
        measured += [RequestRecord(index=i, input_tokens_asked=n, error="not sent: cell aborted")
                     for i, (_p, n) in queue]
        records += sorted(measured, key=lambda r: r.index)
    finally:
        if own:
            client.close()
    return records, wall
