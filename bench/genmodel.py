"""Generate random-weight Llama GGUF models (dense or Mixtral-style MoE) for real-server benchmarks.

Why: the sweep and its tests need a real llama.cpp server on a real model, with no downloads.
Random weights are enough to measure speed, as long as every request yields exactly `max_tokens`
tokens. We guarantee that by construction: every token embedding carries a large constant in
hidden dim 0, no layer writes to dim 0 (zero dim-0 rows of attn_output/ffn_down) or reads it (zero
dim-0 columns of the input projections and the router), so the final hidden state's dim 0 stays
large and positive; column 0 of output.weight is a large negative number for the forbidden tokens
(`<unk>`, `<s>`, `</s>`, the 256 byte tokens) and 0 for normal ones, so they are never sampled.
Big tensors are a random block tiled to size (fast: GB/s, not a slow RNG per element).

`arch = "deepseek2"` writes DeepSeek-V3/R1's structure scaled down, as the pinned llama.cpp's
deepseek2 loader reads it (src/models/deepseek2.cpp): MLA attention (q and kv LoRA ranks, split
k_b/v_b, a RoPE part of the key), `n_layer_dense_lead` dense FFN layers, then routed experts plus
shared experts with R1's gating (sigmoid scores, a selection bias, normalised top-k weights x 2.5,
expert groups). `quantize` runs the built `llama-quantize` (Q4_K_M, Q3_K_M, Q2_K, ...) and
`split_max_size` `llama-gguf-split`, so tensor types, sizes and shard names are the real tools'.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import string
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import gguf
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from omni import gguf_files

GENERATOR_VERSION = 3  # bump when the bytes a shape produces change (invalidates the cache)
DIM0 = 4.0  # dim-0 constant, in units of sqrt(n_embd) before the norm
FORBID = -100.0  # output.weight[:, 0] for forbidden tokens
_TILE = 32 * 32771  # values per random block (multiple of the q8_0 block, prime factor: rows differ)
N_SPECIAL = 3  # <unk> <s> </s>
N_BYTE = 256
_SIZE_RE = re.compile(r"^\d+[MG]$")
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


QUANT_TYPES = ("Q4_K_M", "Q4_K_S", "Q3_K_M", "Q3_K_S", "Q2_K", "Q5_K_M", "Q6_K", "Q8_0")
# Fields added after GENERATOR_VERSION 3: left at their defaults they stay out of the content key,
# so the Llama models (and the config ids of sweeps over them) keep their names.
_NEW_FIELDS = {
    "arch": "llama", "n_layer_dense_lead": 1, "n_lora_q": 64, "n_lora_kv": 64, "n_rot": 32,
    "n_embd_head_qk_nope": 32, "n_embd_head_v_mla": 32, "n_ff_exp": 64, "n_expert_shared": 1,
    "n_expert_groups": 0, "n_group_used": 0, "quantize": None, "split_max_size": None,
}


class GenModelError(ValueError):
    """A model that cannot be generated (a tool missing or failing); one line naming the fix."""


class ModelShape(BaseModel):
    """What to generate. Field names follow llama.cpp's hparams."""

    model_config = ConfigDict(extra="forbid")
    arch: Literal["llama", "deepseek2"] = "llama"
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
    # deepseek2 (MLA + shared experts); names follow llama.cpp's hparams
    n_layer_dense_lead: int = Field(1, ge=0)
    n_lora_q: int = Field(64, ge=0, multiple_of=32)
    n_lora_kv: int = Field(64, ge=32, multiple_of=32)
    n_rot: int = Field(32, ge=2, multiple_of=2)
    n_embd_head_qk_nope: int = Field(32, ge=32, multiple_of=32)
    n_embd_head_v_mla: int = Field(32, ge=32, multiple_of=32)
    n_ff_exp: int = Field(64, ge=32, multiple_of=32)
    n_expert_shared: int = Field(1, ge=0)
    n_expert_groups: int = Field(0, ge=0)  # 0: R1's 8 groups when n_expert allows, else none
    n_group_used: int = Field(0, ge=0)  # 0: half the groups (R1: 4 of 8)
    quantize: str | None = None  # llama-quantize type, e.g. Q4_K_M
    split_max_size: str | None = None  # llama-gguf-split --split-max-size, e.g. 2G

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
        if self.quantize is not None and self.quantize.upper() not in QUANT_TYPES:
            raise ValueError(f"quantize {self.quantize!r} is not one of {', '.join(QUANT_TYPES)}")
        if self.quantize and self.dtype not in ("f16", "f32", "q8_0"):
            raise ValueError("quantize needs dtype f16, f32 or q8_0")
        if self.split_max_size is not None and not _SIZE_RE.match(self.split_max_size):
            raise ValueError(f"split_max_size {self.split_max_size!r}: give a size like 500M or 2G")
        if self.arch == "deepseek2":
            if not self.n_expert or self.n_expert_used < 1:
                raise ValueError("deepseek2 needs routed experts: set n_expert and n_expert_used")
            if self.n_layer <= self.n_layer_dense_lead:
                raise ValueError("deepseek2 needs n_layer > n_layer_dense_lead (at least one MoE layer)")
            if self.n_layer in (26, 27):
                raise ValueError("n_layer 26 or 27 makes llama.cpp read a DeepSeek 'lite' model (no q LoRA): "
                                 "pick another layer count")
            groups, used = self.expert_groups
            if groups and (self.n_expert % groups or not 0 < used < groups):
                raise ValueError("n_expert must be a multiple of n_expert_groups, and 0 < n_group_used "
                                 "< n_expert_groups")
        return self

    def ident(self) -> dict:
        """What names the model: every field, minus the newer ones left at their defaults."""
        data = self.model_dump()
        return {k: v for k, v in data.items() if k not in _NEW_FIELDS or v != _NEW_FIELDS[k]}

    @property
    def expert_groups(self) -> tuple[int, int]:
        """(groups, groups used) of deepseek2 routing; R1 has 8 and 4 (0, 0: ungrouped)."""
        groups = self.n_expert_groups
        if not groups and self.n_expert >= 16 and self.n_expert % 8 == 0:
            groups = 8
        used = self.n_group_used or groups // 2
        if groups and used * self.n_expert // groups < self.n_expert_used:
            used = -(-self.n_expert_used * groups // self.n_expert)  # enough groups for the top-k
        return (groups, used) if groups > 1 else (0, 0)

    @property
    def file_stem(self) -> str:
        kind = "deepseek2" if self.arch == "deepseek2" else "moe" if self.n_expert else "dense"
        return f"omni-{kind}-{(self.quantize or self.dtype).lower()}-{self.key}"

    @property
    def key(self) -> str:
        """Short content hash: same shape and generator version → same file."""
        blob = f"{GENERATOR_VERSION}:{json.dumps(self.ident(), separators=(',', ':'))}".encode()
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
    if s.arch == "deepseek2":
        yield from _deepseek2_plan(s)
        return
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


def _deepseek2_plan(s: ModelShape) -> Iterator[tuple[str, tuple[int, ...], str]]:
    """DeepSeek-V3/R1 tensors with numpy dims (ggml's reversed), as llama.cpp's deepseek2 loader wants.

    Roles: "in" reads the residual stream (its column 0 zeroed), "out" writes it (row 0 zeroed),
    "mid" maps between inner projections (untouched), "zeros" is the routing bias.
    """
    k_mla = s.n_embd_head_qk_nope + s.n_rot
    yield "token_embd.weight", (s.n_vocab, s.n_embd), "embd"
    for i in range(s.n_layer):
        b = f"blk.{i}."
        yield b + "attn_norm.weight", (s.n_embd,), "norm"
        if s.n_lora_q:
            yield b + "attn_q_a_norm.weight", (s.n_lora_q,), "norm"
        yield b + "attn_kv_a_norm.weight", (s.n_lora_kv,), "norm"
        if s.n_lora_q:
            yield b + "attn_q_a.weight", (s.n_lora_q, s.n_embd), "in"
            yield b + "attn_q_b.weight", (s.n_head * k_mla, s.n_lora_q), "mid"
        else:
            yield b + "attn_q.weight", (s.n_head * k_mla, s.n_embd), "in"
        yield b + "attn_kv_a_mqa.weight", (s.n_lora_kv + s.n_rot, s.n_embd), "in"
        yield b + "attn_k_b.weight", (s.n_head, s.n_lora_kv, s.n_embd_head_qk_nope), "mid"
        yield b + "attn_v_b.weight", (s.n_head, s.n_embd_head_v_mla, s.n_lora_kv), "mid"
        yield b + "attn_output.weight", (s.n_embd, s.n_head * s.n_embd_head_v_mla), "out"
        yield b + "ffn_norm.weight", (s.n_embd,), "norm"
        if i < s.n_layer_dense_lead:
            yield b + "ffn_gate.weight", (s.n_ff, s.n_embd), "in"
            yield b + "ffn_up.weight", (s.n_ff, s.n_embd), "in"
            yield b + "ffn_down.weight", (s.n_embd, s.n_ff), "out"
            continue
        yield b + "ffn_gate_inp.weight", (s.n_expert, s.n_embd), "router"
        yield b + "exp_probs_b.bias", (s.n_expert,), "zeros"
        yield b + "ffn_gate_exps.weight", (s.n_expert, s.n_ff_exp, s.n_embd), "in"
        yield b + "ffn_up_exps.weight", (s.n_expert, s.n_ff_exp, s.n_embd), "in"
        yield b + "ffn_down_exps.weight", (s.n_expert, s.n_embd, s.n_ff_exp), "out"
        if s.n_expert_shared:
            shexp = s.n_ff_exp * s.n_expert_shared
            yield b + "ffn_gate_shexp.weight", (shexp, s.n_embd), "in"
            yield b + "ffn_up_shexp.weight", (shexp, s.n_embd), "in"
            yield b + "ffn_down_shexp.weight", (s.n_embd, shexp), "out"
    yield "output_norm.weight", (s.n_embd,), "norm"
    yield "output.weight", (s.n_vocab, s.n_embd), "logits"


def _make(enc: _Encoder, dims: tuple[int, ...], role: str) -> np.ndarray:
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


def _nbytes(enc: _Encoder, dims: tuple[int, ...], role: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """Byte shape, numpy dtype and size of a tensor as `_make` will produce it."""
    if role in ("norm", "router", "zeros"):
        return dims, np.dtype(np.float32), int(np.prod(dims)) * 4
    if enc.qtype == gguf.GGMLQuantizationType.Q8_0:
        bdims = (*dims[:-1], dims[-1] // 32 * 34)
        return bdims, np.dtype(np.uint8), int(np.prod(bdims))
    dt = np.dtype(np.float16 if enc.qtype == gguf.GGMLQuantizationType.F16 else np.float32)
    return dims, dt, int(np.prod(dims)) * dt.itemsize


def llama_tool(name: str) -> str:
    """A llama.cpp tool: from $OMNI_LLAMA_BIN (a folder), else beside llama-server or on PATH."""
    folders = [os.environ.get("OMNI_LLAMA_BIN", "")]
    server = shutil.which("llama-server")
    folders += [str(Path(server).parent)] if server else []
    for folder in filter(None, folders):
        exe = Path(folder) / name
        if exe.is_file() and os.access(exe, os.X_OK):
            return str(exe)
    found = shutil.which(name)
    if not found:
        raise GenModelError(f"{name} not found: build it (TARGETS='{name}' scripts/build_llama_cpp.sh ...) "
                            "and put its folder on PATH or in OMNI_LLAMA_BIN")
    return found


def _tool(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        raise GenModelError(f"{what} failed (exit {proc.returncode}): {tail}")


def shard_glob(path: Path) -> list[Path]:
    """The shards `llama-gguf-split` wrote for output `path` (`stem-00001-of-0000N.gguf` ...)."""
    return sorted(path.parent.glob(f"{glob_escape(path.stem)}-[0-9][0-9][0-9][0-9][0-9]-of-*.gguf"))


def glob_escape(text: str) -> str:
    return re.sub(r"([*?[])", r"[\1]", text)


def write_model(shape: ModelShape, path: Path) -> Path:
    """Write the model to `path` (the first shard's path when split), quantized when asked.

    Every file is written to a temp name and renamed when whole, so a full disk or a kill leaves no
    partial model that a later run would load; a write error is a GenModelError naming the folder.
    """
    try:
        return _write_model(shape, path)
    except OSError as err:
        try:
            free = f"{shutil.disk_usage(path.parent).free / 2**20:.0f} MiB free there"
        except OSError:
            free = "its folder is not writable"
        reason = err.strerror or str(err)
        raise GenModelError(f"cannot write {path} ({reason}; {free}; the model needs "
                            f"{model_bytes(shape) / 2**20:.0f} MiB): nothing partial was kept; free space "
                            "or point --out / OMNI_MODEL_CACHE at a larger disk") from None


def _write_model(shape: ModelShape, path: Path) -> Path:
    """:func:`write_model` without the error translation.

    The unquantized GGUF is written first (atomically), then `llama-quantize` and
    `llama-gguf-split` turn it into the final file(s); intermediates are removed.
    """
    if not shape.quantize and not shape.split_max_size:
        return _write_raw(shape, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.with_name(f".{path.stem}.{os.getpid()}.raw.gguf")
    quant = path.with_name(f".{path.stem}.{os.getpid()}.quant.gguf")
    try:
        _write_raw(shape, raw)
        if shape.quantize:
            argv = [llama_tool("llama-quantize")]
            argv += ["--allow-requantize"] if shape.dtype == "q8_0" else []
            _tool([*argv, str(raw), str(quant), shape.quantize.upper(), str(os.cpu_count() or 1)],
                  "llama-quantize")
            raw.unlink()
        else:
            raw.rename(quant)
        if not shape.split_max_size:
            os.replace(quant, path)
            return path
        for old in shard_glob(path):
            old.unlink()
        _tool([llama_tool("llama-gguf-split"), "--split", "--split-max-size", shape.split_max_size,
               str(quant), str(path.with_suffix(""))], "llama-gguf-split")
        shards = shard_glob(path)
        if not shards:
            raise GenModelError(f"llama-gguf-split wrote no {path.stem}-0000N-of-*.gguf files")
        return shards[0]
    finally:
        raw.unlink(missing_ok=True)
        quant.unlink(missing_ok=True)


def _write_raw(shape: ModelShape, path: Path) -> Path:
    """Write the GGUF to `path` atomically (temp file + rename), streaming one tensor at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    enc = _Encoder(shape)
    w = gguf.GGUFWriter(tmp, shape.arch)
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
        for handle in w.fout or []:  # after a failure: an open deleted file would keep its space
            with contextlib.suppress(OSError):
                handle.close()
        tmp.unlink(missing_ok=True)
    return path


def _add_metadata(w: gguf.GGUFWriter, s: ModelShape, enc: _Encoder) -> None:
    kind = "deepseek2" if s.arch == "deepseek2" else "moe" if s.n_expert else "dense"
    w.add_name(f"omni-random-{kind}-{s.key}")
    w.add_file_type({"f32": 0, "f16": 1, "q8_0": 7}[s.dtype])
    w.add_context_length(s.n_ctx_train)
    w.add_embedding_length(s.n_embd)
    w.add_block_count(s.n_layer)
    w.add_feed_forward_length(s.n_ff)
    w.add_head_count(s.n_head)
    if s.arch != "deepseek2":
        w.add_head_count_kv(s.n_head_kv)
        w.add_rope_dimension_count(s.head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(s.n_vocab)
    if s.n_expert:
        w.add_expert_count(s.n_expert)
        w.add_expert_used_count(s.n_expert_used)
    if s.arch == "deepseek2":
        _add_deepseek2(w, s)
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


def _add_deepseek2(w: gguf.GGUFWriter, s: ModelShape) -> None:
    """The keys llama.cpp's deepseek2 loader reads, written as convert_hf_to_gguf writes R1's."""
    w.add_head_count_kv(1)  # MLA runs as MQA over the compressed latent
    w.add_rope_dimension_count(s.n_rot)
    w.add_leading_dense_block_count(s.n_layer_dense_lead)
    if s.n_lora_q:
        w.add_q_lora_rank(s.n_lora_q)
    w.add_kv_lora_rank(s.n_lora_kv)
    w.add_key_length(s.n_lora_kv + s.n_rot)
    w.add_value_length(s.n_lora_kv)
    w.add_key_length_mla(s.n_embd_head_qk_nope + s.n_rot)
    w.add_value_length_mla(s.n_embd_head_v_mla)
    w.add_expert_feed_forward_length(s.n_ff_exp)
    w.add_expert_shared_count(s.n_expert_shared)
    w.add_expert_weights_scale(2.5)  # R1's routed_scaling_factor
    w.add_expert_weights_norm(True)  # norm_topk_prob
    w.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID)  # scoring_func = sigmoid
    groups, used = s.expert_groups
    if groups:
        w.add_expert_group_count(groups)
        w.add_expert_group_used_count(used)


def model_file(shape: ModelShape, directory: Path | None = None) -> Path:
    """Where the cached model for `shape` is (its first shard when split), generated or not."""
    path = (directory or cache_dir()) / f"{shape.file_stem}.gguf"
    if shape.split_max_size:
        shards = shard_glob(path)
        return shards[0] if shards else path.with_name(f"{path.stem}-00001-of-NNNNN.gguf")
    return path


def ensure_model(shape: ModelShape, directory: Path | None = None) -> Path:
    """Path of the cached model for `shape` (first shard when split), generating it when absent."""
    path = model_file(shape, directory)
    if path.exists():
        try:
            gguf_files.shard_paths(str(path))
            return path
        except gguf_files.ShardError:
            pass  # an interrupted split: write it again
    return write_model(shape, (directory or cache_dir()) / f"{shape.file_stem}.gguf")


def model_bytes(shape: ModelShape) -> int:
    """File payload size (tensor data only), for sizing models before generating them."""
    enc = _Encoder.__new__(_Encoder)
    enc.shape = shape
    enc.qtype = {"f32": 0, "f16": 1, "q8_0": gguf.GGMLQuantizationType.Q8_0}[shape.dtype]
    return sum(_nbytes(enc, d, r)[2] for _n, d, r in _tensor_plan(shape))
