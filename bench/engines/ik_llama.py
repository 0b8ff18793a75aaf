"""ik_llama.cpp's `llama-server` (the llama.cpp fork for MoE on CPU+GPU: fused MoE, run-time
repacking, MLA, attention batch cap, expert reduction).

Why its own engine: the fork speaks llama.cpp's HTTP API but not quite its command line (see
omni.ik_llama: `-fmoe` is gone, `--fit` is a switch, `-ngl` a number) nor its log. Its `/props`
gives slots and context only; what the fork itself applied (fused_moe, mla_attn, attn_max_b,
flash_attn, ser, tensors repacked) exists only in its startup log, so the readback parses that and
says so in `applied_config["readback_source"]`. The binary is built by scripts/build_llama_cpp.sh
from scripts/prepare_ik_llama_cpp.sh's pinned source.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bench.engines.base import Launch, Readback
from bench.engines.llamacpp import LlamaServer, asked_values, compare, parse_log
from bench.plan import ServerConfig
from bench.spec import ServerSpec, SpecError
from omni.ik_llama import IK_LLAMA, check_argv
from omni.llama_flags import ArgError
from omni.llamacpp import parse

READBACK_SOURCE = ("/props (total_slots, slot n_ctx) + startup log (the fork's own settings: "
                   "its /props has no field for them)")
_CTX = r"llama_(?:init_from_model|new_context_with_model):\s+"  # the context lines: this build, older builds
_IK_LOG = {  # what the fork prints at its default verbosity
    "threads": re.compile(r"\bn_threads[\"=:\s]+(\d+)"),
    "parallel": re.compile(r"\bn_slots[\"=:\s]+(\d+)"),
    "ctx_slot": re.compile(r"\bn_ctx_slot[\"=:\s]+(\d+)"),
    "ctx_size": re.compile(_CTX + r"n_ctx\s*=\s*(\d+)"),
    "n_batch": re.compile(_CTX + r"n_batch\s*=\s*(\d+)"),
    "n_ubatch": re.compile(_CTX + r"n_ubatch\s*=\s*(\d+)"),
    "flash_attn": re.compile(_CTX + r"flash_attn\s*=\s*(\d+)"),
    "mla_attn": re.compile(_CTX + r"mla_attn\s*=\s*(\d+)"),
    "attn_max_batch": re.compile(_CTX + r"attn_max_b\s*=\s*(\d+)"),
    "fused_moe": re.compile(_CTX + r"fused_moe\s*=\s*(\d+)"),
    "grouped_expert_routing": re.compile(_CTX + r"grouped er\s*=\s*(\d+)"),
    "fused_up_gate": re.compile(_CTX + r"fused_up_gate\s*=\s*(\d+)"),
    "ser": re.compile(_CTX + r"ser\s*=\s*(-?\d+, -?[\d.e+-]+)"),
    "repacked": re.compile(r"Repacked (\d+) tensors"),
    "offloaded": re.compile(r"offloaded (\d+)/(\d+) layers to GPU"),
    "gpu_layers_ignored": re.compile(r"--gpu-layers option will be ignored"),
    "n_ctx_train": re.compile(r"n_ctx_train\s*=\s*(\d+)"),  # not "ctx_train": that one means "capped"
    "system_info": re.compile(r"system_info[\"=:\s]+\"?([^\"\n]+)"),
}


def parse_ik_log(text: str) -> dict[str, Any]:
    """Applied values the fork prints while loading (first occurrence wins)."""
    return parse_log(text, _IK_LOG)


def ik_compare(argv: list[str], log: dict[str, Any]) -> list[str]:
    """asked ≠ applied for the fork's own flags, one short sentence each."""
    if "fused_moe" not in log:
        return ["the log has no ik_llama.cpp context lines (fused_moe, attn_max_b): "
                "is server.binary mainline llama.cpp instead of the fork?"]
    args = parse(argv, IK_LLAMA, lenient=True)
    out = []
    fmoe = not args.get("no_fused_moe")
    if int(fmoe) != log["fused_moe"]:
        out.append(f"fused MoE asked {'on' if fmoe else 'off (-no-fmoe)'}, server applied fused_moe = "
                   f"{log['fused_moe']}")
    if args.has("mla_use"):
        if "mla_attn" not in log:
            out.append(f"-mla {args.get('mla_use')} asked, ignored: MLA applies to DeepSeek-style models "
                       f"only (deepseek2, glm-dsa, mistral4)")
        elif int(args.get("mla_use")) != log["mla_attn"]:
            out.append(f"-mla {args.get('mla_use')} asked, server applied mla_attn = {log['mla_attn']}")
    amb = args.get("attn_max_batch")
    if amb is not None and "attn_max_batch" in log and amb != log["attn_max_batch"]:
        out.append(f"-amb {amb} asked, server applied attn_max_b = {log['attn_max_batch']}")
    fa = args.get("flash_attn")
    if fa is not None and "flash_attn" in log and int(fa in ("on", "1", "auto")) != log["flash_attn"]:
        out.append(f"-fa {fa} asked, server applied flash_attn = {log['flash_attn']}")
    if args.get("run_time_repack") and not log.get("repacked"):
        out.append("-rtr asked, nothing repacked: no CPU-resident tensor of this model has a "
                   "repacked form (all on GPU, or a type without an _R4/_R8 variant)")
    return out


class IkLlamaServer(LlamaServer):
    """Same binary name and HTTP API as llama-server; the fork's dialect, log and readback."""

    name = "ik_llama"

    def preflight(self, server: ServerSpec, model: str) -> None:
        exe = self.binary(server)
        if not Path(exe).is_file():
            where = exe if server.binary else "llama-server on PATH"
            raise SpecError(
                f"ik_llama.cpp binary {where} not found: set server.binary to the fork's llama-server "
                f"(scripts/prepare_ik_llama_cpp.sh then scripts/build_llama_cpp.sh build it)"
            )
        self._check(server.args, "server.args")
        super(LlamaServer, self).preflight(server, model)

    def check_config(self, config: ServerConfig) -> None:
        self._check(config.args, f"config {config.label}")

    @staticmethod
    def _check(args: list[str], where: str) -> None:
        try:
            check_argv(args)
        except ArgError as err:
            raise SpecError(f"engine ik_llama, {where}: {err}") from None

    def readback(self, launch: Launch, props: dict[str, Any] | None, log_text: str) -> Readback:
        log = parse_ik_log(log_text)
        applied: dict[str, Any] = {"readback_source": READBACK_SOURCE}
        for key in ("total_slots", "model_path", "n_ctx"):
            if props and key in props:
                applied["props." + key if key == "n_ctx" else key] = props[key]
        if props and "default_generation_settings" in props:
            applied["n_ctx_slot"] = props["default_generation_settings"].get("n_ctx")
        applied |= {f"log.{k}": v for k, v in log.items()}
        mismatches = compare(asked_values(launch.argv), props, log) + ik_compare(launch.argv, log)
        return Readback(applied=applied, mismatches=mismatches)

    def versions(self, server: ServerSpec, props: dict[str, Any] | None, log_text: str) -> dict[str, str]:
        found = super().versions(server, props, log_text).get("llama-server", "")
        return {"ik_llama.cpp": found}
