"""Every measured quantity of a results row, once: name, unit, better direction, description.

Why a registry: the row schema (`bench.schema.Row`), results.csv, the report's numeric columns,
its plot labels and the strategies' objective all name metrics; when each kept its own list they
drifted (computed values silently dropped from the row, row values read as text by the report).
Now they all read `METRICS` (shaped like AIPerf's metric classes / GuideLLM's
`Field(description=)`), and a test checks that what `bench.metrics.summarize` computes is exactly
what the registry names.

A latency family (`ttft_ms`) expands to its statistics (`ttft_ms_p50`, ...); a rate with a
confidence interval expands to `<name>_ci95_lo` / `<name>_ci95_hi`.

Why the page's names live here too (`short`, `SHOWN_UNITS`): the report's table headers and plot
axis labels once carried their own hand-written names and units ("decode tok/s", "host peak GB",
"output tokens/s, all requests"), so one metric read three ways. `Metric.header` and
`Metric.axis` are now the only spellings; tests/report/test_report_labels.py renders a page with
these names swapped and fails on any metric header or axis label that did not follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["higher", "lower", ""]  # "" where neither is better (counts, sizes asked)
Source = Literal["requests", "repeats", "memory", "launch", "cell", "planner"]

GB = 1e9  # the page shows byte sizes in GB (10^9 bytes), as memory vendors and nvidia-smi's totals read
# registry unit -> (what the page prints, divide the value by): narrow headers, counts bare
SHOWN_UNITS: dict[str, tuple[str, float]] = {
    "bytes": ("GB", GB), "tokens/s": ("tok/s", 1.0), "tokens": ("tok", 1.0), "ms": ("ms", 1.0),
    "s": ("s", 1.0), "requests": ("", 1.0), "retries": ("", 1.0),
}


def shown_unit(unit: str) -> str:
    """How the page prints `unit` (a registry unit): "GB" for bytes, "tok/s" for tokens/s."""
    return SHOWN_UNITS.get(unit, (unit, 1.0))[0]


def axis_label(name: str, unit: str, *notes: str) -> str:
    """`name (unit, note, ...)`: one shape for every axis label of the page."""
    inside = ", ".join(x for x in (shown_unit(unit), *notes) if x)
    return f"{name} ({inside})" if inside else name


@dataclass(frozen=True)
class Metric:
    """One numeric row column. `source`: who fills it (`requests`: `bench.metrics.summarize` from the
    request records; `repeats`: results.csv across a cell's repeats only; `memory`: the sampler;
    `launch`: the server start; `cell`: the loop)."""

    name: str
    unit: str
    direction: Direction
    description: str
    source: Source = "requests"
    integer: bool = False  # counts: an int column that defaults to 0
    short: str = ""  # the page's name for it (table header, axis label, legend), without the unit

    @property
    def python_type(self) -> type:
        """int for counts and byte sizes (exact in the CSV), float for the rest."""
        return int if self.integer or self.unit == "bytes" else float

    @property
    def scale(self) -> float:
        """What the page divides a value by to print it in `shown_unit` (bytes -> GB)."""
        return SHOWN_UNITS.get(self.unit, (self.unit, 1.0))[1]

    @property
    def header(self) -> str:
        """The page's table column header: short name and shown unit ("decode tok/s")."""
        return f"{self.short} {shown_unit(self.unit)}".strip()

    def axis(self, *notes: str) -> str:
        """The page's axis label: "decode (tok/s)", with notes inside: "decode (tok/s, log scale)"."""
        return axis_label(self.short, self.unit, *notes)


@dataclass(frozen=True)
class Family:
    """A latency family (`ttft_ms`): the figure that draws its p50/p90/p99 together names it so."""

    name: str
    title: str  # "time to first token": what a figure of it is called
    short: str  # "TTFT": its members' headers are "TTFT p50 ms", ...
    unit: str = "ms"

    def axis(self, *notes: str) -> str:
        return axis_label(self.short, self.unit, *notes)


_PCT = {"p50": "median", "p90": "90th percentile", "p99": "99th percentile", "mean": "mean"}
_STATS = ("p50", "p90", "p99", "mean")
_LATENCY = {  # family → (title, short, what it measures, statistics recorded)
    "ttft_ms": ("time to first token", "TTFT", "time to first token of any kind (reasoning or content)",
                _STATS),
    "ttft_content_ms": ("time to first content token", "TTFT content",
                        "time to the first content token (reasoning models stream thinking first)", _STATS),
    "itl_ms": ("inter-token latency", "ITL", "gap between token-bearing chunks (inter-token latency)",
               _STATS),
    "tpot_ms": ("time per output token", "TPOT",
                "time per output token after the first: (e2e - ttft) / (output tokens - 1)", _STATS),
    "e2e_ms": ("request latency", "E2E", "request latency, send to last byte", _STATS),
}
FAMILIES: dict[str, Family] = {
    name: Family(name, title, short) for name, (title, short, _, _) in _LATENCY.items()
}
_RATES = {  # name → (short, description, the t-based 95 % CI of the mean comes from: requests or repeats)
    "decode_tps": ("decode", "decode rate per request, client clock: (output tokens - 1) / "
                   "(t_last - t_first); mean over requests (burst-delivered requests left out)", "requests"),
    "server_decode_tps": ("server decode", "decode rate per request, server clock: "
                          "(timings.predicted_n - 1) / timings.predicted_ms, decode steps from the first "
                          "sampled token to the last, as decode_tps counts them (ik_llama.cpp's "
                          "predicted_per_second divides n, not n - 1); mean over the requests decode_tps "
                          "averages", "requests"),
    "prefill_tps": ("prefill", "prefill rate per request, client clock: input tokens / ttft; "
                    "mean over requests", "requests"),
    "server_prefill_tps": ("server prefill", "prefill rate per request as llama.cpp timed it "
                           "(timings.prompt_per_second); mean over requests", "requests"),
    "throughput_tps": ("throughput", "throughput: output tokens of all measured requests / "
                       "wall time of the cell", "repeats"),
}


