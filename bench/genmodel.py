"""Generate random-weight Llama GGUF models (dense or Mixtral-style MoE) for real-server benchmarks.

Why: the sweep and its tests need a real llama.cpp server on a real model, with no downloads.
Random weights are enough to measure speed, as long as every request yields exactly `max_tokens`
tokens. We guarantee that by construction: every token embedding carries a large constant in
hidden dim 0, no layer writes to dim 0 (zero dim-0 rows of attn_output/ffn_down) or reads it (zero
dim-0 columns of the input projections and the router), so the final hidden state's dim 0 stays
large and positive; column 0 of output.weight is a large negative number for the forbidden tokens
(`<unk>`, `<s>`, `</s>`, the 256 byte tokens) and 0 for normal ones, so they are never sampled.
Big tensors are a random block tiled to size (fast: GB/s, not a slow RNG per element).
"""

from __future__ import annotations

import hashlib
import os
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import gguf
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

GENERATOR_VERSION = 3  # bump when the bytes a shape produces change (invalidates the cache)
DIM0 = 4.0  # dim-0 constant, in units of sqrt(n_embd) before the norm
FORBID = -100.0  # output.weight[:, 0] for forbidden tokens
_TILE = 32 * 32771  # values per random block (multiple of the q8_0 block, prime factor: rows differ)
N_SPECIAL = 3  # <unk> <s> </s>
N_BYTE = 256
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


