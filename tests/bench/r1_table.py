"""DeepSeek-R1's real tensor table as a sparse GGUF: every name, shape and type, no weights on disk.

Shapes come from the public config (tests/fixtures/deepseek-r1/config.json) laid out the way
llama.cpp's deepseek2 loader reads them; types follow llama-quantize's Q4_K_M rules (Q4_K, ffn_down
in Q6_K on `use_more_bits` layers, Q6_K output, Q5_0 where a row is not a multiple of 256, f32
norms/router/bias). The data section is a hole, so a 377 GiB file costs a few kB of disk.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter
from gguf.constants import GGML_QUANT_SIZES

CONFIG = Path(__file__).resolve().parents[1] / "fixtures" / "deepseek-r1" / "config.json"
UNSLOTH_Q4_K_M_BYTES = 404_430_000_000  # unsloth/DeepSeek-R1-GGUF DeepSeek-R1-Q4_K_M, 9 shards (published)


def _more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def tensor_table(cfg: dict, chexps: bool = False) -> list[tuple[str, tuple[int, ...], Q]]:
    """(name, ggml ne (fastest first), type) in file order; `chexps`: GroveMoE-style chunk experts too."""
    d, n, h = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"]
    nope, rope, v = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    ql, kvl, ff, fe, e = (cfg["q_lora_rank"], cfg["kv_lora_rank"], cfg["intermediate_size"],
                          cfg["moe_intermediate_size"], cfg["n_routed_experts"])

    def q(ne0: int, down: bool = False, il: int = 0) -> Q:
        if ne0 % 256:
            return Q.Q5_0
        return Q.Q6_K if down and _more_bits(il, n) else Q.Q4_K

    out = [("token_embd.weight", (d, cfg["vocab_size"]), Q.Q4_K)]
    for il in range(n):
        b = f"blk.{il}."
        out += [(b + "attn_norm.weight", (d,), Q.F32), (b + "attn_q_a_norm.weight", (ql,), Q.F32),
                (b + "attn_kv_a_norm.weight", (kvl,), Q.F32),
                (b + "attn_q_a.weight", (d, ql), q(d)),
                (b + "attn_q_b.weight", (ql, h * (nope + rope)), q(ql)),
                (b + "attn_kv_a_mqa.weight", (d, kvl + rope), q(d)),
                (b + "attn_k_b.weight", (nope, kvl, h), q(nope)),
                (b + "attn_v_b.weight", (kvl, v, h), q(kvl)),
                (b + "attn_output.weight", (h * v, d), q(h * v)), (b + "ffn_norm.weight", (d,), Q.F32)]
        if il < cfg["first_k_dense_replace"]:
            out += [(b + "ffn_gate.weight", (d, ff), q(d)), (b + "ffn_up.weight", (d, ff), q(d)),
                    (b + "ffn_down.weight", (ff, d), q(ff, True, il))]
            continue
        out += [(b + "ffn_gate_inp.weight", (d, e), Q.F32), (b + "exp_probs_b.bias", (e,), Q.F32),
                (b + "ffn_gate_exps.weight", (d, fe, e), q(d)), (b + "ffn_up_exps.weight", (d, fe, e), q(d)),
                (b + "ffn_down_exps.weight", (fe, d, e), q(fe, True, il)),
                (b + "ffn_gate_shexp.weight", (d, fe), q(d)), (b + "ffn_up_shexp.weight", (d, fe), q(d)),
                (b + "ffn_down_shexp.weight", (fe, d), q(fe, True, il))]
        if chexps:
            out += [(b + f"ffn_{k}_chexps.weight", (d, fe, 8) if k != "down" else (fe, d, 8), q(d))
                    for k in ("gate", "up", "down")]
    out += [("output_norm.weight", (d,), Q.F32), ("output.weight", (d, cfg["vocab_size"]), Q.Q6_K)]
    return out


def write_r1(path: Path, chexps: bool = False) -> Path:
    """The sparse R1 Q4_K_M GGUF at `path` (metadata as convert_hf_to_gguf writes it)."""
    cfg = json.loads(CONFIG.read_text())
    w = GGUFWriter(path, "deepseek2")
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(1)
    w.add_vocab_size(cfg["vocab_size"])
    w.add_leading_dense_block_count(cfg["first_k_dense_replace"])
    w.add_q_lora_rank(cfg["q_lora_rank"])
    w.add_kv_lora_rank(cfg["kv_lora_rank"])
    w.add_key_length(cfg["kv_lora_rank"] + cfg["qk_rope_head_dim"])
    w.add_value_length(cfg["kv_lora_rank"])
    w.add_key_length_mla(cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"])
    w.add_value_length_mla(cfg["v_head_dim"])
    w.add_rope_dimension_count(cfg["qk_rope_head_dim"])
    w.add_expert_feed_forward_length(cfg["moe_intermediate_size"])
    w.add_expert_count(cfg["n_routed_experts"])
    w.add_expert_used_count(cfg["num_experts_per_tok"])
    w.add_expert_shared_count(cfg["n_shared_experts"])
    w.add_expert_group_count(cfg["n_group"])
    w.add_expert_group_used_count(cfg["topk_group"])
    w.add_file_type(15)  # MOSTLY_Q4_K_M
    sizes = []
    for name, ne, qt in tensor_table(cfg, chexps):
        block, type_size = GGML_QUANT_SIZES[qt]
        nbytes = int(np.prod(ne)) // block * type_size
        byte_shape = (*reversed(ne[1:]), ne[0] // block * type_size)
        w.add_tensor_info(name, byte_shape, np.dtype(np.uint8), nbytes, raw_dtype=qt)
        sizes.append(nbytes)
    w.write_header_to_file(path)
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    f = w.fout[0]
    f.flush()
    start = -(-f.tell() // w.data_alignment) * w.data_alignment
    f.truncate(start + sum(-(-s // w.data_alignment) * w.data_alignment for s in sizes))
    w.close()
    return path