def _build() -> tuple[Metric, ...]:
    out = [
        Metric("ok_requests", "requests", "higher", "measured requests that succeeded", integer=True,
               short="ok requests"),
        Metric("errors", "requests", "lower", "measured requests that failed", integer=True, short="errors"),
        Metric("dropped_connections", "retries", "lower",
               "fresh-connection retries after a dropped keep-alive connection", integer=True,
               short="dropped connections"),
        Metric("token_count_mismatches", "requests", "lower",
               "requests whose streamed token count differs from the server's usage count", integer=True,
               short="token count mismatches"),
        Metric("burst_requests", "requests", "",
               "requests whose tokens arrived in bursts: left out of decode_tps", integer=True,
               short="burst requests"),
        Metric("input_tokens_measured", "tokens", "",
               "mean prompt tokens the server counted (usage.prompt_tokens)", short="in measured"),
        Metric("output_tokens_measured", "tokens", "", "mean output tokens per request",
               short="out measured"),
    ]
    for family, (_, short, what, stats) in _LATENCY.items():
        out += [Metric(f"{family}_{s}", "ms", "lower", f"{what}: {_PCT[s]} over requests",
                       short=f"{short} {s}") for s in stats]
    for name, (short, what, ci_from) in _RATES.items():
        out.append(Metric(name, "tokens/s", "higher", what, short=short))
        if name == "decode_tps":
            out.append(Metric("decode_tps_p50", "tokens/s", "higher",
                              "decode rate per request, client clock: median over requests",
                              short="decode p50"))
        across = "across repeats when the cell ran >= 2"
        across += ", else across requests" if ci_from == "requests" else ""
        for side, bound in (("lo", "lower"), ("hi", "upper")):
            out.append(Metric(f"{name}_ci95_{side}", "tokens/s", "higher",
                              f"{name}: {bound} bound of the t-based 95 % confidence interval of the mean "
                              f"({across})", source=ci_from, short=f"{short} 95 % CI {side}"))
    out += [
        Metric("decode_client_over_server", "ratio", "",
               "our decode rate over the server's on the same requests, pooled: sum of decode steps / sum "
               "of first-to-last token spans, client clock over server clock (timings.predicted_ms), "
               "over the requests not delivered in bursts (empty: all were); 1.0: the clocks agree",
               short="ours / server decode"),
        Metric("server_decode_window_ms", "ms", "",
               "server decode time per request (timings.predicted_ms), median: under ~100 ms one "
               "scheduler time slice on a busy host is a large part of it, and the clocks cannot agree "
               "closely", short="server decode window"),
        Metric("cell_wall_s", "s", "lower", "wall time of the cell's measured requests", short="cell wall"),
        Metric("host_mem_total_bytes", "bytes", "", "host MemTotal", source="memory", short="host total"),
        Metric("host_mem_available_min_bytes", "bytes", "higher", "lowest host MemAvailable during the run",
               source="memory", short="host available"),
        Metric("host_mem_peak_bytes", "bytes", "lower",
               "host memory in use, peak: MemTotal - min MemAvailable during the run", source="memory",
               short="host in use"),
        Metric("host_cached_peak_bytes", "bytes", "",
               "host page cache (Cached + Buffers), peak during the run", source="memory",
               short="page cache"),
        Metric("server_rss_peak_bytes", "bytes", "lower", "server process tree RSS, peak during the run",
               source="memory", short="server RSS"),
        Metric("server_mem_peak_bytes", "bytes", "lower",
               "server memory, peak: its RSS with the mapped model counted by its page-cache residency",
               source="memory", short="server mem"),
        Metric("model_mapped_peak_bytes", "bytes", "",
               "resident GGUF pages the server maps (smaps Rss), peak", source="memory",
               short="mapped model"),
        Metric("model_cached_peak_bytes", "bytes", "",
               "GGUF pages in the page cache while mapped (mincore), peak", source="memory",
               short="model cached"),
        Metric("host_headroom_min_bytes", "bytes", "higher",
               "host headroom, lowest: MemAvailable less the mapped model's cached pages", source="memory",
               short="headroom"),
        Metric("gpu_mem_peak_bytes", "bytes", "lower", "GPU memory used, sum over GPUs of each GPU's peak",
               source="memory", short="GPU peak"),
        Metric("oom_floor_bytes", "bytes", "",
               "MemAvailable floor below which the OOM guard kills the server", source="memory",
               short="OOM floor"),
        Metric("load_s", "s", "lower", "server load time: launch to healthy", source="launch", short="load"),
        Metric("client_cpu_s", "s", "lower", "our client's CPU seconds during the cell", source="cell",
               short="client CPU"),
        Metric("predicted_decode_tps", "tokens/s", "higher",
               "decode rate the placement planner predicted for this launch (empty: not planned)",
               source="planner", short="predicted decode"),
    ]
    return tuple(out)


METRICS: dict[str, Metric] = {m.name: m for m in _build()}
# the rates whose CI columns are recomputed across repeats (bench.store) when a cell ran >= 2
CI_METRICS: tuple[str, ...] = tuple(n for n in _RATES if f"{n}_ci95_lo" in METRICS)


def computed_by(source: Source) -> list[str]:
    return [m.name for m in METRICS.values() if m.source == source]


def metric(name: str) -> Metric:
    """The registered metric `name`; KeyError with the known names when it is not one."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a registered metric (bench.metric_registry.METRICS)") from None
