"""The roofline: bytes per token from real GGUF files, llama.cpp placement rules, the hybrid sum."""

from __future__ import annotations

import pytest
from report_gguf import N_EMBD, N_FF, N_VOCAB, write_model

from bench.report.ceiling import Bandwidth, combine, efficiency, gpu_bandwidth, host_bandwidth, launch_ceiling
from bench.report.modelbytes import ModelFileError, read_model
from bench.report.placement import ALL_LAYERS, IK, MAINLINE, bytes_by_device, layer_devices, parse_placement

NORM = N_EMBD * 4  # f32 norm vector
ATTN = 4 * N_EMBD * N_EMBD * 2  # q, k, v, o in f16
FFN = 3 * N_FF * N_EMBD * 2  # gate, up, down in f16
OUTPUT = N_VOCAB * N_EMBD * 2
EMBD_ROW = N_EMBD * 4
DENSE_LAYER = 2 * NORM + ATTN + FFN


def test_dense_bytes_per_token_reads_every_weight_once_and_one_embedding_row(tmp_path):
    model = read_model(write_model(tmp_path / "dense.gguf", n_layer=3))
    assert (model.arch, model.n_layer, model.is_moe) == ("llama", 3, False)
    assert model.bytes_per_token == EMBD_ROW + 3 * DENSE_LAYER + NORM + OUTPUT
    assert model.file_bytes == (tmp_path / "dense.gguf").stat().st_size


def test_tied_embeddings_are_read_whole_as_the_output_projection(tmp_path):
    model = read_model(write_model(tmp_path / "tied.gguf", tied=True))
    assert model.bytes_per_token == N_VOCAB * N_EMBD * 4 + 2 * DENSE_LAYER + NORM


def test_quantized_tensor_sizes_come_from_the_ggml_type(tmp_path):
    model = read_model(write_model(tmp_path / "q8.gguf", q8_output=True))
    out = next(t for t in model.tensors if t.name == "output.weight")
    assert out.n_bytes == N_VOCAB * N_EMBD // 32 * 34


@pytest.mark.parametrize(("n_expert", "n_used", "shexp"), [(4, 2, False), (8, 1, True), (4, 4, False)])
def test_moe_counts_only_the_used_share_of_routed_experts(tmp_path, n_expert, n_used, shexp):
    model = read_model(write_model(tmp_path / "moe.gguf", n_expert=n_expert, n_used=n_used, shexp=shexp))
    experts = 3 * n_expert * N_FF * N_EMBD * 2
    shared = FFN if shexp else 0
    layer = 2 * NORM + ATTN + n_expert * N_EMBD * 4 + experts * n_used / n_expert + shared
    assert model.is_moe and (model.expert_count, model.expert_used_count) == (n_expert, n_used)
    assert model.routed_expert_bytes == 2 * experts
    assert model.bytes_per_token == pytest.approx(EMBD_ROW + 2 * layer + NORM + OUTPUT)


def test_split_gguf_is_read_across_all_shards(tmp_path):
    write_model(tmp_path / "big.gguf", n_layer=3, split_max_tensors=10)
    shards = sorted(tmp_path.glob("big-*-of-*.gguf"))
    assert len(shards) > 1
    model = read_model(shards[0])
    assert model.bytes_per_token == EMBD_ROW + 3 * DENSE_LAYER + NORM + OUTPUT
    shards[-1].unlink()
    with pytest.raises(ModelFileError, match="missing"):
        read_model(shards[0])


