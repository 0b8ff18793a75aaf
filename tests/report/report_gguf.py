"""Tiny GGUF files written with gguf.GGUFWriter, so byte counts are known exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter

N_EMBD, N_FF, N_VOCAB = 32, 64, 48


def write_model(
    path: Path, *, n_layer: int = 2, n_expert: int = 0, n_used: int = 0, shexp: bool = False,
    tied: bool = False, q8_output: bool = False, split_max_tensors: int = 0,
) -> Path:
    """A Llama-layout GGUF (f32/f16, optional Mixtral-style experts and a Q8_0 output)."""
    w = GGUFWriter(path, "llama", split_max_tensors=split_max_tensors)
    w.add_block_count(n_layer)
    w.add_embedding_length(N_EMBD)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(4)
    w.add_context_length(128)
    if n_expert:
        w.add_expert_count(n_expert)
        w.add_expert_used_count(n_used)
    w.add_tensor("token_embd.weight", np.zeros((N_VOCAB, N_EMBD), np.float32))
    for il in range(n_layer):
        p = f"blk.{il}."
        w.add_tensor(p + "attn_norm.weight", np.zeros(N_EMBD, np.float32))
        for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w.add_tensor(p + n + ".weight", np.zeros((N_EMBD, N_EMBD), np.float16))
        w.add_tensor(p + "ffn_norm.weight", np.zeros(N_EMBD, np.float32))
        if n_expert:
            w.add_tensor(p + "ffn_gate_inp.weight", np.zeros((n_expert, N_EMBD), np.float32))
            for n in ("ffn_gate_exps", "ffn_up_exps"):
                w.add_tensor(p + n + ".weight", np.zeros((n_expert, N_FF, N_EMBD), np.float16))
            w.add_tensor(p + "ffn_down_exps.weight", np.zeros((n_expert, N_EMBD, N_FF), np.float16))
            if shexp:
                for n in ("ffn_gate_shexp", "ffn_up_shexp"):
                    w.add_tensor(p + n + ".weight", np.zeros((N_FF, N_EMBD), np.float16))
                w.add_tensor(p + "ffn_down_shexp.weight", np.zeros((N_EMBD, N_FF), np.float16))
        else:
            for n in ("ffn_gate", "ffn_up"):
                w.add_tensor(p + n + ".weight", np.zeros((N_FF, N_EMBD), np.float16))
            w.add_tensor(p + "ffn_down.weight", np.zeros((N_EMBD, N_FF), np.float16))
    w.add_tensor("output_norm.weight", np.zeros(N_EMBD, np.float32))
    if not tied:
        if q8_output:  # Q8_0: 32 values in 34 bytes
            w.add_tensor("output.weight", np.zeros((N_VOCAB, N_EMBD // 32 * 34), np.uint8),
                         raw_dtype=GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor("output.weight", np.zeros((N_VOCAB, N_EMBD), np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
