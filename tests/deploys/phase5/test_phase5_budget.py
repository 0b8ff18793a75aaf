"""Memory budget: the runbook's 386 GB quant in 384 GB of RAM is refused with the numbers."""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from deploys.stack.budget import (
    GIB,
    BudgetError,
    HostMemory,
    check_budget,
    kv_bytes_per_token_from_gguf,
    main,
)
from deploys.stack.config import stack_config
from omni.hostdata import host_data

#: The reference box: 8 x 48 GiB DDR5, RTX PRO 6000 (97887 MiB) + RTX 5090 (32607 MiB).
REFERENCE = HostMemory(384 * GIB, (97887 * 1024**2, 32607 * 1024**2), "inventory")


def config_with(**model):
    base = {"name": "architect", "path": "/nvme/models/r1.gguf", "port": 8000,
            "kv_bytes_per_token": 70272}
    return stack_config(host_data(env={}, overrides={"stack": {"inference": {"models": [base | model]}}}))


def test_runbook_memory_lie_386_gb_quant_in_384_gb_ram_is_refused():
    config = config_with(size_bytes=386 * 10**9)
    with pytest.raises(BudgetError) as info:
        check_budget(config, REFERENCE, {})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("memory budget: the enabled models need 359.5 GiB of RAM")
    assert "architect 359.5 GiB weights off-GPU (inventory size_bytes)" in message
    assert "384.0 GiB RAM - 80.0 GiB headroom leaves 304.0 GiB" in message


def test_reference_281_gb_model_fits_with_the_80_gib_headroom():
    budget = check_budget(stack_config(host_data(env={})), REFERENCE, {})
    [need] = budget.needs
    assert need.weights_bytes == 281 * 10**9
    assert need.kv_bytes == 70272 * 8192  # -c 8192 at f16, on the GPU
    assert budget.ram_need == 281 * 10**9
    assert budget.ram_limit == 304 * GIB
    assert "RAM 261.7 of 304.0 GiB usable" in budget.summary()


def test_weights_placed_on_gpus_make_the_386_gb_quant_fit():
    budget = check_budget(config_with(size_bytes=386 * 10**9, gpu_weights_gib=100), REFERENCE, {})
    assert budget.ram_need < budget.ram_limit and budget.vram_need < budget.vram_limit


def test_gpu_placement_larger_than_vram_is_refused():
    with pytest.raises(BudgetError, match=r"need 128\.5 GiB of GPU memory .* leave 125\.4 GiB"):
        check_budget(config_with(size_bytes=386 * 10**9, gpu_weights_gib=126), REFERENCE, {})


def test_file_size_on_host_wins_over_inventory_and_several_models_add_up():
    models = [
        {"name": "architect", "path": "/m/r1.gguf", "port": 8000, "kv_bytes_per_token": 70272},
        {"name": "executor", "path": "/m/glm.gguf", "port": 8001, "size_bytes": 200 * 10**9,
         "kv_bytes_per_token": 100_000},
        {"name": "coder", "path": "/m/coder.gguf", "port": 8002, "enabled": False, "size_bytes": 10**12},
    ]
    config = stack_config(host_data(env={}, overrides={"stack": {"inference": {"models": models}}}))
    with pytest.raises(BudgetError) as info:
        check_budget(config, REFERENCE, {"/m/r1.gguf": 281 * 10**9})
    assert "architect 261.7 GiB weights off-GPU (file on host), executor 186.3 GiB" in str(info.value)
    assert "coder" not in str(info.value)  # disabled models do not count


def test_unknown_size_and_kv_fail_with_the_fix():
    with pytest.raises(BudgetError, match=r"size unknown: /nvme/models/r1\.gguf is not on the host"):
        check_budget(config_with(), REFERENCE, {})
    with pytest.raises(BudgetError, match=r"KV-cache size unknown: set kv_bytes_per_token \(`python -m"):
        check_budget(config_with(size_bytes=10**9, kv_bytes_per_token=None), REFERENCE, {})


def _write_gguf(path, arch: str, kv: dict) -> None:
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(kv.pop("block_count"))
    for key, value in kv.items():
        if isinstance(value, int):
            writer.add_uint32(f"{arch}.{key}", value)
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_kv_per_token_read_from_real_gguf_headers(tmp_path, capsys):
    mla = tmp_path / "mla.gguf"
    _write_gguf(mla, "deepseek2", {"block_count": 61, "attention.kv_lora_rank": 512,
                                   "rope.dimension_count": 64, "attention.head_count": 128})
    assert kv_bytes_per_token_from_gguf(str(mla)) == 70272
    gqa = tmp_path / "gqa.gguf"
    _write_gguf(gqa, "llama", {"block_count": 32, "embedding_length": 4096, "attention.head_count": 32,
                               "attention.head_count_kv": 8})
    assert kv_bytes_per_token_from_gguf(str(gqa)) == 32 * 8 * (128 + 128) * 2
    assert main(["kv", str(gqa)]) == 0
    assert capsys.readouterr().out.strip() == "131072"
    (tmp_path / "bad.gguf").write_bytes(b"not a gguf")
    assert main(["kv", str(tmp_path / "bad.gguf")]) == 1
    assert "cannot read GGUF metadata" in capsys.readouterr().err