def test_unreadable_model_is_a_one_line_error(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        read_model(tmp_path / "absent.gguf")
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf at all")
    with pytest.raises(ModelFileError, match="not a readable GGUF"):
        read_model(tmp_path / "junk.gguf")


def test_argv_parsing_follows_llama_cpp_flags_and_env():
    p = parse_placement(["llama-server", "-m", "x.gguf", "-ngl", "99", "-ot", "exps=CPU", "--n-cpu-moe=2",
                         "-ts", "3,1", "-sm", "row", "-mg", "1"], n_gpus=2)
    assert p.n_gpu_layers == 99 and p.tensor_split == (3.0, 1.0) and (p.split_mode, p.main_gpu) == ("row", 1)
    assert p.overrides[0] == ("exps", "CPU") and len(p.overrides) == 3
    assert parse_placement(["--cpu-moe"], env={"LLAMA_ARG_N_GPU_LAYERS": "5"}, n_gpus=1).n_gpu_layers == 5
    assert parse_placement(["-ngl", "7"], env={"LLAMA_ARG_N_GPU_LAYERS": "5"}, n_gpus=1).n_gpu_layers == 7
    assert parse_placement(["-ngl", "99"], n_gpus=0).cpu_only
    assert parse_placement(["-dev", "none"], n_gpus=1).cpu_only
    assert parse_placement([], n_gpus=1).n_gpu_layers == ALL_LAYERS
    assert any("-ngl 'many'" in n for n in parse_placement(["-ngl", "many"], n_gpus=1).notes)


def test_hybrid_placement_splits_bytes_like_llama_cpp(tmp_path):
    model = read_model(write_model(tmp_path / "moe.gguf", n_layer=4, n_expert=4, n_used=2))
    total = model.bytes_per_token
    experts = sum(t.read_bytes for t in model.tensors if t.routed_expert)
    # all on GPU except the input embedding row
    host, gpu = bytes_by_device(model, parse_placement(["-ngl", "99"], n_gpus=1), 1)
    assert host == EMBD_ROW and gpu == [total - EMBD_ROW]
    # experts on CPU: -ot exps=CPU and --cpu-moe agree
    for argv in (["-ngl", "99", "-ot", "exps=CPU"], ["-ngl", "99", "--cpu-moe"]):
        host, gpu = bytes_by_device(model, parse_placement(argv, n_gpus=1), 1)
        assert host == EMBD_ROW + experts and gpu[0] == pytest.approx(total - host)
    # --n-cpu-moe 1: only layer 0's experts on CPU
    host, _ = bytes_by_device(model, parse_placement(["-ngl", "99", "-ncmoe", "1"], n_gpus=1), 1)
    assert host == EMBD_ROW + experts / 4
    # -ngl 2 of 4, mainline: the output layer counts as one, so layer 3 and the output go to the GPU
    layer = (total - EMBD_ROW - NORM - OUTPUT) / 4
    host, gpu = bytes_by_device(model, parse_placement(["-ngl", "2"], n_gpus=1), 1)
    assert gpu[0] == pytest.approx(layer + NORM + OUTPUT) and host == pytest.approx(total - gpu[0])
    # ik_llama.cpp: the last two repeating layers, the output stays on CPU (needs ngl > n_layer)
    host, gpu = bytes_by_device(model, parse_placement(["-ngl", "2"], n_gpus=1, engine="ik_llama"), 1)
    assert gpu[0] == pytest.approx(2 * layer) and host == pytest.approx(total - 2 * layer)
    # -ngl 0: everything on the host
    assert bytes_by_device(model, parse_placement(["-ngl", "0"], n_gpus=1), 1)[0] == pytest.approx(total)


def test_layer_rule_of_each_engine_from_the_pinned_sources():
    """Which of layers 0..n_layer (the last is the output layer) `-ngl` puts on the GPU.

    Mainline (llama-cpp-python 0.3.36, src/llama-model.cpp:1589-1590):
    `i_gpu_start = max(n_layer + 1 - n_gpu_layers, 0)`, `act_gpu_layers = min(n_gpu_layers, n_layer + 1)`,
    and the output layer goes through the same test (:1614 `get_layer_buft_list(n_layer_all)`).
    ik_llama.cpp (ik-llama-cpp-python 0.1.5, src/llama.cpp:2325):
    `i_gpu_start = max(n_layer - n_gpu_layers, 0)`,
    the output layer on a GPU only when `n_gpu_layers > n_layer` (:2608).
    """
    cpu, gpu = None, 0
    # DeepSeek-R1: 61 layers. Mainline -ngl 61 keeps layer 0 on the CPU and offloads the output layer
    assert layer_devices(61, 61, [1.0]) == [cpu] + [gpu] * 61
    assert layer_devices(61, 61, [1.0], dialect=IK) == [gpu] * 61 + [cpu]
    # -ngl 62 (= n_layer + 1) and -ngl 99: everything in both
    for ngl in (62, 99, ALL_LAYERS):
        for dialect in (MAINLINE, IK):
            assert layer_devices(61, ngl, [1.0], dialect=dialect) == [gpu] * 62
    # -ngl 1: mainline offloads only the output layer, ik_llama.cpp only the last repeating layer
    assert layer_devices(61, 1, [1.0]) == [cpu] * 61 + [gpu]
    assert layer_devices(61, 1, [1.0], dialect=IK) == [cpu] * 60 + [gpu, cpu]
    # -ngl 0: nothing in either
    assert layer_devices(61, 0, [1.0]) == layer_devices(61, 0, [1.0], dialect=IK) == [cpu] * 62
    # two GPUs, -ts 1,1, 4 layers, -ngl 3: mainline starts at layer 2 and splits 3 slots (2, 3, output)
    # at upper_bound([0.5, 1], k/3) (:1597): 0, 0, 1. (ik_llama.cpp fills by layer sizes there instead,
    # src/llama.cpp:2424-2452: not modelled, so not asserted.)
    assert layer_devices(4, 3, [1.0, 1.0]) == [cpu, cpu, 0, 0, 1]
    # -sm none: every GPU layer on the main GPU
    assert layer_devices(4, 99, [1.0, 1.0], split_mode="none", main_gpu=1) == [1] * 5


def test_default_split_follows_free_memory(tmp_path):
    """No -ts: llama.cpp splits by each GPU's free memory (llama-model.cpp:1559-1573), so a card that
    is mostly full at launch gets fewer layers than its size says."""
    model = read_model(write_model(tmp_path / "d.gguf", n_layer=4))
    _, by_total = bytes_by_device(model, parse_placement([], n_gpus=2), 2, gpu_mem_bytes=[32e9, 32e9])
    _, by_free = bytes_by_device(model, parse_placement([], n_gpus=2), 2, gpu_mem_bytes=[30e9, 10e9])
    assert by_total[0] == 3 * DENSE_LAYER and by_free[0] == 4 * DENSE_LAYER


def test_tensor_split_spreads_layers_over_gpus(tmp_path):
    model = read_model(write_model(tmp_path / "d.gguf", n_layer=4))
    _, gpu = bytes_by_device(model, parse_placement(["-ts", "1,1"], n_gpus=2), 2)
    # 5 slots (4 layers + output), slot i goes to the GPU whose cumulative share first exceeds i/5
    assert gpu[0] == 3 * DENSE_LAYER and gpu[1] == DENSE_LAYER + NORM + OUTPUT
    _, gpu = bytes_by_device(model, parse_placement([], n_gpus=2), 2, gpu_mem_bytes=[96e9, 32e9])
    assert gpu[0] == 4 * DENSE_LAYER  # default split follows GPU memory: 3/4
    _, gpu = bytes_by_device(model, parse_placement(["-ot", r"^output\.=CUDA0", "-sm", "none", "-mg", "1"],
                                                    n_gpus=2), 2)
    assert gpu[0] == OUTPUT and gpu[1] == 4 * DENSE_LAYER + NORM
    # -dev narrows the device list: -dev CUDA1 puts every GPU layer on GPU 1, whatever the memory split
    _, gpu = bytes_by_device(model, parse_placement(["-dev", "CUDA1"], n_gpus=2), 2,
                             gpu_mem_bytes=[96e9, 32e9])
    assert gpu == [0, 4 * DENSE_LAYER + NORM + OUTPUT]
    # and -ts indexes into it: -dev CUDA1,CUDA0 -ts 1,1 gives GPU 1 the first half of the slots
    _, gpu = bytes_by_device(model, parse_placement(["-dev", "CUDA1,CUDA0", "-ts", "1,1"], n_gpus=2), 2)
    assert gpu == [DENSE_LAYER + NORM + OUTPUT, 3 * DENSE_LAYER]


def test_bandwidth_sources_in_order_of_trust():
    assert host_bandwidth(dimm_mts=6400, channels=8).gbps == pytest.approx(409.6)
    assert host_bandwidth(measured_gbps=250, dimm_mts=6400, channels=8).gbps == 250
    unknown = host_bandwidth(dimm_mts=6400)
    assert unknown.bytes_per_s is None and "channel count" in unknown.source
    nvml = gpu_bandwidth("NVIDIA H200", bus_width_bits=6144, mem_clock_mhz=3201)
    assert nvml.gbps == pytest.approx(4917, abs=1)
    assert gpu_bandwidth("NVIDIA H200").gbps == 4800 and "datasheet" in gpu_bandwidth("NVIDIA H200").source
    assert gpu_bandwidth("NVIDIA H100 PCIe").gbps == 2000
    assert gpu_bandwidth("Mystery GPU").bytes_per_s is None


def test_hybrid_ceiling_is_the_sum_of_host_and_gpu_times():
    host, hbm = Bandwidth(400e9, "x"), Bandwidth(4000e9, "y")
    c = combine(20e9, [10e9], host, [hbm])
    assert c.tokens_per_s == pytest.approx(1 / (20e9 / 400e9 + 10e9 / 4000e9))
    assert "20 GB / 400.0 GB/s + 10 GB / 4000 GB/s" in c.formula()
    two = [hbm, Bandwidth(2000e9, "z")]
    assert combine(0, [8e9, 8e9], host, two).tokens_per_s == pytest.approx(1 / 0.006)
    row = combine(0, [8e9, 8e9], host, two, split_mode="row")
    assert row.tokens_per_s == pytest.approx(1 / 0.004)
    blind = combine(20e9, [10e9], Bandwidth(None, "unknown"), [hbm])
    assert blind.tokens_per_s is None and "host bandwidth" in blind.reason
    # GPU-only launch needs no host bandwidth
    assert combine(0, [10e9], Bandwidth(None, "unknown"), [hbm]).tokens_per_s == pytest.approx(400)


def test_measured_rate_above_the_ceiling_is_flagged(tmp_path):
    model = read_model(write_model(tmp_path / "dense.gguf"))
    c = launch_ceiling(model, parse_placement([], n_gpus=0), Bandwidth(1e9, "slow"), [])
    assert c.tokens_per_s == pytest.approx(1e9 / model.bytes_per_token)
    assert efficiency(c.tokens_per_s * 0.5, c) == (pytest.approx(0.5), False)
    assert efficiency(c.tokens_per_s * 1.2, c)[1] is True
    assert efficiency(None, c) == (None, False)


def test_the_sweeps_model_record_is_read_instead_of_the_gguf(tmp_path):
    """The report reads the tensor table the sweep recorded, not the (possibly 400 GB) GGUF again."""
    from bench.report.modelbytes import model_for_sweep, record_model

    path = write_model(tmp_path / "m.gguf", n_layer=2)
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    assert record_model(path, sweep_dir)
    expected = read_model(path)
    # the file changed after the sweep: the page still describes the model that was measured
    write_model(path, n_layer=3)
    model, source = model_for_sweep(path, sweep_dir)
    assert model == expected and source.startswith("model.json in the sweep directory")
    path.write_bytes(b"not a gguf any more")  # nor is the file reopened at all
    assert model_for_sweep(path, sweep_dir)[0] == expected
    # a record made from another model does not answer for this one
    other = write_model(tmp_path / "other.gguf", n_layer=3)
    model, source = model_for_sweep(other, sweep_dir)
    assert model.path == str(other) and source == str(other)
    # a damaged record falls back to the file, and a damaged file then says so in one line
    (sweep_dir / "model.json").write_text("{")
    with pytest.raises(ModelFileError):
        model_for_sweep(path, sweep_dir)
