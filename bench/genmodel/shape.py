"""What a generated model is: its hyperparameters (`ModelShape`) and the tensors each arch has.

Why one module: the shape names the cached file (a content hash of its fields), and the tensor
plan is the one list that both the size estimate and the writer walk, in file order.

`arch = "deepseek2"` is DeepSeek-V3/R1's structure scaled down, as the pinned llama.cpp's
deepseek2 loader reads it (src/models/deepseek2.cpp): MLA attention (q and kv LoRA ranks, split
k_b/v_b, a RoPE part of the key), `n_layer_dense_lead` dense FFN layers, then routed experts plus
shared experts with R1's gating (sigmoid scores, a selection bias, normalised top-k weights x 2.5,
expert groups). `quantize` and `split_max_size` name what the real tools make of it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bench.genmodel.vocab import N_BYTE, N_SPECIAL

GENERATOR_VERSION = 3  # bump when the bytes a shape produces change (invalidates the cache)
_SIZE_RE = re.compile(r"^\d+[MG]$")
QUANT_TYPES = ("Q4_K_M", "Q4_K_S", "Q3_K_M", "Q3_K_S", "Q2_K", "Q5_K_M", "Q6_K", "Q8_0")
# Fields added after GENERATOR_VERSION 3: left at their defaults they stay out of the content key,
# so the Llama models (and the config ids of sweeps over them) keep their names.
_NEW_FIELDS = {
    "arch": "llama", "n_layer_dense_lead": 1, "n_lora_q": 64, "n_lora_kv": 64, "n_rot": 32,
    "n_embd_head_qk_nope": 32, "n_embd_head_v_mla": 32, "n_ff_exp": 64, "n_expert_shared": 1,
    "n_expert_groups": 0, "n_group_used": 0, "quantize": None, "split_max_size": None,
}


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


def tensor_plan(s: ModelShape) -> Iterator[tuple[str, tuple[int, ...], str]]:
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
