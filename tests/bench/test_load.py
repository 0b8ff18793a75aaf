"""The load client against real servers: exact lengths, metrics vs the server's own timings,
chat streams, and keep-alive connections dropped by a real loopback proxy."""

from __future__ import annotations

import random
import socket
import statistics
import threading
from pathlib import Path

import pytest

from bench.load import CellLoad, make_prompt, run_cell
from bench.metrics import summarize

pytestmark = pytest.mark.slow


def cell(base: str, **kw) -> CellLoad:
    args = dict(base_url=base, endpoint="completions", output_tokens=48, concurrency=1,
                fixed_fields={"ignore_eos": True}, extra_body={}, timeout_s=60, max_retries=3)
    return CellLoad(**{**args, **kw})


def prompts(base: str, n: int, tokens: int, chat: bool = False) -> list:
    rng = random.Random(7)
    return [make_prompt(base, tokens, rng, chat) for _ in range(n)]


def test_metrics_match_the_servers_own_timings(small_model: Path, start_server):
    base = start_server(small_model, "-t", "1", "-np", "4", "-c", "4096")
    for conc in (1, 4):
        ps = prompts(base, 1 + 8, 40)
        assert all(n == 40 and len(p) == 40 for p, n in ps)
        recs, wall = run_cell(cell(base, concurrency=conc), ps, 1)
        measured = [r for r in recs if not r.warmup]
        assert len(measured) == 8 and all(r.ok for r in measured), [r.error for r in recs]
        for r in measured:
            assert r.input_tokens == 40 and r.output_tokens == 48 and r.client_tokens == 48
            assert not r.token_count_mismatch and len(r.itl_ms) == 47
            t = r.server_timings
            assert r.ttft_ms >= t["prompt_ms"]  # the client's first token includes the prefill
            assert r.e2e_ms >= t["prompt_ms"] + t["predicted_ms"]
        # a request whose tokens reached us in bursts (client or server thread starved of CPU by
        # other processes) has no client decode time: flagged, left out of decode_tps, counted
        timed = [r for r in measured if not r.burst]
        assert len(timed) >= 2, "almost every stream arrived in bursts: is the machine overloaded?"
        ratios = [r.decode_tps / r.server_decode_tps for r in timed]
        assert statistics.median(ratios) == pytest.approx(1.0, abs=0.1), ratios
        row = summarize(recs, wall)
        assert row["ok_requests"] == 8 and row["errors"] == 0
        assert row["burst_requests"] == 8 - len(timed)
        server_timed = statistics.mean(r.server_decode_tps for r in timed)
        assert row["decode_tps"] == pytest.approx(server_timed, rel=0.25)
        assert row["throughput_tps"] == pytest.approx(8 * 48 / wall)
        assert row["ttft_ms_p50"] <= row["ttft_ms_p90"] <= row["ttft_ms_p99"]
        assert row["decode_tps_ci95_lo"] < row["decode_tps"] < row["decode_tps_ci95_hi"]


def test_chat_endpoint_streams_content(tiny_model: Path, start_server):
    base = start_server(tiny_model, "-t", "1", "-np", "2", "-c", "2048")
    ps = prompts(base, 3, 24, chat=True)
    assert all(isinstance(p, str) and n == 24 for p, n in ps)
    recs, _ = run_cell(cell(base, endpoint="chat", output_tokens=16, concurrency=2), ps, 1)
    for r in recs:
        assert r.ok and r.output_tokens == 16 and r.client_tokens == 16
        assert r.ttft_content_ms == r.ttft_ms  # no reasoning stream on this model
        assert r.input_tokens > 24  # the chat template adds its own tokens


class DroppingProxy:
    """Forwards one request per client connection, then closes the connection when a second
    request arrives on it without answering: what a server dropping keep-alive connections does."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.dropped = 0
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        up = socket.create_connection(self.upstream)
        answered = threading.Event()

        def pump_back() -> None:
            try:
                while data := up.recv(65536):
                    answered.set()
                    client.sendall(data)
            except OSError:
                pass

        threading.Thread(target=pump_back, daemon=True).start()
        try:
            while data := client.recv(65536):
                if answered.is_set():  # a second request on this keep-alive connection
                    self.dropped += 1
                    break
                up.sendall(data)
        except OSError:
            pass
        for s in (client, up):
            s.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def test_dropped_keepalive_connections_are_retried_and_counted(tiny_model: Path, start_server):
    base = start_server(tiny_model, "-t", "1", "-np", "2", "-c", "2048")
    proxy = DroppingProxy(("127.0.0.1", int(base.rsplit(":", 1)[1])))
    try:
        pbase = f"http://127.0.0.1:{proxy.port}"
        ps = prompts(base, 1 + 10, 16)
        recs, wall = run_cell(cell(pbase, output_tokens=8, concurrency=2), ps, 1)
        assert all(r.ok for r in recs), [r.error for r in recs]
        row = summarize(recs, wall)
        assert row["dropped_connections"] == proxy.dropped > 0
        # without retries the same drops are errors on the row, never hidden
        recs, wall = run_cell(cell(pbase, output_tokens=8, concurrency=2, max_retries=0), ps, 1)
        row = summarize(recs, wall)
        assert row["errors"] > 0 and row["dropped_connections"] == 0
        failed = [r for r in recs if not r.ok]
        dropped = ("Server disconnected without sending a response", "Connection reset by peer")
        assert all(any(d in r.error for d in dropped) for r in failed), [r.error for r in failed]
    finally:
        proxy.close()


def test_refused_connection_is_an_error_not_a_retry():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    recs, _ = run_cell(cell(f"http://127.0.0.1:{port}"), [([1, 2, 3], 3)], 0)
    assert not recs[0].ok and recs[0].retries == 0 and "Connect" in recs[0].error


def test_an_http_error_is_one_line_on_the_row_not_a_retry(tiny_model: Path, start_server):
    """The server refusing a request (HTTP 400 for a token id outside the vocabulary) comes back
    through the openai client's status-error mapping: one line with the code and message."""
    base = start_server(tiny_model, "-t", "1", "-np", "1", "-c", "1024")
    good, _ = run_cell(cell(base, output_tokens=4), prompts(base, 1, 8), 0)
    assert good[0].ok and good[0].output_tokens == 4
    # its own cell: a fresh connection, so a kept-alive one the server dropped cannot add a retry
    (bad,), _ = run_cell(cell(base, output_tokens=4), [([1, 10**8], 2)], 0)
    assert not bad.ok and bad.retries == 0 and bad.ttft_ms is None
    assert bad.error.startswith("HTTP 400: ") and "invalid tokens" in bad.error and "\n" not in bad.error
