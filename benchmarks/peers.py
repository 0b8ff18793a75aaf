"""Our load generator vs GuideLLM and AIPerf on one real server: accuracy and client CPU per token.

    python -m benchmarks.peers [--requests 64] [--concurrency 1 4 16] [--tools ours guidellm aiperf]
                               [--out DIR]

Starts xllamacpp (`python -m bench.xllamacpp_server`, 1 compute thread, 16 slots) on a generated
model on 127.0.0.1, then runs every tool with the same workload at each concurrency, one after
the other (tool order rotates per concurrency). Each tool is judged against the server's own
log for the requests it sent (see `peers_server`): output tokens/s over the server's busy
window, TTFT vs the prompt-eval time, ITL vs the per-request decode time. Client CPU is the
tool's whole process tree (`peers_cpu`): in total, and inside the server's busy window.
The peers live in their own venv (`.cache/perf-venv`), made on first use.

`--tools ours ours-create ours-extrabody ours-rawpost` compares our own request paths (see
`peers_ours.CLIENTS`); for those a second table gives the send delay (call -> request on the
wire, from an httpx request hook) and TTFT's deviation with the clock started at the call and
at the send.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.engines.base import Launch
from bench.genmodel.cache import ensure_model
from bench.genmodel.shape import ModelShape
from bench.server import ServerProcess, free_port, http_json
from benchmarks.peers_cpu import run_measured
from benchmarks.peers_server import ServerView, parse_log, summarize_server
from benchmarks.peers_setup import ensure_tokenizer, ensure_venv
from benchmarks.peers_tools import TOOLS, Context, ToolResult, Workload

# ~400 tokens/s single-stream decode with 1 thread on the 2-core reference machine
SHAPE = ModelShape(n_embd=512, n_layer=8, n_ff=1536, n_head=8, n_head_kv=4, n_vocab=4096)
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TOOLS = ["ours", "guidellm", "aiperf"]


def _log_slice(path: Path, start: int) -> str:
    with path.open("rb") as f:
        f.seek(start)
        return f.read().decode(errors="replace")


def _marker(url: str, log: Path) -> tuple[int, float]:
    """(log offset, wall-clock minus server-clock offset) from one 1-token request."""
    time.sleep(0.3)
    start = log.stat().st_size
    t_send = time.time()
    http_json(f"{url}/v1/completions", {"prompt": "marker", "max_tokens": 1})
    time.sleep(0.3)  # let the log writer flush
    reqs = parse_log(_log_slice(log, start))
    if not reqs:
        raise SystemExit(f"no request lines in the server log {log}: is the server logging at info level?")
    return log.stat().st_size, t_send - reqs[-1].t_launch


def _dev(tool: float | None, ref: float | None) -> float | None:
    if tool is None or ref is None or ref == 0:
        return None
    return 100 * (tool - ref) / ref


def run_one(tool_name: str, w: Workload, ctx: Context, out: Path, log: Path) -> dict:
    tool = TOOLS[tool_name]
    run_dir = out / f"c{w.concurrency}-{tool_name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    offset_pos, clock = _marker(w.url, log)
    argv, env = tool.command(w, run_dir, ctx, dict(os.environ))
    m = run_measured(argv, env, run_dir / "client.log", timeout_s=1800, cwd=ROOT)
    time.sleep(0.3)
    reqs = parse_log(_log_slice(log, offset_pos))
    server: ServerView | None = summarize_server(reqs)
    res: ToolResult | None = None
    failure = ""
    try:
        res = tool.result(run_dir)
    except (OSError, KeyError, ValueError, IndexError, TypeError) as err:
        failure = f"{type(err).__name__}: {err} (exit {m.returncode}, see {run_dir / 'client.log'})"
    tokens = server.output_tokens if server else 0
    window_cpu = (m.cpu_between(server.t_first + clock, server.t_last + clock) if server else None)
    row = {
        "tool": tool_name, "concurrency": w.concurrency, "requests": w.requests, "exit": m.returncode,
        "failure": failure, "wall_s": m.wall_s, "cpu_s": m.cpu_s, "window_cpu_s": window_cpu,
        "max_procs": m.max_procs, "orphans": m.orphans, "argv": argv,
        "server": asdict(server) if server else None, "tool_result": asdict(res) if res else None,
        "cpu_s_per_1k": 1000 * m.cpu_s / tokens if tokens else None,
        "window_cpu_s_per_1k": 1000 * window_cpu / tokens if tokens and window_cpu is not None else None,
    }
    if res and server:
        row |= {
            "tps_dev": _dev(res.throughput_tps, server.throughput_tps),
            "ttft_p50_dev_ms": res.ttft_ms_p50 - server.ttft_ms_p50 if res.ttft_ms_p50 else None,
            "ttft_p90_dev_ms": res.ttft_ms_p90 - server.ttft_ms_p90 if res.ttft_ms_p90 else None,
            "itl_p50_dev": _dev(res.itl_ms_p50, server.itl_ms_p50),
        }
        for q in ("p50", "p90"):  # ours only: TTFT as if its clock started when the request left
            sent = res.extra.get(f"ttft_sent_ms_{q}")
            ref = getattr(server, f"ttft_ms_{q}")
            row[f"ttft_sent_{q}_dev_ms"] = sent - ref if sent is not None else None
    (run_dir / "row.json").write_text(json.dumps(row, indent=1, default=str))
    return row


def _f(x: float | None, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


def table(rows: list[dict]) -> Table:
    t = Table(title="Client accuracy and CPU vs the server's own log (same server, same workload)")
    cols = ["c", "tool", "out tok/s (server)", "dev", "TTFT p50 ms (server)", "Δ", "TTFT p90 ms (server)",
            "Δ", "ITL p50 ms (server)", "dev", "CPU s/1k tok", "in-window", "procs", "errors"]
    for c in cols:
        t.add_column(c, justify="left" if c == "tool" else "right")
    for r in rows:
        res, srv = r["tool_result"] or {}, r["server"] or {}
        t.add_row(
            str(r["concurrency"]), r["tool"],
            f"{_f(res.get('throughput_tps'), '.1f')} ({_f(srv.get('throughput_tps'), '.1f')})",
            _f(r.get("tps_dev"), "+.1f") + "%",
            f"{_f(res.get('ttft_ms_p50'), '.1f')} ({_f(srv.get('ttft_ms_p50'), '.1f')})",
            _f(r.get("ttft_p50_dev_ms"), "+.1f"),
            f"{_f(res.get('ttft_ms_p90'), '.1f')} ({_f(srv.get('ttft_ms_p90'), '.1f')})",
            _f(r.get("ttft_p90_dev_ms"), "+.1f"),
            f"{_f(res.get('itl_ms_p50'), '.2f')} ({_f(srv.get('itl_ms_p50'), '.2f')})",
            _f(r.get("itl_p50_dev"), "+.1f") + "%",
            _f(r.get("cpu_s_per_1k"), ".3f"), _f(r.get("window_cpu_s_per_1k"), ".3f"), str(r["max_procs"]),
            str(res.get("errors", "—")) + (" (run failed)" if r["failure"] else ""),
        )
    return t


def send_table(rows: list[dict]) -> Table | None:
    """Our request paths only: how long each took to put a request on the wire, and TTFT's
    deviation with the clock started at the call (what a user waits) and at the send."""
    ours = [r for r in rows if r["tool_result"] and r["tool_result"].get("extra")]
    if not ours:
        return None
    t = Table(title="Our request paths: send delay and TTFT deviation from the call / from the send")
    for c in ("c", "tool", "send ms p50", "p90", "TTFT p50 Δ call", "send", "TTFT p90 Δ call", "send"):
        t.add_column(c, justify="left" if c == "tool" else "right")
    for r in ours:
        x = r["tool_result"]["extra"]
        t.add_row(str(r["concurrency"]), r["tool"],
                  _f(x.get("send_ms_p50"), ".2f"), _f(x.get("send_ms_p90"), ".2f"),
                  _f(r.get("ttft_p50_dev_ms"), "+.1f"), _f(r.get("ttft_sent_p50_dev_ms"), "+.1f"),
                  _f(r.get("ttft_p90_dev_ms"), "+.1f"), _f(r.get("ttft_sent_p90_dev_ms"), "+.1f"))
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=64, help="measured requests per tool and concurrency")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--input-tokens", type=int, default=128)
    ap.add_argument("--output-tokens", type=int, default=128)
    ap.add_argument("--tools", nargs="+", default=DEFAULT_TOOLS, choices=list(TOOLS),
                    help="ours-create, ours-extrabody, ours-rawpost: our client's other request paths")
    ap.add_argument("--venv", type=Path, default=ROOT / ".cache" / "perf-venv")
    ap.add_argument("--out", type=Path, default=None, help="run folder (default .cache/perf/peers-<time>)")
    a = ap.parse_args(argv)
    console = Console(width=220)
    cache = ROOT / ".cache" / "perf"
    out = a.out or cache / time.strftime("peers-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    console.print(f"peers venv {a.venv} (created on first use, log {out / 'venv.log'})")
    ensure_venv(a.venv, out / "venv.log")
    model = ensure_model(SHAPE, cache)
    repo, tok_dir = ensure_tokenizer(a.venv, model, cache / "hf")
    ctx = Context(a.venv, cache / "hf", repo, tok_dir)
    slots = max(a.concurrency)
    port = free_port()
    n_ctx = slots * (a.input_tokens + a.output_tokens + 64)
    server_argv = [sys.executable, "-m", "bench.xllamacpp_server", "-m", str(model), "--host", "127.0.0.1",
                   "--port", str(port), "-t", "1", "-np", str(slots), "-c", str(n_ctx)]
    log = out / "server.log"
    srv = ServerProcess(Launch(server_argv, {}, [], f"http://127.0.0.1:{port}"), log)
    rows: list[dict] = []
    try:
        srv.start()
        ok, why = srv.wait_healthy(120)
        if not ok:
            raise SystemExit(f"server did not start: {why}; see {log}")
        url = f"http://127.0.0.1:{port}"
        for _ in range(4):  # warm the server before any tool is measured
            http_json(f"{url}/v1/completions", {"prompt": "warm up", "max_tokens": 32, "ignore_eos": True})
        console.print(f"server: {' '.join(server_argv)}")
        for i, c in enumerate(a.concurrency):
            order = a.tools[i % len(a.tools):] + a.tools[:i % len(a.tools)]
            for name in order:
                w = Workload(url, c, a.requests, a.input_tokens, a.output_tokens)
                row = run_one(name, w, ctx, out, log)
                rows.append(row)
                console.print(f"c={c} {name}: exit {row['exit']}, {row['wall_s']:.1f} s wall, "
                              f"{row['cpu_s']:.2f} s CPU {row['failure']}")
    finally:
        srv.stop(30)
    rows.sort(key=lambda r: (r["concurrency"], a.tools.index(r["tool"])))
    (out / "peers.json").write_text(json.dumps(rows, indent=1, default=str))
    console.print(table(rows))
    if (st := send_table(rows)) is not None:
        console.print(st)
    console.print(f"model {model.name} ({SHAPE.model_dump_json()}), {a.requests} requests x "
                  f"{a.input_tokens} in / {a.output_tokens} out per tool and concurrency; rows in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
