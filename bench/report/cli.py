"""`python -m bench.report SWEEP_DIR [--min-decode-tps N] [--min-headroom-gb N] [bandwidth flags]`.

Why a `main(argv)`: `python -m bench report ...` hands its remaining arguments here, so both entry
points take the same flags. Errors are one line on stderr and exit 2, no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bench.report.modelbytes import ModelFileError
from bench.report.options import ReportError
from bench.report.render import render_report


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and exit 2, no usage dump
        print(f"report: {message}; see `python -m bench report --help`", file=sys.stderr)
        sys.exit(2)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The report's flags, for a parent CLI that wants them on its own subcommand."""
    a = parser.add_argument
    a("sweep_dir", help="sweep directory holding results.csv (reports/<sweep-id>)")
    a("--min-decode-tps", type=float, help="decode goal, tokens/s per request (default 15)")
    a("--min-headroom-gb", type=float, help="host MemAvailable to keep during inference, GB (default: "
      "the reference box's 80 of 384 GiB, scaled to --target-mem-gb or this host's MemTotal)")
    a("--target-mem-gb", type=float, help="judge for a box with this much RAM, GB (default: the sweep host)")
    a("--objective", help="what 'best' means: decode (per request at the lowest concurrency, default), "
      "throughput@N (aggregate tokens/s at concurrency N), throughput:ttft_p90<MS (most tokens/s with "
      "TTFT p90 under MS ms), decode_per_gb (decode tokens/s per GB of VRAM)")
    a("--host-bandwidth-gbps", type=float, help="measured host RAM bandwidth for the ceiling, GB/s")
    a("--gpu-bandwidth-gbps", type=float, action="append",
      help="measured GPU memory bandwidth, GB/s (repeat per GPU index)")
    a("--memory-channels", type=int, help="memory channels in use (default: populated DIMMs)")
    a("--vram-budget-gib", type=float, action="append",
      help="VRAM a placement may use, GiB (repeat per GPU index): rows over it are marked, never best")


def options_from(ns: argparse.Namespace) -> dict:
    keys = ("min_decode_tps", "min_headroom_gb", "target_mem_gb", "objective", "host_bandwidth_gbps",
            "gpu_bandwidth_gbps", "memory_channels", "vram_budget_gib")
    return {k: getattr(ns, k) for k in keys if getattr(ns, k, None) is not None}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(prog="python -m bench report", description="Write SWEEP_DIR/index.html.")
    add_arguments(parser)
    ns = parser.parse_args(argv)
    try:
        path = render_report(ns.sweep_dir, **options_from(ns))
    except (ReportError, ModelFileError) as err:
        print(f"report: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0
