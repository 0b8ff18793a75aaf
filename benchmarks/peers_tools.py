"""The three clients compared by `benchmarks.peers`: how each is started, and how its result is read.

Every tool gets the same workload: `/v1/completions`, streamed, prompts of `input` tokens,
exactly `output` tokens out (`max_tokens` + `ignore_eos`), fixed concurrency, a fixed request
count, no warm-up, `cache_prompt: false` (llama.cpp would otherwise reuse the KV cache of a
prompt a previous run already sent, and tools with fixed seeds resend the same prompts). Each
peer runs with its documented options for that (GuideLLM: synthetic_text data + max_requests
constraint; AIPerf: --isl/--osl with zero stddev, --request-count, and --use-server-token-count
so its token counts come from the server like ours do).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NO_CACHE = {"cache_prompt": False}


@dataclass
class Workload:
    url: str
    concurrency: int
    requests: int
    input_tokens: int
    output_tokens: int


@dataclass
class ToolResult:
    throughput_tps: float | None
    ttft_ms_p50: float | None
    ttft_ms_p90: float | None
    itl_ms_p50: float | None
    ok_requests: int
    errors: int
    output_tokens: int | None
    extra: dict[str, Any] = field(default_factory=dict)  # ours: send delay, TTFT from the send


@dataclass
class Context:
    venv: Path  # the peers' virtual environment
    hf_home: Path  # HF cache holding the converted tokenizer as repo `tokenizer_repo`
    tokenizer_repo: str
    tokenizer_dir: Path


def _offline_env(ctx: Context, base: dict[str, str]) -> dict[str, str]:
    # The peers only ever load the local tokenizer; offline mode keeps them off the network.
    return {**base, "HF_HOME": str(ctx.hf_home), "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
            "TRANSFORMERS_OFFLINE": "1", "DO_NOT_TRACK": "1", "NO_COLOR": "1"}


class Ours:
    """`bench.load` as it is: the openai client's low-level streaming POST of a ready body."""

    name = "ours"
    client = "lowlevel"

    def command(self, w: Workload, out: Path, ctx: Context, env: dict[str, str]) -> tuple[list[str], dict]:
        argv = [sys.executable, "-m", "benchmarks.peers_ours", "--url", w.url, "--concurrency",
                str(w.concurrency), "--requests", str(w.requests), "--input-tokens", str(w.input_tokens),
                "--output-tokens", str(w.output_tokens), "--seed", str(w.concurrency),
                "--extra-body", json.dumps(NO_CACHE), "--client", self.client,
                "--out", str(out / "ours.json")]
        return argv, env

    def result(self, out: Path) -> ToolResult:
        d = json.loads((out / "ours.json").read_text())
        # ITL as the peers define it (per-request mean gap); results.csv's itl_ms_p50 pools all gaps
        extra = {k: d.get(k) for k in ("send_ms_p50", "send_ms_p90", "ttft_sent_ms_p50", "ttft_sent_ms_p90")}
        return ToolResult(d["throughput_tps"], d["ttft_ms_p50"], d["ttft_ms_p90"], d["itl_req_ms_p50"],
                          d["ok_requests"], d["errors"], d["output_tokens_total"], extra)


class OursCreate(Ours):
    """`bench.load` before the TTFT fix: `completions.with_streaming_response.create(prompt=ids)`."""

    name, client = "ours-create", "create"


class OursExtraBody(Ours):
    """`create` with the token ids in `extra_body` (skips the openai client's transform of them)."""

    name, client = "ours-extrabody", "extra-body"


class OursRawPost(Ours):
    """The same client with the request sent by httpx alone (no openai client in the path)."""

    name, client = "ours-rawpost", "rawpost"


class GuideLLM:
    name = "guidellm"

    def command(self, w: Workload, out: Path, ctx: Context, env: dict[str, str]) -> tuple[list[str], dict]:
        argv = [
            str(ctx.venv / "bin" / "guidellm"), "run",
            "--backend", json.dumps({"kind": "openai_http", "target": w.url,
                                     "request_format": "/v1/completions", "extras": {"body": NO_CACHE}}),
            "--profile", f"kind=concurrent,streams={w.concurrency}",
            "--constraint", f"kind=max_requests,count={w.requests}",
            "--data", f"kind=synthetic_text,prompt_tokens={w.input_tokens},output_tokens={w.output_tokens}",
            "--tokenizer", f"kind=huggingface_auto,model={ctx.tokenizer_dir}",
            "--output", f"kind=json,path={out / 'guidellm.json'}",
            "--disable-console-interactive",
        ]
        return argv, _offline_env(ctx, env)

    def result(self, out: Path) -> ToolResult:
        b = json.loads((out / "guidellm.json").read_text())["benchmarks"][0]["metrics"]

        def pct(metric: str, q: str) -> float | None:
            return b[metric]["successful"]["percentiles"].get(q)

        totals = b["request_totals"]
        return ToolResult(
            b["output_tokens_per_second"]["successful"]["mean"],
            pct("time_to_first_token_ms", "p50"), pct("time_to_first_token_ms", "p90"),
            pct("inter_token_latency_ms", "p50"),
            int(totals["successful"]), int(totals["errored"]) + int(totals["incomplete"]),
            int(b["output_token_count"]["successful"]["total_sum"]),
        )


class AIPerf:
    name = "aiperf"

    def command(self, w: Workload, out: Path, ctx: Context, env: dict[str, str]) -> tuple[list[str], dict]:
        argv = [
            str(ctx.venv / "bin" / "aiperf"), "profile", "--model", "omni", "--tokenizer", ctx.tokenizer_repo,
            "--url", w.url, "--endpoint-type", "completions", "--streaming",
            "--concurrency", str(w.concurrency), "--request-count", str(w.requests),
            "--isl", str(w.input_tokens), "--isl-stddev", "0",
            "--osl", str(w.output_tokens), "--osl-stddev", "0",
            "--extra-inputs", "ignore_eos:true", "--extra-inputs", "cache_prompt:false",
            "--random-seed", str(w.concurrency), "--use-legacy-max-tokens", "--use-server-token-count",
            "--artifact-dir", str(out / "aiperf"), "--ui", "none",
            "--no-gpu-telemetry", "--no-server-metrics",
        ]
        return argv, _offline_env(ctx, env)

    def result(self, out: Path) -> ToolResult:
        d: dict[str, Any] = json.loads((out / "aiperf" / "profile_export_aiperf.json").read_text())
        done = int(d["request_count"]["avg"])  # successful; completed_request_count includes errors
        errs = sum(int(e.get("count", 1)) for e in d.get("error_summary") or [])
        return ToolResult(
            d["output_token_throughput"]["avg"], d["time_to_first_token"]["p50"],
            d["time_to_first_token"]["p90"], d["inter_token_latency"]["p50"], done, errs,
            int(d.get("total_output_tokens", {}).get("avg") or 0),
        )


TOOLS = {t.name: t for t in (Ours(), OursCreate(), OursExtraBody(), OursRawPost(), GuideLLM(), AIPerf())}