class ModelShape(BaseModel):
    """What to generate. Field names follow llama.cpp's hparams."""

    model_config = ConfigDict(extra="forbid")
    n_embd: int = Field(128, ge=32, multiple_of=32)
    n_layer: int = Field(2, ge=1)
    n_ff: int = Field(256, ge=32, multiple_of=32)
    n_head: int = Field(4, ge=1)
    n_head_kv: int = Field(2, ge=1)
    n_vocab: int = Field(1024, ge=N_SPECIAL + N_BYTE + 64)
    n_expert: int = Field(0, ge=0)
    n_expert_used: int = Field(0, ge=0)
    dtype: Literal["f32", "f16", "q8_0"] = "f16"
    n_ctx_train: int = Field(4096, ge=64)
    seed: int = 0

    @model_validator(mode="after")
    def _consistent(self) -> ModelShape:
        if self.n_embd % self.n_head or self.n_head % self.n_head_kv:
            raise ValueError("n_embd must be a multiple of n_head, and n_head a multiple of n_head_kv")
        if (self.n_embd // self.n_head) % 2:
            raise ValueError("head size n_embd/n_head must be even (RoPE)")
        if self.n_expert and not 0 < self.n_expert_used <= self.n_expert:
            raise ValueError("n_expert_used must be between 1 and n_expert for an MoE model")
        if not self.n_expert and self.n_expert_used:
            raise ValueError("n_expert_used needs n_expert > 0")
        return self

    @property
    def key(self) -> str:
        """Short content hash: same shape and generator version → same file."""
        blob = f"{GENERATOR_VERSION}:{self.model_dump_json()}".encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


def cache_dir() -> Path:
    """Where generated models live (override with OMNI_MODEL_CACHE)."""
    env = os.environ.get("OMNI_MODEL_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "protocol-omni" / "models"


def forbidden_token_ids() -> range:
    """Tokens the model can never sample: specials and byte-fallback tokens."""
    return range(N_SPECIAL + N_BYTE)


def vocab(n_vocab: int) -> tuple[list[str], list[float], list[int]]:
    """A SentencePiece-style vocab: <unk> <s> </s>, <0x00>..<0xFF>, then ▁-prefixed and bare pieces."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(N_BYTE)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    types += [gguf.TokenType.BYTE] * N_BYTE
    pieces = _pieces(n_vocab - len(tokens))
    tokens += pieces
    types += [gguf.TokenType.NORMAL] * len(pieces)
    scores = [0.0] * (N_SPECIAL + N_BYTE) + [-float(i) for i in range(len(pieces))]
    return tokens, scores, [int(t) for t in types]


def _pieces(n: int) -> list[str]:
    """Shortest pieces first (single letters, then pairs...) so SentencePiece merges stay sane."""
    out: list[str] = ["▁"]
    letters = string.ascii_lowercase
    level = [""]
    while len(out) < n:
        level = [p + c for p in level for c in letters]
        for p in level:
            out += [p, "▁" + p]
            if len(out) >= n:
                break
    return out[:n]


def _blocks(rng: np.random.Generator, std: float) -> np.ndarray:
    return (rng.standard_normal(_TILE, dtype=np.float32) * std).astype(np.float32)


class _Encoder:
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


def _tensor_plan(s: ModelShape) -> Iterator[tuple[str, tuple[int, ...], str]]:
    """(name, numpy dims, role) in file order."""
    kv = s.n_head_kv * s.head_dim
    yield "token_embd.weight", (s.n_vocab, s.n_embd), "embd"
    for i in range(s.n_layer):
        b = f"blk.{i}."
        yield b + "attn_norm.weight", (s.n_embd,), "norm"
        yield b + "attn_q.weight", (s.n_embd, s.n_embd), "in"
        yield b + "attn_k.weight", (kv, s.n_embd), "in"
        yield b + "attn_v.weight", (kv, s.n_embd), "in"
        yield b + "attn_output.weight", (s.n_embd, s.n_embd), "out"
        yield b + "ffn_norm.weight", (s.n_embd,), "norm"
        if s.n_expert:
            yield b + "ffn_gate_inp.weight", (s.n_expert, s.n_embd), "router"
            yield b + "ffn_gate_exps.weight", (s.n_expert, s.n_ff, s.n_embd), "in"
            yield b + "ffn_up_exps.weight", (s.n_expert, s.n_ff, s.n_embd), "in"
            yield b + "ffn_down_exps.weight", (s.n_expert, s.n_embd, s.n_ff), "out"
        else:
            yield b + "ffn_gate.weight", (s.n_ff, s.n_embd), "in"
            yield b + "ffn_up.weight", (s.n_ff, s.n_embd), "in"
            yield b + "ffn_down.weight", (s.n_embd, s.n_ff), "out"
    yield "output_norm.weight", (s.n_embd,), "norm"
    yield "output.weight", (s.n_vocab, s.n_embd), "logits"


def _make(enc: _Encoder, dims: tuple[int, ...], role: str) -> np.ndarray:
    s = enc.shape
    if role == "norm":
        return np.ones(dims, dtype=np.float32)
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
    else:  # "out": never write to the residual's dim 0
        w[..., 0, :] = 0
    return w


def _nbytes(enc: _Encoder, dims: tuple[int, ...], role: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """Byte shape, numpy dtype and size of a tensor as `_make` will produce it."""
    if role in ("norm", "router"):
        return dims, np.dtype(np.float32), int(np.prod(dims)) * 4
    if enc.qtype == gguf.GGMLQuantizationType.Q8_0:
        bdims = (*dims[:-1], dims[-1] // 32 * 34)
        return bdims, np.dtype(np.uint8), int(np.prod(bdims))
    dt = np.dtype(np.float16 if enc.qtype == gguf.GGMLQuantizationType.F16 else np.float32)
    return dims, dt, int(np.prod(dims)) * dt.itemsize


def write_model(shape: ModelShape, path: Path) -> Path:
    """Write the GGUF to `path` atomically (temp file + rename), streaming one tensor at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    enc = _Encoder(shape)
    w = gguf.GGUFWriter(tmp, "llama")
    _add_metadata(w, shape, enc)
    plan = list(_tensor_plan(shape))
    for name, dims, role in plan:
        bdims, dt, nbytes = _nbytes(enc, dims, role)
        raw = enc.qtype if dt == np.uint8 else None
        w.add_tensor_info(name, bdims, dt, nbytes, raw_dtype=raw)
    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        for _name, dims, role in plan:
            w.write_tensor_data(_make(enc, dims, role))
        w.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _add_metadata(w: gguf.GGUFWriter, s: ModelShape, enc: _Encoder) -> None:
    w.add_name(f"omni-random-{'moe' if s.n_expert else 'dense'}-{s.key}")
    w.add_file_type({"f32": 0, "f16": 1, "q8_0": 7}[s.dtype])
    w.add_context_length(s.n_ctx_train)
    w.add_embedding_length(s.n_embd)
    w.add_block_count(s.n_layer)
    w.add_feed_forward_length(s.n_ff)
    w.add_head_count(s.n_head)
    w.add_head_count_kv(s.n_head_kv)
    w.add_rope_dimension_count(s.head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(s.n_vocab)
    if s.n_expert:
        w.add_expert_count(s.n_expert)
        w.add_expert_used_count(s.n_expert_used)
    tokens, scores, types = vocab(s.n_vocab)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)


def ensure_model(shape: ModelShape, directory: Path | None = None) -> Path:
    """Path of the cached model for `shape`, generating it first when absent."""
    kind = "moe" if shape.n_expert else "dense"
    path = (directory or cache_dir()) / f"omni-{kind}-{shape.dtype}-{shape.key}.gguf"
    if not path.exists():
        write_model(shape, path)
    return path


def model_bytes(shape: ModelShape) -> int:
    """File payload size (tensor data only), for sizing models before generating them."""
    enc = _Encoder.__new__(_Encoder)
    enc.shape = shape
    enc.qtype = {"f32": 0, "f16": 1, "q8_0": gguf.GGMLQuantizationType.Q8_0}[shape.dtype]
    return sum(_nbytes(enc, d, r)[2] for _n, d, r in _tensor_plan(shape))
