"""omni.gguf_files and the host-side probe built from it: every shard of a split GGUF counted."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from facts import gguf as gguf_probe
from omni import gguf_files


def _shards(folder: Path, stem: str, sizes: list[int]) -> list[Path]:
    paths = []
    for i, size in enumerate(sizes, 1):
        p = folder / f"{stem}-{i:05d}-of-{len(sizes):05d}.gguf"
        # a GGUF header (v3, 0 tensors, 1 kv: general.architecture = deepseek2) padded to `size`
        key, val = b"general.architecture", b"deepseek2"
        head = (b"GGUF" + (3).to_bytes(4, "little") + (0).to_bytes(8, "little") + (1).to_bytes(8, "little")
                + len(key).to_bytes(8, "little") + key + (8).to_bytes(4, "little")
                + len(val).to_bytes(8, "little") + val)
        p.write_bytes(head + b"\0" * (size - len(head)))
        paths.append(p)
    return paths


def test_any_shard_names_the_whole_model_and_sizes_are_summed(tmp_path):
    paths = _shards(tmp_path, "DeepSeek-R1-Q4_K_M", [1000, 2000, 3500])
    for p in paths:
        assert gguf_files.shard_paths(str(p)) == [str(q) for q in paths]
        assert gguf_files.total_bytes(str(p)) == 6500
    single = tmp_path / "one.gguf"
    single.write_bytes(b"x" * 77)
    assert gguf_files.shard_paths(str(single)) == [str(single)]
    assert gguf_files.total_bytes(str(single)) == 77


def test_missing_shard_is_one_line_naming_it(tmp_path):
    paths = _shards(tmp_path, "m", [100, 200, 300])
    paths[1].unlink()
    with pytest.raises(gguf_files.ShardError) as err:
        gguf_files.total_bytes(str(paths[0]))
    assert "\n" not in str(err.value) and "missing 1 of 3 shards (m-00002-of-00003.gguf)" in str(err.value)
    assert gguf_files.present_bytes(str(paths[0])) == 400


def _probe(path: Path) -> dict:
    out = subprocess.run(["bash", "-c", gguf_probe.command(str(path))], capture_output=True, text=True,
                         timeout=60, env={"PATH": "/usr/bin:/bin"}, check=True)
    return json.loads(out.stdout)


def test_host_probe_uses_the_same_rule_with_only_system_python3(tmp_path):
    paths = _shards(tmp_path, "R1", [4096, 8192])
    probe = _probe(paths[0])
    assert probe["total_bytes"] == 12288 and probe["architecture"] == "deepseek2" and probe["error"] is None
    assert gguf_probe.judge_model(probe, 12288, "deepseek2") == []
    paths[1].unlink()
    partial = _probe(paths[0])
    assert partial["total_bytes"] == 4096 and partial["error"] == "1 of 2 shards present"
    assert gguf_probe.judge_model(partial, 12288, "deepseek2")
