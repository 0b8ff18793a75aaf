"""llama.cpp's `llama-server` and the xllamacpp wheel (same flags, same HTTP API, same log lines).

Why the readback: llama.cpp silently adjusts what it is asked (n_ctx rounding, `--fit` shrinking
the context or GPU layers, slots capped), so every launch records what `/props` and the log say
was applied, and each difference from the argv becomes a mismatch finding on the result rows.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

from bench.engines.base import Engine, Launch, Readback
from bench.plan import ServerConfig
from bench.spec import ServerSpec, SpecError
from omni.llamacpp import parse
from omni.numa import parse_numa

_ASKED = ("threads", "parallel", "ctx_size", "n_gpu_layers")  # flags whose applied value we can read back
_LOG = {
    "threads": re.compile(r"n_threads\s*=\s*(\d+)"),
    "parallel": re.compile(r"n_slots\s*=\s*(\d+)"),
    "ctx_slot": re.compile(r"n_ctx_slot\s*=\s*(\d+)"),
    "ctx_size": re.compile(r"llama_context:\s+n_ctx\s*=\s*(\d+)"),
    "offloaded": re.compile(r"offloaded (\d+)/(\d+) layers to GPU"),
    "build": re.compile(r"build_info:\s*(\S+)|build:\s*(\d+ \(\w+\))"),
    "system_info": re.compile(r"system_info:\s*(.+)"),
    # what llama-server prints at its default verbosity (the lines above need -lv 4 there)
    "gpu_layers_ignored": re.compile(r"no usable GPU found, --gpu-layers option will be ignored"),
    "ctx_train": re.compile(r"slot context \((\d+)\) exceeds the training context of the model \((\d+)\)"),
    "kv_unified": re.compile(r"n_ctx_slot\s*=\s*\d+, kv_unified\s*=\s*'?(true|false)"),
}


def asked_values(argv: list[str]) -> dict[str, str]:
    """The last value given for each flag we can verify (llama.cpp's own last-wins rule)."""
    args = parse(argv, lenient=True)
    return {name: str(given[-1].raw) for name in _ASKED if (given := args.given(name))}


_TEXT_KEYS = ("build", "system_info", "ser")  # values kept as text, not numbers


def parse_log(text: str, patterns: dict[str, re.Pattern[str]] | None = None) -> dict[str, Any]:
    """Applied values a llama.cpp-family server prints while loading (first occurrence wins).

    `patterns` is the engine's own table (the fork prints other lines); mainline's by default.
    """
    found: dict[str, Any] = {}
    for key, rx in (_LOG if patterns is None else patterns).items():
        m = rx.search(text)
        if not m:
            continue
        if key == "offloaded":
            found["offloaded_layers"], found["total_layers"] = int(m.group(1)), int(m.group(2))
        elif key == "gpu_layers_ignored":
            found[key] = True
        elif key == "ctx_train":
            found[key] = int(m.group(2))
        elif key == "kv_unified":
            found[key] = m.group(1) == "true"
        elif key in _TEXT_KEYS:
            found[key] = (m.group(1) or (m.group(2) if m.lastindex and m.lastindex > 1 else "")).strip()
        else:
            found[key] = int(m.group(1))
    return found


_BUFFER = re.compile(r"\b([A-Za-z0-9_]+) (model|KV|compute|RS) buffer size\s*=\s*([\d.]+) MiB")


def log_buffers(text: str) -> dict[str, float]:
    """MiB per "DEVICE kind" buffer llama.cpp allocated (model weights, KV cache, compute): where
    a placement -- one we wrote or the one `--fit` chose -- really put the bytes."""
    out: dict[str, float] = {}
    for dev, kind, mib in _BUFFER.findall(text):
        key = f"{dev} {kind}"
        out[key] = round(out.get(key, 0.0) + float(mib), 2)
    return out


def _int(text: Any) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None  # "auto", "all": nothing to compare against


def compare(asked: dict[str, str], props: dict[str, Any] | None, log: dict[str, Any]) -> list[str]:
    """asked ≠ applied findings, one short sentence each."""
    out = []
    props = props or {}
    slots = props.get("total_slots", log.get("parallel"))
    want = {k: _int(v) for k, v in asked.items()}
    if want.get("parallel") is not None and slots is not None and want["parallel"] != _int(slots):
        out.append(f"parallel asked {asked['parallel']}, server runs {slots} slots")
    if want.get("threads") is not None and "threads" in log and want["threads"] != log["threads"]:
        out.append(f"threads asked {asked['threads']}, server uses {log['threads']}")
    if (want.get("ctx_size") or 0) > 0:
        per_slot = (props.get("default_generation_settings") or {}).get("n_ctx") or log.get("ctx_slot")
        total = log.get("ctx_size")  # libllama's line (xllamacpp; llama-server only with -lv 4)
        if total is None and per_slot and slots:
            total = per_slot if log.get("kv_unified") else per_slot * slots  # unified: slots share it
        train = log.get("ctx_train")
        if total is not None and want["ctx_size"] != _int(total):
            why = f" (capped at the model's training context {train})" if train else ""
            out.append(f"ctx_size asked {asked['ctx_size']}, server applied {total}{why}")
        elif train:  # the KV cache has the size asked, but no slot may use more than `train`
            out.append(f"ctx_size asked {asked['ctx_size']}, but each slot is capped at the model's "
                       f"training context {train}")
    wants_gpu = (want.get("n_gpu_layers") or 0) > 0 or asked.get("n_gpu_layers") == "all"
    if log.get("gpu_layers_ignored") and wants_gpu:
        out.append(f"n_gpu_layers asked {asked['n_gpu_layers']}, ignored: no usable GPU "
                   f"(llama.cpp built without GPU support?)")
    elif want.get("n_gpu_layers") is not None and "offloaded_layers" in log:
        layers = min(want["n_gpu_layers"], log["total_layers"])
        if layers >= 0 and layers != log["offloaded_layers"]:
            out.append(
                f"n_gpu_layers asked {asked['n_gpu_layers']}, "
                f"offloaded {log['offloaded_layers']}/{log['total_layers']}"
            )
    return out


class LlamaCppFamily(Engine):
    """Shared by llama-server and xllamacpp."""

    fixed_length_fields: ClassVar[dict[str, Any]] = {"ignore_eos": True}

    def server_args(self, server: ServerSpec, model: str, config: ServerConfig, port: int) -> list[str]:
        numa = parse_numa(config.numa).engine_flags  # "--numa distribute": llama.cpp's own NUMA flag
        return ["-m", model, "--host", server.host, "--port", str(port), *server.args, *config.args, *numa]

    def preflight(self, server: ServerSpec, model: str) -> None:
        if not Path(model).is_file():
            raise SpecError(f"server.model {model!r} does not exist: give the path of a GGUF file")

    def readback(self, launch: Launch, props: dict[str, Any] | None, log_text: str) -> Readback:
        log = parse_log(log_text)
        keep = ("total_slots", "model_path", "build_info", "model_ftype")
        applied: dict[str, Any] = {k: props[k] for k in keep if props and k in props}
        if props and "default_generation_settings" in props:
            applied["n_ctx_slot"] = props["default_generation_settings"].get("n_ctx")
        applied |= {f"log.{k}": v for k, v in log.items()}
        buffers = log_buffers(log_text)
        if buffers:
            applied["log.buffers_mib"] = buffers
        return Readback(applied=applied, mismatches=compare(asked_values(launch.argv), props, log))


class LlamaServer(LlamaCppFamily):
    name = "llama-server"

    def binary(self, server: ServerSpec) -> str:
        """The configured path, else llama-server from PATH, else the bare name (for dry runs)."""
        return server.binary or shutil.which("llama-server") or "llama-server"

    def preflight(self, server: ServerSpec, model: str) -> None:
        exe = self.binary(server)
        if not Path(exe).is_file():
            where = exe if server.binary else "on PATH"
            raise SpecError(
                f"llama-server binary {where} not found: set server.binary to its path "
                f"(scripts/ builds one) or use engine = \"xllamacpp\""
            )
        super().preflight(server, model)

    def argv(self, server: ServerSpec, model: str, config: ServerConfig, port: int) -> list[str]:
        return [self.binary(server), *self.server_args(server, model, config, port)]

    def versions(self, server: ServerSpec, props: dict[str, Any] | None, log_text: str) -> dict[str, str]:
        out = {"llama-server": (props or {}).get("build_info", "")}
        try:
            proc = subprocess.run([self.binary(server), "--version"], capture_output=True, text=True,
                                  timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return out
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        # llama-server prints backend probing first on GPU builds, then "version: N (commit)"
        found = [ln for ln in lines if ln.startswith("version:")] or lines[:1]
        if found:
            out["llama-server"] = found[0].removeprefix("version:").strip()
        return out


class XLlamaCpp(LlamaCppFamily):
    name = "xllamacpp"

    def argv(self, server: ServerSpec, model: str, config: ServerConfig, port: int) -> list[str]:
        python = server.binary or sys.executable
        return [python, "-m", "bench.xllamacpp_server", *self.server_args(server, model, config, port)]

    def versions(self, server: ServerSpec, props: dict[str, Any] | None, log_text: str) -> dict[str, str]:
        from importlib.metadata import version

        return {"xllamacpp": version("xllamacpp"), "llama.cpp build": (props or {}).get("build_info", "")}
