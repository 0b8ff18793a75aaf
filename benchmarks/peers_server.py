"""The server's own view of a load run, from llama.cpp's log: per request prefill and decode times.

Why the log and not the responses: GuideLLM and AIPerf do not keep llama.cpp's `timings` field,
but the server logs the same numbers for every task it serves, with a timestamp since its start:

    0.05.927.392 I slot launch_slot_: id 15 | task 0 | processing task, is_child = 0
    0.06.276.333 I slot print_timing: id 15 | task 0 | prompt eval time =  36.63 ms /   8 tokens (...)
    0.06.276.382 I slot print_timing: id 15 | task 0 |        eval time = 312.27 ms / 128 tokens (...)
    0.06.276.442 I slot      release: id 15 | task 0 | stop processing: n_tokens = 135, truncated = 0

so every tool is judged against one reference it cannot influence (other than by stealing CPU).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_TS = r"^(?P<m>\d+)\.(?P<s>\d+)\.(?P<ms>\d+)\.(?P<us>\d+) \w "
_TASK = r".*?\| task (?P<task>\d+) \| "
_LAUNCH = re.compile(_TS + r"slot launch_slot_:" + _TASK + r"processing task")
_TIME = r"time =\s*(?P<ms_>[\d.]+) ms /\s*(?P<n>\d+)"
_PROMPT = re.compile(_TS + r"slot print_timing:" + _TASK + r"prompt eval " + _TIME)
_EVAL = re.compile(_TS + r"slot print_timing:" + _TASK + r"\s*eval " + _TIME)
_RELEASE = re.compile(_TS + r"slot\s+release:" + _TASK + r"stop processing")


def _seconds(m: re.Match[str]) -> float:
    return int(m["m"]) * 60 + int(m["s"]) + int(m["ms"]) / 1e3 + int(m["us"]) / 1e6


@dataclass
class ServerRequest:
    task: int
    t_launch: float  # seconds since server start: the slot started the task
    t_release: float | None = None
    prompt_ms: float | None = None
    prompt_n: int | None = None
    eval_ms: float | None = None
    eval_n: int | None = None

    @property
    def complete(self) -> bool:
        return None not in (self.t_release, self.prompt_ms, self.eval_ms, self.eval_n)

    @property
    def itl_ms(self) -> float | None:
        """Mean gap between generated tokens: eval time spans tokens 1..n, i.e. n-1 gaps."""
        if self.eval_ms is None or not self.eval_n or self.eval_n < 2:
            return None
        return self.eval_ms / (self.eval_n - 1)


def parse_log(text: str) -> list[ServerRequest]:
    """Every task the log shows being launched, in launch order, with what it logged about it."""
    reqs: dict[int, ServerRequest] = {}
    for line in text.splitlines():
        if m := _LAUNCH.match(line):
            reqs[int(m["task"])] = ServerRequest(int(m["task"]), _seconds(m))
        elif (m := _PROMPT.match(line)) and int(m["task"]) in reqs:
            r = reqs[int(m["task"])]
            r.prompt_ms, r.prompt_n = float(m["ms_"]), int(m["n"])
        elif (m := _EVAL.match(line)) and int(m["task"]) in reqs:
            r = reqs[int(m["task"])]
            r.eval_ms, r.eval_n = float(m["ms_"]), int(m["n"])
        elif (m := _RELEASE.match(line)) and int(m["task"]) in reqs:
            reqs[int(m["task"])].t_release = _seconds(m)
    return sorted(reqs.values(), key=lambda r: r.t_launch)


@dataclass
class ServerView:
    """What the server measured over one tool's run."""

    requests: int
    output_tokens: int
    window_s: float  # first task launched -> last task released
    throughput_tps: float
    ttft_ms_p50: float  # prompt eval time: slot start -> first token
    ttft_ms_p90: float
    itl_ms_p50: float  # median over requests of the mean gap between tokens
    decode_tps_mean: float  # mean over requests of (n-1)/eval time
    t_first: float
    t_last: float


def summarize_server(reqs: list[ServerRequest]) -> ServerView | None:
    done = [r for r in reqs if r.complete]
    if not done:
        return None
    t0 = min(r.t_launch for r in done)
    t1 = max(r.t_release for r in done if r.t_release is not None)
    tokens = sum(r.eval_n or 0 for r in done)
    itl = np.array([r.itl_ms for r in done if r.itl_ms], dtype=float)
    ttft = np.array([r.prompt_ms for r in done], dtype=float)
    return ServerView(
        requests=len(done), output_tokens=tokens, window_s=t1 - t0,
        throughput_tps=tokens / (t1 - t0) if t1 > t0 else float("nan"),
        ttft_ms_p50=float(np.percentile(ttft, 50)), ttft_ms_p90=float(np.percentile(ttft, 90)),
        itl_ms_p50=float(np.percentile(itl, 50)) if itl.size else float("nan"),
        decode_tps_mean=float(np.mean(1000 / itl)) if itl.size else float("nan"),
        t_first=t0, t_last=t1,
    )
