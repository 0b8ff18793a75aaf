"""Measurement overhead of our load client: decode rate vs the server's own timings, client CPU.

    python -m benchmarks.overhead [--requests 48] [--output-tokens 256] [--threads N]

Starts a real xllamacpp server on a generated Llama sized to decode a few hundred tokens/s on this
machine, then for concurrency 1, 4 and 16 runs the same closed-loop workload the sweep runs and
prints one table row per concurrency:
  ours       mean per-request client decode rate, (output_tokens - 1) / (t_last - t_first)
  server     mean of the server's own rate for the same requests, (timings.predicted_n - 1) /
             timings.predicted_ms (omni.llamacpp.decode_rate; xllamacpp's predicted_per_second)
  ratio      ours / server (target >= 0.98)
  cpu/1k     client CPU seconds (our whole process) per 1000 generated tokens
Requests whose tokens arrived in bursts (see RequestRecord.burst) are counted and left out of the
ratio; the `all` column gives the ratio over every request.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.engines.base import Launch
from bench.genmodel.cache import ensure_model
from bench.genmodel.shape import ModelShape
from bench.load import CellLoad, Client, make_prompt, run_cell
from bench.server import ServerProcess, free_port

SHAPE = ModelShape(n_embd=512, n_layer=4, n_ff=1408, n_head=8, n_head_kv=4, n_vocab=4096)
CONCURRENCY = (1, 4, 16)
TARGET = 0.98


def measure(base: str, client: Client, conc: int, requests: int, n_in: int, n_out: int) -> dict:
    rng = random.Random(conc)
    prompts = [make_prompt(base, n_in, rng, False) for _ in range(conc + requests)]
    load = CellLoad(base_url=base, endpoint="completions", output_tokens=n_out, concurrency=conc,
                    fixed_fields={"ignore_eos": True}, extra_body={"cache_prompt": False}, timeout_s=600,
                    max_retries=3)
    run_cell(load, prompts[:conc], conc, client)  # warm-up at this concurrency, not measured
    cpu0, t0 = time.process_time(), time.perf_counter()
    records, wall = run_cell(load, prompts[conc:], 0, client)
    cpu, elapsed = time.process_time() - cpu0, time.perf_counter() - t0
    ok = [r for r in records if r.ok]
    timed = [r for r in ok if not r.burst]
    tokens = sum(r.output_tokens or 0 for r in ok)
    ours = statistics.mean(r.decode_tps for r in timed) if timed else float("nan")
    server = statistics.mean(r.server_decode_tps for r in timed) if timed else float("nan")
    all_ratio = statistics.mean(r.decode_tps for r in ok) / statistics.mean(r.server_decode_tps for r in ok)
    return {
        "conc": conc, "requests": len(ok), "errors": len(records) - len(ok), "tokens": tokens,
        "ours": ours, "server": server, "ratio": ours / server, "all": all_ratio,
        "bursts": len(ok) - len(timed), "retries": sum(r.retries for r in records),
        "throughput": tokens / wall, "cpu_per_1k": cpu / tokens * 1000, "cpu_pct": 100 * cpu / elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=48, help="measured requests per concurrency")
    p.add_argument("--input-tokens", type=int, default=64)
    p.add_argument("--output-tokens", type=int, default=256)
    p.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                   help="server compute threads (default: half the cores, leaving the rest to the client)")
    a = p.parse_args(argv)
    console = Console(highlight=False, width=max(160, Console().width))
    model = ensure_model(SHAPE)
    port = free_port()
    ctx = max(CONCURRENCY) * (a.input_tokens + a.output_tokens + 64)
    argv_ = [sys.executable, "-m", "bench.xllamacpp_server", "-m", str(model), "--port", str(port),
             "-t", str(a.threads), "-np", str(max(CONCURRENCY)), "-c", str(ctx), "--no-warmup"]
    launch = Launch(argv=argv_, env={}, prefix=[], base_url=f"http://127.0.0.1:{port}")
    with tempfile.TemporaryDirectory() as tmp:
        srv = ServerProcess(launch, Path(tmp) / "server.log")
        srv.start()
        try:
            ok, reason = srv.wait_healthy(120)
            if not ok:
                console.print(f"server did not start: {reason}\n{srv.log_tail()}")
                return 1
            client = Client(launch.base_url, pool=max(CONCURRENCY))
            results = [measure(launch.base_url, client, c, max(a.requests, 2 * c), a.input_tokens,
                               a.output_tokens) for c in CONCURRENCY]
            client.close()
        finally:
            srv.stop(10)
    table = Table(title=f"client overhead: {model.name}, server -t {a.threads}, {os.cpu_count()} cores, "
                        f"in {a.input_tokens} / out {a.output_tokens} tokens")
    for col in ("conc", "requests", "ours tok/s", "server tok/s", "ratio", "all", "bursts", "retries",
                "throughput tok/s", "cpu s/1k tok", "client cpu %"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(str(r["conc"]), f"{r['requests']} ({r['errors']} err)", f"{r['ours']:.1f}",
                      f"{r['server']:.1f}", f"{r['ratio']:.4f}", f"{r['all']:.4f}", str(r["bursts"]),
                      str(r["retries"]), f"{r['throughput']:.1f}", f"{r['cpu_per_1k']:.4f}",
                      f"{r['cpu_pct']:.1f}")
    console.print(table)
    worst = min(r["ratio"] for r in results)
    verdict = "meets" if worst >= TARGET else "MISSES"
    console.print(f"lowest ours/server ratio {worst:.4f}: {verdict} the >= {TARGET} target")
    return 0 if worst >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
