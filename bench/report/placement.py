"""Where llama.cpp puts each tensor, read from the launch argv/env the sweep recorded.

Why re-derive it: the roofline of a hybrid launch (`-ot exps=CPU`, `--n-cpu-moe N`, `-ngl`) is
the time to read the host-resident bytes at host bandwidth plus the GPU-resident bytes at GPU
bandwidth, so we need the split. The rules mirror llama.cpp's loader (`load_tensors`; see
`layer_devices` for the two engines' layer rule), the token embedding stays on the CPU, and
`--override-tensor` patterns (first match wins, regex search) beat all of that. The planner
(bench/planner/fill.py) imports `layer_devices` from here: one home for "which layer goes where".
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.report.modelbytes import ModelBytes, TensorRead, tensor_group
from omni.ik_llama import IK_LLAMA
from omni.llama_flags import ALL_LAYERS, LLAMA_CPP
from omni.llamacpp import parse

#: the two loaders whose layer rule differs (Placement.dialect); rows name them by engine
MAINLINE, IK = "llama.cpp", "ik_llama.cpp"


def dialect_of(engine: str | None) -> str:
    """The loader a row's `engine` runs: ik_llama rows use ik_llama.cpp's, every other mainline's."""
    return IK if engine == "ik_llama" else MAINLINE


def layer_devices(n_layer: int, n_gpu_layers: int, weights: Sequence[float], *, dialect: str = MAINLINE,
                  split_mode: str = "layer", main_gpu: int = 0) -> list[int | None]:
    """GPU slot (index into `weights`) of layers 0..n_layer (the last is the output layer); None = CPU.

    Why two rules: mainline llama.cpp counts the output layer as one of the `-ngl` layers
    (llama-model.cpp:1589 `i_gpu_start = max(n_layer + 1 - n_gpu_layers, 0)`), so `-ngl n_layer`
    keeps layer 0 on the CPU and puts the output layer on a GPU; ik_llama.cpp does not
    (src/llama.cpp:2325 `i_gpu_start = max(n_layer - n_gpu_layers, 0)`, output on a GPU only when
    `n_gpu_layers > n_layer`, :2608). Both cap the GPU layers at `min(ngl, n_layer + 1)` and pick a
    layer's GPU as upper_bound(split points, float(il - start) / act_gpu_layers) in float32, the
    split points being the cumulative `weights` (`-ts`, else free memory) over their sum
    (llama-model.cpp:1580-1597). ik_llama.cpp with several GPUs and no `-sm attn` instead fills
    each GPU's share by layer sizes (src/llama.cpp:2424-2452): the upper_bound here is an
    approximation there. `-sm none` puts every GPU layer on `main_gpu`.
    """
    n_slots = len(weights)
    if n_slots == 0:
        return [None] * (n_layer + 1)
    start = max(n_layer + (1 if dialect == MAINLINE else 0) - n_gpu_layers, 0)
    active = min(n_gpu_layers, n_layer + 1)
    raw = np.array([max(float(w), 0.0) for w in weights], dtype=np.float32)
    if not raw.sum() > 0:
        raw = np.ones(n_slots, dtype=np.float32)
    points = np.cumsum(raw, dtype=np.float32)
    points = points / points[-1]
    out: list[int | None] = []
    for il in range(n_layer + 1):
        if il < start or il - start >= active:
            out.append(None)
        elif split_mode == "none":
            out.append(min(max(main_gpu, 0), n_slots - 1))
        else:
            x = np.float32(il - start) / np.float32(active)
            out.append(min(int(np.searchsorted(points, x, side="right")), n_slots - 1))
    return out


