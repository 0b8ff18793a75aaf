"""The GGUF's tensors grouped the way placement needs them: per-layer dense bytes, routed experts, KV."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.planner import PlanError
from bench.report.modelbytes import ModelBytes, ModelFileError, _scalar, read_model
from omni.gguf_files import kv_bytes_per_token

# The `_exps` half of llama.cpp's LLM_FFN_EXPS_REGEX (omni.llama_overrides.EXPS_REGEX, whose other
# half is GroveMoE's `_chexps` chunk experts): the `-ot` text of every plan, so it stays as written.
EXPS = r"\.ffn_(up|down|gate|gate_up)_exps\."
EXP_TENSOR = re.compile(r"^blk\.(\d+)\.ffn_(up|down|gate|gate_up)_exps\.")


@dataclass(frozen=True)
class ModelTable:
    """The GGUF's tensors grouped the way placement needs them."""

    model: ModelBytes
    n_layer: int
    dense: tuple[int, ...]  # per layer: bytes of every non-routed tensor (attention, dense FFN, shexp)
    dense_read: tuple[float, ...]
    experts: dict[str, int]  # routed-expert tensor name -> bytes
    expert_read_share: float  # share of a routed tensor read per token (used / count)
    output_bytes: int  # output.weight + output_norm: on the device of the "output layer"
    embd_bytes: int  # token_embd: host
    embd_read: float
    kv_per_token_layer: float  # KV bytes per token per layer (f16)
    n_vocab: int
    n_embd: int


def model_table(path: str | Path) -> ModelTable:
    """The (possibly split) GGUF at `path` as a ModelTable; PlanError when it is no llama.cpp model."""
    try:
        mb = read_model(path)
    except ModelFileError as exc:
        raise PlanError(str(exc)) from None
    if mb.n_layer <= 0:
        raise PlanError(f"{path}: no {mb.arch}.block_count; not a llama.cpp model GGUF")
    from gguf import GGUFReader

    from omni.gguf_files import shard_paths

    reader = GGUFReader(shard_paths(mb.path)[0])  # metadata lives in the first shard
    meta = {k: f.contents() for k, f in reader.fields.items() if k.startswith(mb.arch + ".")}
    kv = kv_bytes_per_token(meta, mb.arch) / mb.n_layer
    dense = [0] * mb.n_layer
    dense_read = [0.0] * mb.n_layer
    experts: dict[str, int] = {}
    out = embd = 0
    embd_read = 0.0
    unplaced = [t.name for t in mb.tensors if t.routed_expert and not EXP_TENSOR.match(t.name)]
    if unplaced:  # e.g. GroveMoE's ffn_*_chexps: other read shares, and no -ot rule of ours moves them
        raise PlanError(f"{path}: {len(unplaced)} routed-expert tensors the planner cannot place yet "
                        f"({', '.join(unplaced[:3])}{' ...' if len(unplaced) > 3 else ''}); place this model "
                        "by hand (-ot rules) or with llama.cpp's --fit on")
    for t in mb.tensors:
        if t.routed_expert:
            experts[t.name] = t.n_bytes
        elif t.layer is not None and t.layer < mb.n_layer:
            dense[t.layer] += t.n_bytes
            dense_read[t.layer] += t.read_bytes
        elif t.name.startswith("token_embd"):
            embd, embd_read = t.n_bytes, t.read_bytes
        else:
            out += t.n_bytes
    share = mb.expert_used_count / mb.expert_count if mb.is_moe else 1.0
    n_vocab = int(_scalar(reader, f"{mb.arch}.vocab_size") or 0) or 32000
    n_embd = int(_scalar(reader, f"{mb.arch}.embedding_length") or 0)
    return ModelTable(mb, mb.n_layer, tuple(dense), tuple(dense_read), experts, share, out, embd, embd_read,
                      kv, n_vocab, n_embd)


def expert_groups(mt: ModelTable) -> dict[int, list[str]]:
    """Layer -> its routed-expert tensor names: the unit the fill places first."""
    groups: dict[int, list[str]] = {}
    for name in mt.experts:
        m = EXP_TENSOR.match(name)
        if m:
            groups.setdefault(int(m.group(1)), []).append(name)
    return groups


def expert_kinds(names: Iterable[str]) -> dict[int, set[str]]:
    """Layer -> the routed-expert kinds (up, down, gate, gate_up) among `names`."""
    by_layer: dict[int, set[str]] = {}
    for n in names:
        m = EXP_TENSOR.match(n)
        if m:
            by_layer.setdefault(int(m.group(1)), set()).add(m.group(2))
    return by_layer


def whole_layers(by_layer: dict[int, set[str]]) -> list[int]:
    """The layers whose routed experts are all there (up+down+gate, or a merged gate_up), sorted."""
    return sorted(il for il, kinds in by_layer.items() if len(kinds) >= 3 or "gate_up" in kinds)
