"""The weights: random values arranged so every request yields exactly `max_tokens` tokens.

Why it works by construction: every token embedding carries a large constant in hidden dim 0, no
layer writes to dim 0 (zero dim-0 rows of attn_output/ffn_down) or reads it (zero dim-0 columns of
the input projections and the router), so the final hidden state's dim 0 stays large and positive;
column 0 of output.weight is a large negative number for the forbidden tokens (`<unk>`, `<s>`,
`</s>`, the 256 byte tokens) and 0 for normal ones, so they are never sampled. Big tensors are a
random block tiled to size (fast: GB/s, not a slow RNG per element).
"""

from __future__ import annotations

import gguf
import numpy as np

from bench.genmodel.shape import ModelShape, tensor_plan
from bench.genmodel.vocab import forbidden_token_ids

DIM0 = 4.0  # dim-0 constant, in units of sqrt(n_embd) before the norm
FORBID = -100.0  # output.weight[:, 0] for forbidden tokens
_TILE = 32 * 32771  # values per random block (multiple of the q8_0 block, prime factor: rows differ)


def _blocks(rng: np.random.Generator, std: float) -> np.ndarray:
    return (rng.standard_normal(_TILE, dtype=np.float32) * std).astype(np.float32)


class Encoder:
    """Turns float tensors into the file's dtype; tiles a random block for the big ones."""

    def __init__(self, shape: ModelShape) -> None:
        self.shape = shape
        self.rng = np.random.default_rng(shape.seed)
        self.qtype = {
            "f32": gguf.GGMLQuantizationType.F32,
            "f16": gguf.GGMLQuantizationType.F16,
            "q8_0": gguf.GGMLQuantizationType.Q8_0,
        }[shape.dtype]
        self._tiles: dict[float, np.ndarray] = {}

    def encode(self, arr: np.ndarray) -> np.ndarray:
        return gguf.quants.quantize(arr.astype(np.float32, copy=False), self.qtype)

    def random(self, dims: tuple[int, ...], std: float) -> np.ndarray:
        """Encoded random tensor of `dims` (numpy order), built by tiling one encoded block."""
        if std not in self._tiles:
            self._tiles[std] = self.encode(_blocks(self.rng, std)).reshape(-1)
        tile = self._tiles[std]
        n = int(np.prod(dims))
        per_value = tile.size / _TILE  # bytes-or-elements of encoded data per value
        flat = np.resize(tile, int(n * per_value))
        return flat.reshape(*dims[:-1], int(dims[-1] * per_value))

    def zero_input_col0(self, enc: np.ndarray) -> None:
        """Zero input column 0 of every row (in place), in whatever encoding."""
        if self.qtype == gguf.GGMLQuantizationType.Q8_0:
            enc[..., 2] = 0  # first block: 2 bytes of scale, then the int8 of element 0
        else:
            enc[..., 0] = 0


def make_tensor(enc: Encoder, dims: tuple[int, ...], role: str) -> np.ndarray:
    s = enc.shape
    if role == "norm":
        return np.ones(dims, dtype=np.float32)
    if role == "zeros":
        return np.zeros(dims, dtype=np.float32)
    if role == "router":
        w = enc.rng.standard_normal(dims, dtype=np.float32)
        w[:, 0] = 0.0  # route on the varying dims, not on the constant
        return w
    if role == "embd":
        w = enc.rng.standard_normal(dims, dtype=np.float32)
        w[:, 0] = DIM0 * np.sqrt(s.n_embd)
        return enc.encode(w)
    if role == "logits":
        w = enc.rng.standard_normal(dims, dtype=np.float32) / np.sqrt(s.n_embd)
        w[:, 0] = 0.0
        w[: len(forbidden_token_ids()), 0] = FORBID
        return enc.encode(w)
    w = enc.random(dims, 1.0 / np.sqrt(dims[-1]))
    if role == "in":
        enc.zero_input_col0(w)
    elif role == "out":  # never write to the residual's dim 0
        w[..., 0, :] = 0
    return w


def tensor_bytes(enc: Encoder, dims: tuple[int, ...], role: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """Byte shape, numpy dtype and size of a tensor as `make_tensor` will produce it."""
    if role in ("norm", "router", "zeros"):
        return dims, np.dtype(np.float32), int(np.prod(dims)) * 4
    if enc.qtype == gguf.GGMLQuantizationType.Q8_0:
        bdims = (*dims[:-1], dims[-1] // 32 * 34)
        return bdims, np.dtype(np.uint8), int(np.prod(bdims))
    dt = np.dtype(np.float16 if enc.qtype == gguf.GGMLQuantizationType.F16 else np.float32)
    return dims, dt, int(np.prod(dims)) * dt.itemsize


def model_bytes(shape: ModelShape) -> int:
    """File payload size (tensor data only), for sizing models before generating them."""
    enc = Encoder.__new__(Encoder)
    enc.shape = shape
    enc.qtype = {"f32": 0, "f16": 1, "q8_0": gguf.GGMLQuantizationType.Q8_0}[shape.dtype]
    return sum(tensor_bytes(enc, d, r)[2] for _n, d, r in tensor_plan(shape))
