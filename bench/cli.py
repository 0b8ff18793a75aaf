"""`python -m bench`: sweep, report, genmodel, plan. User errors are one line on stderr (exit 2).

This module builds the argument parser and dispatches; each command lives with its concern:
`bench.cli_sweep` (sweep), `bench.report.cli` (report), `bench.cli_model` (genmodel, plan).
"""

from __future__ import annotations

import argparse
import signal
import sys

from rich.console import Console

from bench.cli_model import cmd_genmodel, cmd_plan
from bench.cli_sweep import cmd_sweep
from bench.genmodel.shape import ModelShape
from bench.spec import SpecError


def cmd_report(argv: list[str]) -> int:
    """Every flag goes to the report's own CLI (one line and exit 2 on a bad setting or sweep dir)."""
    from bench.report import main as report_main

    return report_main(argv)


GENMODEL_HELP = {  # ModelShape fields, in llama.cpp's hparam names
    "arch": "architecture: llama (dense or Mixtral-style MoE) or deepseek2 (MLA, shared experts)",
    "n_embd": "hidden size (multiple of 32)", "n_layer": "transformer blocks",
    "n_ff": "feed-forward size (multiple of 32)", "n_head": "attention heads",
    "n_head_kv": "key/value heads (GQA; divides n_head)", "n_vocab": "vocabulary size",
    "n_expert": "routed experts per MoE layer (0: dense)", "n_expert_used": "experts used per token",
    "dtype": "weight type: f32, f16 or q8_0", "n_ctx_train": "training context length written in the GGUF",
    "seed": "random seed of the weights (same seed, same file)",
    "n_layer_dense_lead": "deepseek2: dense blocks before the MoE ones", "n_lora_q": "deepseek2: q LoRA rank",
    "n_lora_kv": "deepseek2: kv LoRA rank", "n_rot": "deepseek2: RoPE dimensions per head",
    "n_embd_head_qk_nope": "deepseek2: q/k head size without RoPE",
    "n_embd_head_v_mla": "deepseek2: v head size",
    "n_ff_exp": "deepseek2: feed-forward size of one expert", "n_expert_shared": "deepseek2: shared experts",
    "n_expert_groups": "deepseek2: expert groups (0: R1's 8 when n_expert allows)",
    "n_group_used": "deepseek2: groups used per token (0: half)",
    "quantize": "quantize with llama-quantize to this type, e.g. Q4_K_M",
    "split_max_size": "split with llama-gguf-split into shards of at most this size, e.g. 2G",
}
EPILOG = """examples:
  python -m bench sweep                          the zero-config demo (tiny generated model, ~1 min)
  python -m bench sweep SPEC.toml --dry-run      every planned launch, the estimated time, warnings
  python -m bench sweep SPEC.toml --resume       continue the newest unfinished sweep of SPEC
  python -m bench report reports/ID --target-mem-gb 384   judge for the 384 GB box
  python -m bench plan MODEL.gguf --host @local  GPU/CPU placement and a spec to sweep it
docs: docs/bench.md (sweeps, specs, results.csv), docs/report.md (the page)"""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"protocol-omni bench {version('protocol-omni')}"
    except PackageNotFoundError:
        return "protocol-omni bench (not installed: run from a checkout)"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=_version(), help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    s = sub.add_parser("sweep", help="run a sweep spec (no spec: the zero-config demo)",
                       description="Launch the server once per configuration of SPEC, drive each workload "
                       "cell, sample memory, write reports/<id>/results.csv and the HTML report.")
    s.add_argument("spec", nargs="?", help="sweep spec TOML (default: the embedded demo)")
    s.add_argument("--dry-run", action="store_true",
                   help="print every planned launch, the estimated time and what this host lacks; "
                   "start nothing")
    s.add_argument("--out", help="sweep directory (default reports/<name>-<time>); an existing one resumes")
    s.add_argument("--resume", nargs="?", const="latest", metavar="SWEEP_DIR",
                   help="resume SWEEP_DIR, or the newest unfinished sweep of this spec")
    s.add_argument("--retry-failed", action="store_true", help="when resuming, rerun cells that failed")
    s.add_argument("--no-report", action="store_true", help="skip the HTML report (render it later with "
                   "`python -m bench report`)")
    # `report ...` is dispatched to bench.report.main before parsing (see main): listed here for --help
    r = sub.add_parser("report", help="render reports/<sweep-id>/index.html (flags: report --help)")
    r.add_argument("sweep_dir", help="the sweep directory (reports/<sweep-id>); see `report --help`")
    g = sub.add_parser("genmodel", help="generate (and cache) a random-weight GGUF: Llama, or "
                       "DeepSeek-R1-shaped (--arch deepseek2), quantized (--quantize Q4_K_M), "
                       "split (--split-max-size 2G)")
    for name, field in ModelShape.model_fields.items():
        kind = str if field.default is None or isinstance(field.default, str) else type(field.default)
        default = "" if field.default is None else f" (default {field.default})"
        g.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None,
                       help=GENMODEL_HELP.get(name, name.replace("_", " ")) + default)
    g.add_argument("--out", help="write here instead of the cache")
    pp = sub.add_parser("plan", help="plan GPU/CPU placement of a GGUF on a host: -ot rules, predicted "
                        "tokens/s, a sweep spec of the plan and its neighbours")
    pp.add_argument("model", help="GGUF model (any shard of a split one)")
    pp.add_argument("--facts", help="`python -m facts collect` JSON of the host")
    pp.add_argument("--host", help="@local: collect this machine's facts now")
    pp.add_argument("--membw", help="`bench membw` JSON: measured host and GPU bandwidth")
    pp.add_argument("--host-gbps", type=float, help="host memory read bandwidth, GB/s")
    pp.add_argument("--gpu-gbps", help="GPU memory bandwidth per GPU, GB/s (comma-separated)")
    pp.add_argument("--ctx", type=int, default=16384, help="context size (KV cache), default 16384")
    pp.add_argument("--ubatch", type=int, default=512, help="-ub, default 512")
    pp.add_argument("--gpus", help="only these GPU indices (comma-separated); default: best subset")
    pp.add_argument("--vram-budget", help="GiB each GPU may use (instead of free - margin)")
    pp.add_argument("--margin-mib", type=int, default=1024,
                    help="left free per GPU (--fit's -fitt), default 1024")
    pp.add_argument("--reserve-mib", type=int, help="compute buffer per GPU (default: estimated)")
    pp.add_argument("--ram-headroom-gib", type=float, default=8.0, help="host RAM kept free, default 8")
    pp.add_argument("--fixed-ms", type=float, default=0.0,
                    help="per-token cost besides memory traffic (calibrated from one launch)")
    pp.add_argument("--calibrate", metavar="RESULTS_CSV",
                    help="set --fixed-ms from the first measured planner row of a sweep's results.csv")
    pp.add_argument("--allow-cpu-only", action="store_true", help="plan even when the facts list no GPU")
    pp.add_argument("--binary", default="llama-server", help="llama-server path for the spec")
    pp.add_argument("--out", help="write a sweep spec TOML of the plan, neighbours, --fit and the template")
    pp.add_argument("--grid", action="append", metavar="ARGS",
                    help="an extra placement for the spec, e.g. '-ngl 99 --n-cpu-moe 8' (repeatable)")
    return p


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through the sweep's finally blocks: the server is stopped


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:  # the report CLI owns its flags: thresholds, bandwidths
        return cmd_report(argv[1:])
    args = parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    console = Console(highlight=False, soft_wrap=True)
    try:
        command = {"sweep": cmd_sweep, "genmodel": cmd_genmodel, "plan": cmd_plan}[args.command]
        return command(args, console)
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun with --resume to continue", file=sys.stderr)
        return 130
