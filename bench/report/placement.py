"""Where llama.cpp puts each tensor, read from the launch argv/env the sweep recorded.

Why re-derive it: the roofline of a hybrid launch (`-ot exps=CPU`, `--n-cpu-moe N`, `-ngl`) is
the time to read the host-resident bytes at host bandwidth plus the GPU-resident bytes at GPU
bandwidth, so we need the split. The rules mirror llama.cpp's loader (llama-model.cpp
`load_tensors`): the last `ngl` repeating layers go to the GPUs (split by `--tensor-split`, default
by memory), the output layer only when `ngl > n_layer`, the token embedding stays on the CPU, and
`--override-tensor` patterns (first match wins, regex search) beat all of that.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bench.report.modelbytes import ModelBytes

_EXPS = r"\.ffn_(up|down|gate|gate_up)_(ch|)exps"  # llama.cpp LLM_FFN_EXPS_REGEX
ALL_LAYERS = 1 << 30

_FLAGS = {
    "ngl": ("-ngl", "--gpu-layers", "--n-gpu-layers"),
    "ot": ("-ot", "--override-tensor"),
    "ncmoe": ("-ncmoe", "--n-cpu-moe"),
    "ts": ("-ts", "--tensor-split"),
    "sm": ("-sm", "--split-mode"),
    "mg": ("-mg", "--main-gpu"),
    "dev": ("-dev", "--device"),
}
_SWITCHES = {"cmoe": ("-cmoe", "--cpu-moe")}
# llama.cpp reads the same settings from LLAMA_ARG_* when the flag is absent.
_ENV = {"ngl": "LLAMA_ARG_N_GPU_LAYERS", "ncmoe": "LLAMA_ARG_N_CPU_MOE", "ts": "LLAMA_ARG_TENSOR_SPLIT",
        "sm": "LLAMA_ARG_SPLIT_MODE", "mg": "LLAMA_ARG_MAIN_GPU", "cmoe": "LLAMA_ARG_CPU_MOE"}


@dataclass(frozen=True)
class Placement:
    """The placement-relevant part of a llama.cpp launch."""

    n_gpu_layers: int = ALL_LAYERS
    overrides: tuple[tuple[str, str], ...] = ()
    tensor_split: tuple[float, ...] = ()
    split_mode: str = "layer"
    main_gpu: int = 0
    cpu_only: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        if self.cpu_only:
            return "all on CPU"
        parts = ["-ngl all" if self.n_gpu_layers >= ALL_LAYERS else f"-ngl {self.n_gpu_layers}"]
        parts += [f"{pat}={buft}" for pat, buft in self.overrides]
        if self.tensor_split:
            parts.append("split " + "/".join(f"{x:g}" for x in self.tensor_split))
        return ", ".join(parts)


def _collect(argv: Sequence[str]) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """Flag values in argv order, plus the ordered list of override-producing flags."""
    by_flag = {alias: key for key, aliases in _FLAGS.items() for alias in aliases}
    switches = {alias: key for key, aliases in _SWITCHES.items() for alias in aliases}
    values: dict[str, list[str]] = {}
    ordered: list[tuple[str, str]] = []
    i = 0
    while i < len(argv):
        arg = str(argv[i])
        name, eq, inline = arg.partition("=")
        if name in by_flag:
            if eq:
                value = inline
            elif i + 1 < len(argv):
                value, i = str(argv[i + 1]), i + 1
            else:
                value = ""
            values.setdefault(by_flag[name], []).append(value)
            if by_flag[name] in ("ot", "ncmoe"):
                ordered.append((by_flag[name], value))
        elif arg in switches:
            values.setdefault(switches[arg], []).append("1")
            ordered.append((switches[arg], "1"))
        i += 1
    return values, ordered


def _int(text: str, what: str, notes: list[str]) -> int | None:
    try:
        return int(text)
    except ValueError:
        notes.append(f"{what}={text!r} is not an integer; ignored")
        return None


def parse_placement(argv: Sequence[str], env: Mapping[str, str] | None = None, n_gpus: int = 0) -> Placement:
    """Placement for a llama.cpp-style launch; `n_gpus == 0` means everything runs on the CPU."""
    values, ordered = _collect(argv)
    env = env or {}
    for key, var in _ENV.items():
        if key not in values and env.get(var) not in (None, ""):
            values[key] = [str(env[var])]
            if key in ("ncmoe", "cmoe"):
                ordered.append((key, str(env[var])))
    notes: list[str] = []
    if n_gpus <= 0 or any(v.strip().lower() == "none" for v in values.get("dev", [])):
        return Placement(cpu_only=True)  # "all on CPU": every tensor is read from host RAM

    ngl = ALL_LAYERS
    if "ngl" in values:
        raw = values["ngl"][-1].strip().lower()
        if raw in ("all", "-1", "auto"):
            if raw == "auto":
                notes.append("-ngl auto: assumed every layer fits on the GPUs")
        else:
            parsed = _int(raw, "-ngl", notes)
            ngl = ALL_LAYERS if parsed is None or parsed < 0 else parsed
    else:
        notes.append("no -ngl given: llama.cpp's default (auto-fit) assumed to place every layer on the GPUs")

    overrides: list[tuple[str, str]] = []
    for key, value in ordered:
        if key == "ot":
            for item in value.split(","):
                pat, eq, buft = item.rpartition("=")
                if eq and pat:
                    overrides.append((pat, buft.strip()))
                elif item.strip():
                    notes.append(f"--override-tensor {item!r} has no =BUFFER part; ignored")
        elif key == "cmoe" and value.strip().lower() not in ("0", "false", "off"):
            overrides.append((_EXPS, "CPU"))
        elif key == "ncmoe":
            count = _int(value, "--n-cpu-moe", notes) or 0
            overrides += [(rf"blk\.{i}{_EXPS}", "CPU") for i in range(count)]

    split: tuple[float, ...] = ()
    if values.get("ts"):
        try:
            split = tuple(float(x) for x in re.split(r"[,/]+", values["ts"][-1].strip()) if x)
        except ValueError:
            notes.append(f"--tensor-split {values['ts'][-1]!r} is not a list of numbers; ignored")
    mode = (values.get("sm") or ["layer"])[-1].strip().lower() or "layer"
    main = _int((values.get("mg") or ["0"])[-1], "--main-gpu", notes) or 0
    return Placement(ngl, tuple(overrides), split, mode, main, False, tuple(notes))


def _device_of_buffer(buft: str) -> int | None:
    """None for host memory, else the GPU index named by a buffer type like `CUDA1`."""
    if buft.upper().startswith("CPU") or "HOST" in buft.upper():
        return None
    m = re.search(r"(\d+)$", buft)
    return int(m.group(1)) if m else 0


def _fractions(split: Sequence[float], n_gpus: int, gpu_mem: Sequence[float]) -> list[float]:
    raw = list(split[:n_gpus]) if split else list(gpu_mem[:n_gpus]) if len(gpu_mem) >= n_gpus else []
    raw += [0.0] * (n_gpus - len(raw)) if raw else [1.0] * n_gpus
    total = sum(raw)
    return [x / total for x in raw] if total > 0 else [1.0 / n_gpus] * n_gpus


def bytes_by_device(
    model: ModelBytes, placement: Placement, n_gpus: int, gpu_mem_bytes: Sequence[float] = (),
) -> tuple[float, list[float]]:
    """(host bytes per token, [bytes per token on GPU i]) for one launch."""
    gpu = [0.0] * max(n_gpus, 0)
    if placement.cpu_only or n_gpus <= 0:
        return model.bytes_per_token, gpu
    fractions = _fractions(placement.tensor_split, n_gpus, gpu_mem_bytes)
    cumulative = [sum(fractions[: i + 1]) for i in range(n_gpus)]
    n_layer = model.n_layer
    start = max(n_layer - placement.n_gpu_layers, 0)
    active = min(placement.n_gpu_layers, n_layer + 1)
    compiled = [(re.compile(p), b) for p, b in placement.overrides]
    host = 0.0

    def layer_device(il: int) -> int | None:
        if il < start or il - start >= active:
            return None
        if placement.split_mode == "none":
            return min(placement.main_gpu, n_gpus - 1)
        return min(bisect.bisect_right(cumulative, (il - start) / active), n_gpus - 1)

    for t in model.tensors:
        device: int | None
        hit = next((b for rx, b in compiled if rx.search(t.name)), None)
        if hit is not None:
            device = _device_of_buffer(hit)
            device = None if device is None else min(device, n_gpus - 1)
        elif t.layer is not None:
            device = layer_device(t.layer)
        elif t.name.startswith("token_embd"):
            device = None
        else:
            device = layer_device(n_layer)
        if device is None:
            host += t.read_bytes
        elif placement.split_mode == "row" and hit is None and t.layer is not None:
            for i, f in enumerate(fractions):
                gpu[i] += t.read_bytes * f
        else:
            gpu[device] += t.read_bytes
    return host, gpu
