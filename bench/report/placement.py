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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from bench.report.modelbytes import ModelBytes, TensorRead, tensor_group
from omni.llama_flags import ALL_LAYERS
from omni.llamacpp import parse


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


def parse_placement(argv: Sequence[str], env: Mapping[str, str] | None = None, n_gpus: int = 0) -> Placement:
    """Placement for a llama.cpp-style launch; `n_gpus == 0` means everything runs on the CPU.

    Lenient: the argv already ran, so a value llama.cpp would reject becomes a note, not an error."""
    args = parse(argv, env=env, lenient=True)
    notes = [f"{p}; ignored" for p in args.problems]
    if n_gpus <= 0 or any(str(v).strip().lower() == "none" for v in args.values("device")):
        return Placement(cpu_only=True)  # "all on CPU": every tensor is read from host RAM

    ngl = ALL_LAYERS
    raw = args.n_gpu_layers
    if raw is None:
        if not any("-ngl" in n for n in notes):
            notes.append("no -ngl given: llama.cpp's default (auto-fit) assumed to place every layer "
                         "on the GPUs")
    elif raw == "auto":
        notes.append("-ngl auto: assumed every layer fits on the GPUs")
    elif isinstance(raw, int) and raw >= 0:
        ngl = raw
    return Placement(ngl, tuple(args.overrides), args.tensor_split, args.split_mode or "layer",
                     args.main_gpu or 0, False, tuple(notes))


def device_of_buffer(buft: str) -> int | None:
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


def tensor_devices(
    model: ModelBytes, placement: Placement, n_gpus: int, gpu_mem_bytes: Sequence[float] = (),
) -> Iterator[tuple[TensorRead, dict[int | None, float]]]:
    """Each tensor and where it lives: {GPU index or None for host: share of the tensor there}.

    The one home of llama.cpp's placement rules here: the ceiling (bytes read per token per
    device) and the report's tensor-group table (bytes resident per device) both sum over this.
    A share below 1 only for `-sm row`, which splits a layer's matrices across the GPUs."""
    if placement.cpu_only or n_gpus <= 0:
        for t in model.tensors:
            yield t, {None: 1.0}
        return
    fractions = _fractions(placement.tensor_split, n_gpus, gpu_mem_bytes)
    cumulative = [sum(fractions[: i + 1]) for i in range(n_gpus)]
    n_layer = model.n_layer
    start = max(n_layer - placement.n_gpu_layers, 0)
    active = min(placement.n_gpu_layers, n_layer + 1)
    compiled = [(re.compile(p), b) for p, b in placement.overrides]

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
            device = device_of_buffer(hit)
            device = None if device is None else min(device, n_gpus - 1)
        elif t.layer is not None:
            device = layer_device(t.layer)
        elif t.name.startswith("token_embd"):
            device = None
        else:
            device = layer_device(n_layer)
        if device is not None and placement.split_mode == "row" and hit is None and t.layer is not None:
            yield t, dict(enumerate(fractions))
        else:
            yield t, {device: 1.0}


def bytes_by_device(
    model: ModelBytes, placement: Placement, n_gpus: int, gpu_mem_bytes: Sequence[float] = (),
) -> tuple[float, list[float]]:
    """(host bytes per token, [bytes per token on GPU i]) for one launch."""
    gpu = [0.0] * max(n_gpus, 0)
    host = 0.0
    for t, where in tensor_devices(model, placement, n_gpus, gpu_mem_bytes):
        for device, share in where.items():
            if device is None:
                host += t.read_bytes * share
            else:
                gpu[device] += t.read_bytes * share
    return host, gpu


def group_bytes(
    model: ModelBytes, placement: Placement, n_gpus: int, gpu_mem_bytes: Sequence[float] = (),
) -> dict[str, dict[int | None, float]]:
    """{tensor group: {GPU index or None for host: resident bytes}}: where each group's weights went."""
    out: dict[str, dict[int | None, float]] = {}
    for t, where in tensor_devices(model, placement, n_gpus, gpu_mem_bytes):
        cell = out.setdefault(tensor_group(t), {})
        for device, share in where.items():
            cell[device] = cell.get(device, 0.0) + t.n_bytes * share
    return out
