"""Writing a generated model: the GGUF (header, then tensor by tensor), quantized and split by the
real llama.cpp tools when the shape asks.

Why the care: `quantize` runs the built `llama-quantize` (Q4_K_M, Q3_K_M, Q2_K, ...) and
`split_max_size` `llama-gguf-split`, so tensor types, sizes and shard names are the real tools';
every file is written to a temp name and renamed when whole, so a full disk or a kill leaves no
partial model that a later run (or the cache) would load.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import gguf
import numpy as np

from bench.genmodel.shape import ModelShape, tensor_plan
from bench.genmodel.vocab import CHAT_TEMPLATE, vocab
from bench.genmodel.weights import Encoder, make_tensor, model_bytes, tensor_bytes


class GenModelError(ValueError):
    """A model that cannot be generated (a tool missing or failing); one line naming the fix."""


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
    enc = Encoder(shape)
    w = gguf.GGUFWriter(tmp, shape.arch)
    _add_metadata(w, shape, enc)
    plan = list(tensor_plan(shape))
    for name, dims, role in plan:
        bdims, dt, nbytes = tensor_bytes(enc, dims, role)
        raw = enc.qtype if dt == np.uint8 else None
        w.add_tensor_info(name, bdims, dt, nbytes, raw_dtype=raw)
    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        for _name, dims, role in plan:
            w.write_tensor_data(make_tensor(enc, dims, role))
        w.close()
        os.replace(tmp, path)
    finally:
        for handle in w.fout or []:  # after a failure: an open deleted file would keep its space
            with contextlib.suppress(OSError):
                handle.close()
        tmp.unlink(missing_ok=True)
    return path


def _add_metadata(w: gguf.GGUFWriter, s: ModelShape, enc: Encoder) -> None:
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