@dataclass(frozen=True)
class Placement:
    """The placement-relevant part of a llama.cpp launch."""

    n_gpu_layers: int = ALL_LAYERS
    overrides: tuple[tuple[str, str], ...] = ()
    tensor_split: tuple[float, ...] = ()
    split_mode: str = "layer"
    main_gpu: int = 0
    cpu_only: bool = False
    dialect: str = MAINLINE  # whose layer rule (`layer_devices`): MAINLINE or IK
    notes: tuple[str, ...] = field(default_factory=tuple)
    devices: tuple[int, ...] = ()  # `-dev CUDA1,...`: the GPUs llama.cpp uses, in order; () = all

    def describe(self) -> str:
        if self.cpu_only:
            return "all on CPU"
        parts = ["-ngl all" if self.n_gpu_layers >= ALL_LAYERS else f"-ngl {self.n_gpu_layers}"]
        parts += [f"{pat}={buft}" for pat, buft in self.overrides]
        if self.devices:
            parts.append("-dev " + ",".join(f"CUDA{d}" for d in self.devices))
        if self.tensor_split:
            parts.append("split " + "/".join(f"{x:g}" for x in self.tensor_split))
        return ", ".join(parts)


def parse_placement(argv: Sequence[str], env: Mapping[str, str] | None = None, n_gpus: int = 0,
                    engine: str | None = None) -> Placement:
    """Placement for a llama.cpp-style launch; `n_gpus == 0` means everything runs on the CPU.

    `engine` is the row's engine (`ik_llama` picks ik_llama.cpp's flags and layer rule).
    Lenient: the argv already ran, so a value llama.cpp would reject becomes a note, not an error."""
    dialect = dialect_of(engine)
    args = parse(argv, IK_LLAMA if dialect == IK else LLAMA_CPP, env=env, lenient=True)
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
    devices: list[int] = []
    for name in str((args.values("device") or [""])[-1]).split(","):
        index = device_of_buffer(name.strip()) if name.strip() else None
        if index is not None and index < n_gpus and index not in devices:
            devices.append(index)
    return Placement(ngl, tuple(args.overrides), args.tensor_split, args.split_mode or "layer",
                     args.main_gpu or 0, False, dialect, tuple(notes), tuple(devices))


def device_of_buffer(buft: str) -> int | None:
    """None for host memory, else the GPU index named by a buffer type like `CUDA1`."""
    if buft.upper().startswith("CPU") or "HOST" in buft.upper():
        return None
    m = re.search(r"(\d+)$", buft)
    return int(m.group(1)) if m else 0


def _weights(split: Sequence[float], n_gpus: int, gpu_mem: Sequence[float]) -> list[float]:
    """llama.cpp's split weights: `-ts` unless all zero, else the memory given (free, as llama.cpp
    splits by; the caller passes total where free is unknown), else equal."""
    raw = list(split[:n_gpus]) if any(split[:n_gpus]) else (
        list(gpu_mem[:n_gpus]) if len(gpu_mem) >= n_gpus and sum(gpu_mem[:n_gpus]) > 0 else [])
    return raw + [0.0] * (n_gpus - len(raw)) if raw else [1.0] * n_gpus


def _fractions(weights: Sequence[float]) -> list[float]:
    total = sum(weights)
    return [x / total for x in weights] if total > 0 else [1.0 / len(weights)] * len(weights)


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
    # `-dev` narrows llama.cpp's device list: -ts, -mg and the layer split index into it
    used = list(placement.devices) or list(range(n_gpus))
    mem = [gpu_mem_bytes[g] for g in used] if len(gpu_mem_bytes) >= n_gpus else []
    weights = _weights(placement.tensor_split, len(used), mem)
    fractions = _fractions(weights)
    n_layer = model.n_layer
    devs = layer_devices(n_layer, placement.n_gpu_layers, weights, dialect=placement.dialect,
                         split_mode=placement.split_mode, main_gpu=placement.main_gpu)
    compiled = [(re.compile(p), b) for p, b in placement.overrides]

    def layer_device(il: int) -> int | None:
        slot = devs[il] if 0 <= il <= n_layer else None
        return None if slot is None else used[slot]

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
            yield t, dict(zip(used, fractions, strict=True))
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
