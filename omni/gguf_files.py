"""All files of a (possibly split) GGUF model, and their total size: the one home of that rule.

Why one home: a 281-400 GB DeepSeek-R1 GGUF comes as shards (``name-00001-of-00009.gguf``), and
every reader of model size (the sweep's bytes per token, the planner, the phase-5 memory budget, the
download's disk-space check) must count all of them, not the first. This module uses only the
standard library so that ``facts.gguf`` can ship its source to a host that has python3 but
no project venv.
"""

from __future__ import annotations

import os
import re

SHARD_RE = re.compile(r"^(?P<stem>.*)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")


class ShardError(ValueError):
    """Shards of a split GGUF are missing; the message names them and the fix."""


def shard_names(path: str) -> list[str]:
    """Every file a split GGUF must have, in order (any shard's path names the set), or [path]."""
    folder, name = os.path.split(str(path))
    m = SHARD_RE.match(name)
    if not m:
        return [str(path)]
    count = int(m.group("count"))
    stem = m.group("stem")
    return [os.path.join(folder, f"{stem}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]


def present_shards(path: str) -> tuple[list[str], list[str]]:
    """(shards present, shards missing) of the model at ``path``."""
    names = shard_names(path)
    return [p for p in names if os.path.isfile(p)], [p for p in names if not os.path.isfile(p)]


def shard_paths(path: str) -> list[str]:
    """All files of the model at ``path``; ShardError when any shard is missing."""
    present, missing = present_shards(path)
    if missing and not present:
        raise ShardError(f"{path}: model file not found; give the path of the GGUF (any of its shards)")
    if missing:
        names = ", ".join(os.path.basename(p) for p in missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise ShardError(f"{path}: split GGUF is missing {len(missing)} of {len(present) + len(missing)} "
                         f"shards ({names}); keep all shards in one folder")
    return present


def total_bytes(path: str) -> int:
    """Size of the whole model: the sum over all its shards (ShardError when one is missing)."""
    return sum(os.path.getsize(p) for p in shard_paths(path))


def present_bytes(path: str) -> int:
    """Bytes of the shards already there (an interrupted download), 0 when none is."""
    return sum(os.path.getsize(p) for p in present_shards(path)[0])


def kv_bytes_per_token(meta: dict, arch: str) -> int:
    """KV-cache bytes per token (all layers, f16) from a GGUF's ``{arch}.*`` metadata values.

    MLA models (DeepSeek: ``attention.kv_lora_rank`` set) cache one compressed latent plus the RoPE
    part per layer; others cache K and V per KV head. ``meta`` maps full key names to values.
    """
    def value(key: str) -> int | list | None:
        return meta.get(f"{arch}.{key}")

    n_layer = value("block_count")
    if n_layer is None:
        raise ValueError(f"{arch}.block_count is missing: not a llama.cpp model GGUF")
    kv_lora = value("attention.kv_lora_rank")
    if kv_lora:
        return int(n_layer) * (int(kv_lora) + int(value("rope.dimension_count") or 0)) * 2
    n_head = value("attention.head_count")
    n_head_kv = value("attention.head_count_kv") or n_head
    n_embd = int(value("embedding_length") or 0)
    heads = n_head[0] if isinstance(n_head, list) else int(n_head or 1)
    k_len = int(value("attention.key_length") or n_embd // heads)
    v_len = int(value("attention.value_length") or n_embd // heads)
    per_layer = n_head_kv if isinstance(n_head_kv, list) else [int(n_head_kv)] * int(n_layer)
    return sum(int(h) * (k_len + v_len) * 2 for h in per_layer)
