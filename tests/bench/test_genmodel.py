"""The generated GGUF: readable, llama.cpp-loadable, real SentencePiece vocab, exact output lengths."""

from __future__ import annotations

import time
from pathlib import Path

import gguf
import numpy as np
import pytest

from bench.genmodel.cache import ensure_model
from bench.genmodel.shape import ModelShape
from bench.genmodel.vocab import forbidden_token_ids, vocab
from bench.genmodel.weights import model_bytes
from bench.genmodel.write import write_model
from bench.server import http_json
from tests.bench.benchutil import TINY


def _kv(reader: gguf.GGUFReader, key: str):
    field = reader.fields[key]
    return field.contents()


def test_vocab_is_sentencepiece_style_with_byte_tokens():
    tokens, scores, types = vocab(1024)
    assert tokens[:3] == ["<unk>", "<s>", "</s>"]
    assert tokens[3] == "<0x00>" and tokens[258] == "<0xFF>"
    assert types[:3] == [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    assert set(types[3:259]) == {gguf.TokenType.BYTE}
    assert set(types[259:]) == {gguf.TokenType.NORMAL}
    assert "▁" in tokens and "▁a" in tokens and "ab" in tokens
    assert len(tokens) == len(set(tokens)) == len(scores) == 1024
    assert scores[259] > scores[-1]  # shorter pieces first, preferred by merges


def test_dense_file_metadata_and_shapes(tmp_path: Path):
    shape = ModelShape(n_embd=64, n_layer=2, n_ff=128, n_head=4, n_head_kv=2, n_vocab=512, dtype="f32")
    path = write_model(shape, tmp_path / "dense.gguf")
    r = gguf.GGUFReader(path)
    assert _kv(r, "general.architecture") == "llama"
    assert _kv(r, "llama.block_count") == 2
    assert _kv(r, "tokenizer.ggml.model") == "llama"
    assert _kv(r, "tokenizer.ggml.eos_token_id") == 2
    t = {x.name: x for x in r.tensors}
    assert list(t["blk.0.attn_k.weight"].shape) == [64, 32]  # ne0 = n_embd, ne1 = kv heads * head dim
    assert "blk.1.ffn_down.weight" in t and "blk.0.ffn_gate_exps.weight" not in t
    out = np.asarray(t["output.weight"].data).reshape(512, 64)
    assert (out[:259, 0] < -50).all() and (out[259:, 0] == 0).all()
    down = np.asarray(t["blk.0.ffn_down.weight"].data).reshape(64, 128)
    assert (down[0] == 0).all()  # nothing writes the residual's dim 0
    assert path.stat().st_size >= model_bytes(shape)


def test_moe_q8_file_has_mixtral_tensors(tmp_path: Path):
    shape = ModelShape(n_embd=64, n_layer=2, n_ff=64, n_head=4, n_head_kv=2, n_vocab=512,
                       n_expert=4, n_expert_used=2, dtype="q8_0")
    r = gguf.GGUFReader(write_model(shape, tmp_path / "moe.gguf"))
    assert _kv(r, "llama.expert_count") == 4 and _kv(r, "llama.expert_used_count") == 2
    t = {x.name: x for x in r.tensors}
    assert t["blk.0.ffn_gate_exps.weight"].tensor_type == gguf.GGMLQuantizationType.Q8_0
    assert list(t["blk.0.ffn_gate_exps.weight"].shape) == [64, 64, 4]
    assert list(t["blk.1.ffn_gate_inp.weight"].shape) == [64, 4]
    assert "blk.0.ffn_gate.weight" not in t


def test_bad_shape_is_refused():
    with pytest.raises(ValueError, match="n_expert_used"):
        ModelShape(n_expert=4, n_expert_used=5)


def test_cache_reuses_the_file(model_cache: Path):
    first = ensure_model(TINY)
    mtime = first.stat().st_mtime_ns
    assert ensure_model(TINY) == first and first.stat().st_mtime_ns == mtime
    assert first.parent == model_cache


def test_big_tensors_are_generated_fast(tmp_path: Path):
    """~200 MB in well under the time a per-element RNG would need (tiling a random block)."""
    shape = ModelShape(n_embd=1024, n_layer=8, n_ff=2816, n_head=16, n_head_kv=8, n_vocab=8192)
    t0 = time.monotonic()
    path = write_model(shape, tmp_path / "big.gguf")
    took = time.monotonic() - t0
    assert path.stat().st_size > 190e6
    assert took < 20, f"{took:.1f} s for {path.stat().st_size >> 20} MiB"
    path.unlink()


@pytest.mark.slow
def test_forbidden_tokens_are_never_sampled(tiny_model: Path, start_server):
    """Without ignore_eos, every request still yields exactly n_predict normal tokens."""
    base = start_server(tiny_model, "-t", "1", "-c", "2048")
    forbidden = set(forbidden_token_ids())
    for seed in range(4):
        status, body = http_json(f"{base}/completion", {
            "prompt": "once upon a time", "n_predict": 400, "return_tokens": True, "seed": seed,
            "temperature": 1.5, "top_k": 0, "top_p": 1.0, "min_p": 0.0,
        }, timeout=60)
        assert status == 200, body
        assert len(body["tokens"]) == 400 and body["stop_type"] == "limit"
        assert not forbidden & set(body["tokens"])
        assert len(set(body["tokens"])) > 100  # varied output, not one token repeated


@pytest.mark.slow
def test_moe_model_serves(tmp_path: Path, start_server):
    shape = ModelShape(n_embd=128, n_layer=2, n_ff=128, n_head=4, n_head_kv=2, n_vocab=1024,
                       n_expert=4, n_expert_used=2, dtype="q8_0")
    base = start_server(ensure_model(shape, tmp_path), "-t", "1", "-c", "1024", "--cpu-moe")
    status, body = http_json(f"{base}/completion", {"prompt": "hello", "n_predict": 64,
                                                    "return_tokens": True}, timeout=60)
    assert status == 200 and len(body["tokens"]) == 64
    assert min(body["tokens"]) >= len(forbidden_token_ids())


DS2 = dict(arch="deepseek2", n_embd=256, n_layer=4, n_head=4, n_ff=512, n_vocab=1024, n_expert=16,
           n_expert_used=8, n_ff_exp=256)


def test_deepseek2_proxy_has_r1_structure_and_serves(tmp_path: Path, start_server):
    """MLA + dense lead + routed/shared experts + R1 gating, loaded and sampled by llama.cpp (xllamacpp)."""
    from gguf import GGUFReader

    path = write_model(ModelShape(**DS2), tmp_path / "ds2.gguf")
    r = GGUFReader(path)
    names = {t.name for t in r.tensors}
    assert {"blk.0.ffn_down.weight", "blk.1.ffn_down_exps.weight", "blk.1.ffn_up_shexp.weight",
            "blk.1.attn_kv_a_mqa.weight", "blk.1.attn_k_b.weight", "blk.1.exp_probs_b.bias"} <= names
    assert "blk.0.ffn_gate_inp.weight" not in names  # the leading dense layer has no router
    meta = {k: f.contents() for k, f in r.fields.items() if k.startswith("deepseek2.")}
    assert meta["deepseek2.expert_gating_func"] == 2 and meta["deepseek2.expert_used_count"] == 8
    assert meta["deepseek2.attention.key_length"] == 64 + 32 and meta["deepseek2.expert_group_count"] == 8
    base = start_server(path, "-t", "1", "-c", "1024")
    status, body = http_json(f"{base}/completion", {"prompt": "hello", "n_predict": 48, "return_tokens": True,
                                                    "temperature": 1.0}, timeout=60)
    assert status == 200 and len(body["tokens"]) == 48
    assert min(body["tokens"]) >= len(forbidden_token_ids())


def test_deepseek2_quantized_and_split_by_the_real_tools(tmp_path: Path, llama_server_binary: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    """llama-quantize writes the K-quant mix, llama-gguf-split the shards; every reader sums them."""
    from gguf import GGUFReader

    from bench.planner.model import model_table
    from omni.gguf_files import shard_paths, total_bytes

    monkeypatch.setenv("OMNI_LLAMA_BIN", str(llama_server_binary.parent))
    q4 = ensure_model(ModelShape(**DS2, dtype="q8_0", quantize="Q4_K_M"), tmp_path)
    types = {t.tensor_type.name for t in GGUFReader(q4).tensors}
    assert {"Q4_K", "Q6_K"} <= types
    q3 = ensure_model(ModelShape(**DS2, quantize="Q3_K_M", split_max_size="2M"), tmp_path)
    shards = shard_paths(str(q3))
    assert len(shards) > 1 and q3.name.endswith(f"-00001-of-{len(shards):05d}.gguf")
    assert "Q3_K" in {t.tensor_type.name for t in GGUFReader(shards[0]).tensors}
    size = sum(Path(p).stat().st_size for p in shards)
    assert total_bytes(shards[-1]) == size and model_table(shards[-1]).model.file_bytes == size
    assert ensure_model(ModelShape(**DS2, quantize="Q3_K_M", split_max_size="2M"), tmp_path) == q3  # cached


def _amx_here() -> bool:
    return "amx_tile" in Path("/proc/cpuinfo").read_text().split()


@pytest.mark.parametrize("dtype, quantize", [("f16", None), ("q8_0", "Q4_K_M")])
def test_deepseek2_proxy_planned_and_served_by_the_real_llama_server(
        tmp_path: Path, llama_server_binary: Path, serve, monkeypatch: pytest.MonkeyPatch,
        dtype: str, quantize: str | None):
    """`bench plan` for this CPU-only host, launched as the spec says by the pinned llama-server.

    On an AMX CPU the plan adds --no-repack: without it this build aborts the f16 proxy in
    ggml_backend_sched_split_graph (attn_k_b in the AMX buffer, see bench.planner.host.NO_AMX_REASON).
    """
    import tomllib

    from bench.plan import server_configs
    from bench.planner.host import host_from_facts
    from bench.planner.model import model_table
    from bench.planner.placement import Settings
    from bench.planner.render import spec_text
    from bench.planner.search import plan
    from bench.spec import parse_spec
    from facts.collect import collect_local

    monkeypatch.setenv("OMNI_LLAMA_BIN", str(llama_server_binary.parent))
    model = ensure_model(ModelShape(**DS2, dtype=dtype, quantize=quantize), tmp_path)
    mt = model_table(model)
    host = host_from_facts(collect_local(), host_gbps=10.0)
    assert not host.gpus and host.cpu_amx == _amx_here()
    s = Settings(ctx=1024)
    best, options = plan(mt, host, s)
    spec = parse_spec(tomllib.loads(spec_text(str(model), mt, host, s, best, [], options,
                                              binary=str(llama_server_binary))))
    assert ("--no-repack" in spec.server.args) == _amx_here()
    config = server_configs(spec)[0]
    assert spec.placement[0].source == "planner"
    assert config.args == ["-ngl", "0", "--threads", str(host.cores)]
    base = serve(str(llama_server_binary), "-m", str(model), *spec.server.args, *config.args[:2], "-t", "1")
    status, body = http_json(f"{base}/completion", {"prompt": "hello", "n_predict": 32, "return_tokens": True,
                                                    "temperature": 1.0}, timeout=120)
    assert status == 200 and len(body["tokens"]) == 32
    assert min(body["tokens"]) >= len(forbidden_token_ids())
    from bench.engines.llamacpp import log_buffers

    log = (tmp_path / f"server-{base.rsplit(':', 1)[1]}.log").read_text()
    buffers = log_buffers(log)  # the spec's -lv 4: where the weights went is read back
    # every weight on the CPU: mmapped, or (AVX2 hosts, Q4_K) repacked into CPU_REPACK; the mapped
    # buffer spans first to last mapped tensor, so it may still cover repacked ones' bytes
    size, mib = model.stat().st_size, 2**20
    assert buffers["CPU_Mapped model"] * mib <= size * 1.05, buffers
    assert (buffers["CPU_Mapped model"] + buffers.get("CPU_REPACK model", 0)) * mib >= size * 0.95, buffers
    assert all(k.startswith("CPU") for k in buffers), buffers
