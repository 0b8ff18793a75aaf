"""Host memory attributable to a real server: its mapped GGUF pages (smaps) and their page-cache
residency (mincore), against a real xllamacpp server serving a generated model."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil

from bench.memory import Gpus, Sampler, model_mappings, page_cache_bytes
from bench.runrow import memory_fields
from bench.server import free_port, http_json
from tests import servers


def test_page_cache_bytes_sees_a_file_read_and_drops_after_fadvise(tmp_path: Path):
    """mincore against a file we just wrote and read: all resident; DONTNEED after fsync evicts it."""
    f = tmp_path / "w.gguf"
    f.write_bytes(os.urandom(8 << 20))
    f.read_bytes()
    assert page_cache_bytes(f) == 8 << 20
    fd = os.open(f, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    assert page_cache_bytes(f) < 8 << 20  # clean pages dropped: mincore sees the eviction
    assert page_cache_bytes(tmp_path / "missing.gguf") is None


def test_a_real_server_maps_its_model_and_the_row_counts_it(small_model: Path, tmp_path: Path):
    port = free_port()
    proc = servers.start([sys.executable, "-m", "bench.xllamacpp_server", "-m", str(small_model), "-c", "512",
                          "-t", "1", "--host", "127.0.0.1", "--port", str(port)], port, tmp_path / "srv.log")
    try:
        status, _ = http_json(f"http://127.0.0.1:{port}/completion",
                              {"prompt": "hello", "n_predict": 8}, timeout=60)
        assert status == 200
        maps = model_mappings(proc.pid)
        size = small_model.stat().st_size
        assert list(maps) == [str(small_model.resolve())], maps
        assert 0 < maps[str(small_model.resolve())] <= size
        assert page_cache_bytes(small_model) >= maps[str(small_model.resolve())]
        sampler = Sampler(proc.pid, os.getpgid(proc.pid), 0.05, 0, Gpus(enabled=False))
        s = sampler.sample()
        assert s.model_mapped == maps[str(small_model.resolve())]
        assert s.server_mem >= s.server_rss > 0
        assert s.headroom <= s.host_available - s.model_mapped
        total = int(psutil.virtual_memory().total)
        fields, _ = memory_fields([s, sampler.sample()], total)
        assert fields["model_mapped_peak_bytes"] > 0
        assert fields["model_cached_peak_bytes"] >= fields["model_mapped_peak_bytes"]
        assert fields["server_mem_peak_bytes"] >= fields["server_rss_peak_bytes"]
        assert fields["host_headroom_min_bytes"] < fields["host_mem_available_min_bytes"]
    finally:
        servers.stop(proc)


def test_a_process_without_a_gguf_mapping_counts_none():
    assert model_mappings(os.getpid()) == {}
    assert model_mappings(2**22 + 12345) == {}  # a pid that does not exist: nothing, not an error
