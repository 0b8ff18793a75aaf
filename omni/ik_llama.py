"""ik_llama.cpp's command line: llama.cpp's flag model (omni.llamacpp) with the fork's differences.

Why a dialect, not a parser: ik_llama.cpp parses most flags the way llama.cpp does, so the one
model in omni.llamacpp reads its argv, over mainline's flag table (omni.llama_flags); this module
only says what the fork adds (fused MoE, run-time repacking, MLA, attention batch cap, expert
reduction), what it spells differently (`--fit` is a bare switch, `-fa` takes auto/on/off/1/0,
`--numa` has no `mirror`, `-ngl` is a number) and which mainline flags it rejects as unknown.
Checked against the fork's common/common.cpp in ik-llama-cpp-python 0.1.5
(scripts/prepare_ik_llama_cpp.sh).

`-fmoe` is gone from this source: fused MoE is on by default and `-no-fmoe` turns it off. A recipe
written for an older fork build still says `-fmoe`; the server would exit with "unknown argument",
so `check_argv` says so in one line before anything starts.
"""

from __future__ import annotations

from collections.abc import Sequence

from omni.llama_flags import LLAMA_CPP, ArgError, Dialect, F
from omni.llamacpp import LlamaArgs, parse

# The pinned source: the ik-llama-cpp-python sdist vendoring the fork (scripts/prepare_ik_llama_cpp.sh
# and phase 5's Dockerfile.ik_llama fetch it and refuse other bytes); sha256 observed 2026-12-06.
SDIST_VERSION = "0.1.5"
SDIST_SHA256 = "33c67eb99e4dcab5e611050433243815709b8b3067753f9ce18375013cf002ad"

IK_ONLY = (
    F("no_fused_moe", "-no-fmoe", "--no-fused-moe", kind="switch",
      help="fused MoE up/gate is on by default; this turns it off"),
    F("run_time_repack", "-rtr", "--run-time-repack", kind="switch",
      help="repack CPU weights for the fork's kernels at load; implies --no-mmap"),
    F("mla_use", "-mla", "--mla-use", kind="choice", choices=("0", "1", "2", "3"),
      help="MLA attention for DeepSeek-style models: 0 off, 1, 2, 3 (default)"),
    F("attn_max_batch", "-amb", "--attention-max-batch", kind="int",
      help="max batch size for attention computations; 0 no cap"),
    F("grouped_expert_routing", "-ger", "--grouped-expert-routing", kind="switch"),
    F("smart_expert_reduction", "-ser", "--smart-expert-reduction",
      help="MIN_EXPERTS,THRESHOLD, e.g. 6,1"),
    F("no_fused_up_gate", "-no-fug", "--no-fused-up-gate", kind="switch"),
    F("merge_qkv", "-mqkv", "--merge-qkv", kind="switch"),
    F("merge_up_gate_exps", "-muge", "--merge-up-gate-experts", kind="switch"),
    F("k_cache_hadamard", "-khad", "--k-cache-hadamard", kind="switch"),
    F("transparent_huge_pages", "-thp", "--transparent-huge-pages", kind="switch"),
    F("cuda_params", "-cuda", "--cuda-params"),
    F("no_flash_attn", "-no-fa", "--no-flash-attn", kind="switch", sets=("flash_attn", "off")),
    # spelled differently from mainline (these replace mainline's flag of the same name)
    F("flash_attn", "-fa", "--flash-attn", kind="choice", choices=("auto", "on", "off", "1", "0"),
      env="LLAMA_ARG_FLASH_ATTN"),
    F("numa", "--numa", kind="choice", choices=("distribute", "isolate", "numactl")),
    F("fit", "--fit", kind="switch", help="a bare switch in the fork (mainline: -fit on|off)"),
    F("fit_margin", "--fit-margin", kind="int"),
    F("verbosity", "--verbosity", kind="int"),
)

# mainline flags this fork does not parse (it exits with "error: unknown argument: FLAG")
MAINLINE_ONLY = ("fit_target", "fit_ctx", "kv_unified", "no_kv_unified", "load_mode", "props",
                 "poll", "prio", "repack", "no_repack", "no_host")
# flags the fork had and dropped, with what to write instead
DROPPED = {
    "-fmoe": "fused MoE is on by default in this ik_llama.cpp; drop -fmoe (-no-fmoe turns it off)",
    "--fused-moe": "fused MoE is on by default in this ik_llama.cpp; drop --fused-moe "
                   "(--no-fused-moe turns it off)",
    "-fit": "ik_llama.cpp spells it --fit, a switch without a value",
    "-lv": "ik_llama.cpp spells it --verbosity N",
    "--log-verbosity": "ik_llama.cpp spells it --verbosity N",
}

IK_LLAMA: Dialect = Dialect(
    "ik_llama.cpp", tuple(f for f in LLAMA_CPP.flags if f.name not in MAINLINE_ONLY),
).extend(*IK_ONLY)


def check_argv(argv: Sequence[str]) -> LlamaArgs:
    """Parse a server argv in the fork's dialect; ArgError (one line naming the flag) for a value
    the fork would reject or a flag it does not have."""
    for tok in argv:
        name = str(tok).partition("=")[0]
        if name in DROPPED:
            raise ArgError(f"{name}: {DROPPED[name]}")
        for dropped in MAINLINE_ONLY:
            if name in LLAMA_CPP.flag(dropped).spellings:
                raise ArgError(f"{name} is a mainline llama.cpp flag that ik_llama.cpp does not have; "
                               f"remove it for engine ik_llama")
    args = parse(argv, IK_LLAMA)
    ngl = args.n_gpu_layers
    if isinstance(ngl, str):
        raise ArgError(f"-ngl {ngl!r}: ik_llama.cpp takes a number of layers here; give e.g. -ngl 99")
    return args
