"""Bytes a decoder reads per generated token, from a GGUF file's own metadata and tensor table.

Why from the file: the quantisation type of every tensor decides its size, and for a mixture of
experts only `expert_used_count` of `expert_count` routed experts are read per token, so the
bytes per token of a 671B MoE are a small fraction of its file size. Nothing here reads weights;
the reader only memory-maps the header, so a 281 GB file costs milliseconds.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gguf import GGUFReader, GGUFValueType

from omni import gguf_files
from omni.llama_overrides import EXPS_REGEX

# llama.cpp's LLM_FFN_EXPS_REGEX (common/common.h), plus the expert biases that travel with them.
ROUTED_EXPERT_RE = re.compile(EXPS_REGEX + r"\.")
_LAYER_RE = re.compile(r"^blk\.(\d+)\.")


class ModelFileError(ValueError):
    """A GGUF that cannot be read; the message is one line naming the file and the fix."""


@dataclass(frozen=True)
class TensorRead:
    """One tensor: its size on disk and the bytes a single decode step reads from it."""

    name: str
    n_bytes: int
    read_bytes: float
    layer: int | None
    routed_expert: bool


# Tensor groups a placement moves as units, in the order the report lists them (llama.cpp names).
GROUP_ATTENTION = "attention"
GROUP_DENSE = "dense FFN, router, norms"
GROUP_SHARED = "shared expert"
GROUP_ROUTED = "routed experts"
GROUP_OUTPUT = "output / embeddings"
GROUP_OTHER = "other"
TENSOR_GROUPS = (GROUP_ATTENTION, GROUP_DENSE, GROUP_SHARED, GROUP_ROUTED, GROUP_OUTPUT, GROUP_OTHER)
_FFN_RE = re.compile(r"\.(ffn_|exp_probs_b|layer_output_norm)")


def tensor_group(t: TensorRead) -> str:
    """The group of one tensor: what a user places (`-ot exps=CPU` moves the routed experts only)."""
    if t.routed_expert:
        return GROUP_ROUTED
    if t.layer is None:
        return GROUP_OUTPUT if t.name.startswith(("token_embd", "output", "rope_")) else GROUP_OTHER
    if "_shexp" in t.name:
        return GROUP_SHARED
    if ".attn_" in t.name:
        return GROUP_ATTENTION
    if _FFN_RE.search(t.name):
        return GROUP_DENSE
    return GROUP_OTHER


@dataclass(frozen=True)
class ModelBytes:
    """What the ceiling needs from a model file."""

    path: str
    arch: str
    n_layer: int
    expert_count: int
    expert_used_count: int
    file_bytes: int
    tensors: tuple[TensorRead, ...]

    @property
    def bytes_per_token(self) -> float:
        return sum(t.read_bytes for t in self.tensors)

    @property
    def routed_expert_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors if t.routed_expert)

    @property
    def is_moe(self) -> bool:
        return self.expert_count > 0 and self.expert_used_count > 0


def shard_paths(path: Path) -> list[Path]:
    """All files of a split GGUF (`name-00001-of-00005.gguf`), or just `path` (omni.gguf_files)."""
    try:
        return [Path(p) for p in gguf_files.shard_paths(str(path))]
    except gguf_files.ShardError as exc:
        raise ModelFileError(str(exc)) from None


def _scalar(reader: GGUFReader, key: str) -> int | float | str | None:
    field = reader.get_field(key)
    if field is None or not field.types:
        return None
    if field.types[0] == GGUFValueType.STRING:
        return bytes(field.parts[-1]).decode("utf-8", "replace")
    if field.types[0] == GGUFValueType.ARRAY:
        return None
    return field.parts[-1].tolist()[0]


def _open(path: Path) -> GGUFReader:
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found; point the spec's model path at the GGUF")
    try:
        return GGUFReader(path)
    except (ValueError, OSError, IndexError, KeyError) as exc:  # a truncated file fails as any of these
        raise ModelFileError(f"{path}: not a readable GGUF ({exc}); check the file is complete") from None


MODEL_RECORD = "model.json"  # in the sweep dir: the tensor table, so a report renders without the GGUF


def model_to_json(model: ModelBytes) -> dict[str, Any]:
    return asdict(model)


def model_from_json(doc: dict[str, Any]) -> ModelBytes:
    tensors = tuple(TensorRead(**t) for t in doc["tensors"])
    return ModelBytes(**{**{k: v for k, v in doc.items() if k != "tensors"}, "tensors": tensors})


def record_model(path: str | Path, sweep_dir: Path) -> bool:
    """Write the model's tensor table to `sweep_dir/model.json` (once); False when it is unreadable."""
    target = sweep_dir / MODEL_RECORD
    if target.is_file():
        return True
    try:
        model = read_model(path)
    except ModelFileError:
        return False
    from omni.files import atomic_write_text

    atomic_write_text(target, json.dumps(model_to_json(model)) + "\n")
    return True


def model_for_sweep(path: str | Path, sweep_dir: Path) -> tuple[ModelBytes, str]:
    """The sweep's recorded `model.json`, else the model file itself; (model, where it came from).

    Why the record first: the sweep wrote it from the GGUF when it started, so the report need not
    reopen a file of hundreds of GB, and the page renders the same on another machine (where the
    GGUF is absent) or after the file changed. Sweeps made before the record existed read the file.
    """
    record = sweep_dir / MODEL_RECORD
    if record.is_file():
        try:
            model = model_from_json(json.loads(record.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            model = None  # a damaged record: the file itself is the truth
        # the record answers for the model it was made from (or for one this machine lacks)
        if model is not None and (str(model.path) == str(path) or not Path(path).exists()):
            return model, f"{record.name} in the sweep directory (recorded from {model.path})"
    return read_model(path), str(path)


def read_model(path: str | Path) -> ModelBytes:
    """Read a (possibly split) GGUF's tensor table and count the bytes read per generated token.

    Counting rule: every tensor is read once per token, except routed experts (read
    `expert_used_count / expert_count` of) and the token embedding (one row per token, unless the
    model ties its output projection to it and has no `output.weight`).
    """
    path = Path(path)
    readers = [_open(p) for p in shard_paths(path)]
    first = readers[0]
    arch = str(_scalar(first, "general.architecture") or "unknown")
    n_layer = int(_scalar(first, f"{arch}.block_count") or 0)
    n_expert = int(_scalar(first, f"{arch}.expert_count") or 0)
    n_used = int(_scalar(first, f"{arch}.expert_used_count") or 0)
    raw = [t for r in readers for t in r.tensors]
    names = {t.name for t in raw}
    tied_output = "output.weight" not in names
    expert_share = n_used / n_expert if n_expert > 0 and n_used > 0 else 1.0

    tensors = []
    for t in raw:
        n_bytes = int(t.n_bytes)
        m = _LAYER_RE.match(t.name)
        routed = bool(ROUTED_EXPERT_RE.search(t.name)) and n_expert > 0
        if routed:
            read = n_bytes * expert_share
        elif t.name == "token_embd.weight" and not tied_output:
            rows = int(t.shape[-1]) if len(t.shape) > 1 else 1
            read = n_bytes / max(rows, 1)
        else:
            read = float(n_bytes)
        tensors.append(TensorRead(t.name, n_bytes, read, int(m.group(1)) if m else None, routed))
    return ModelBytes(
        path=str(path), arch=arch, n_layer=n_layer, expert_count=n_expert, expert_used_count=n_used,
        file_bytes=sum(p.stat().st_size for p in shard_paths(path)), tensors=tuple(tensors),
    )
