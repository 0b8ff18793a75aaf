"""The placement planner on DeepSeek-R1's real tensor table (a sparse GGUF) and the reference box."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from r1_table import UNSLOTH_Q4_K_M_BYTES, write_r1

from bench.planner import PlanError
from bench.planner.fill import fill
from bench.planner.host import cpu_only_args, host_from_facts
from bench.planner.model import ModelTable, model_table
from bench.planner.placement import Settings
from bench.planner.render import TEMPLATE, placement_argv, spec_text
from bench.planner.roofline import calibrate, predict, predict_argv
from bench.planner.search import neighbours, plan

MIB = 1024**2
REF_FACTS = {"host": "reference", "facts": {
    "cpu": {"available": True, "cores": 96, "threads": 192, "sockets": 1, "numa_nodes": 4},
    "numa": {"available": True, "count": 4, "nodes": [{"id": i, "size_mib": 98304} for i in range(4)]},
    "memory_modules": {"available": True, "total_mib": 393216,
                       "modules": [{"size_mib": 49152, "configured_mts": 6400}] * 8},
    "nvidia_gpus": {"available": True, "gpus": [
        {"index": 0, "name": "NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "memory_total_mib": 97887,
         "memory_free_mib": 97250, "pcie_gen_current": 5, "pcie_width_current": 16},
        {"index": 1, "name": "NVIDIA GeForce RTX 5090", "memory_total_mib": 32607, "memory_free_mib": 32120,
         "pcie_gen_current": 5, "pcie_width_current": 16}]}}}


@pytest.fixture(scope="module")
def r1(tmp_path_factory) -> Path:
    return write_r1(tmp_path_factory.mktemp("r1") / "DeepSeek-R1-Q4_K_M.gguf")


@pytest.fixture(scope="module")
def table(r1) -> ModelTable:
    return model_table(r1)


def test_r1_table_matches_the_published_quant(table):
    m = table.model
    assert abs(m.file_bytes / UNSLOTH_Q4_K_M_BYTES - 1) < 0.01  # 404.49 GB vs unsloth's 404.43 GB
    assert m.n_layer == 61 and m.expert_count == 256 and m.expert_used_count == 8
    assert len(table.experts) == 58 * 3  # 3 dense layers, then routed experts on every layer
    assert table.kv_per_token_layer == (512 + 64) * 2  # MLA: compressed latent + RoPE part, f16


def test_reference_box_plan_fits_and_rules_hit_only_their_tensors(table):
    host = host_from_facts(REF_FACTS)
    s = Settings(ctx=16384)
    best, options = plan(table, host, s)
    assert best.gpus == (0, 1)  # unequal GPUs: both used
    for g in host.gpus:
        assert best.vram_bytes[g.index] <= g.free_bytes - s.margin_mib * MIB
    # the 96 GB card holds more expert layers than the 32 GB one, both hold some
    assert best.expert_layers(0) > best.expert_layers(1) >= 2
    compiled = [(re.compile(p), b) for p, b in best.rules]
    names = [t.name for t in table.model.tensors]
    for rx, buf in compiled[:-1]:
        hit = [n for n in names if rx.search(n)]
        g = int(buf.removeprefix("CUDA"))
        assert hit and set(hit) <= set(best.experts[g]), (rx.pattern, hit)
    assert all(rx.search(n) for n in table.experts for rx, _ in compiled[-1:])
    assert not any(rx.search(n) for n in names if n not in table.experts for rx, _ in compiled)
    # decode lies between all-in-RAM and all-in-the-fastest-memory rooflines
    slowest = 1 / (table.model.bytes_per_token / (host.bw_gbps * 1e9))
    fastest = 1 / (table.model.bytes_per_token / (max(g.bw_gbps for g in host.gpus) * 1e9))
    assert slowest < best.decode_tps < fastest
    # -ngl 99 -ot exps=CPU: the same dense placement with no expert on a GPU
    template = fill(table, host, s, best.gpus, best.layer_counts, 0, whole_layers={0: 0, 1: 0})
    template = predict(table, host, template, s)
    assert best.decode_tps > 1.2 * template.decode_tps
    # every GPU subset was considered (leave-a-GPU-out); all-CPU is refused: 377 GiB > 384 GiB - headroom - KV
    assert {o.gpus for o in options} == {(0, 1), (0,), (1,)}
    near = neighbours(table, host, s, best)
    assert near and all(p.decode_tps < best.decode_tps for p in near)
    for p in near:
        for g in host.gpus:
            assert p.vram_bytes[g.index] <= g.free_bytes


def test_vram_budget_and_gpu_choice(table):
    host = host_from_facts(REF_FACTS)
    small, _ = plan(table, host, Settings(vram_budget=(40, 20)))
    assert small.vram_bytes[0] <= 40 * 1024**3 and small.vram_bytes[1] <= 20 * 1024**3
    only0, _ = plan(table, host, Settings(gpus=(0,)))
    assert only0.gpus == (0,)
    argv = placement_argv(only0, table.n_layer, [0, 1])
    assert argv[argv.index("-dev") + 1] == "CUDA0" and "-ts" not in argv


def test_the_spec_carries_the_vram_budget_for_the_report(table):
    """A budgeted plan's spec sets [report] vram_budget_gib, so the report marks rows over it."""
    import tomllib

    from bench.spec import parse_spec

    host = host_from_facts(REF_FACTS)
    for budget, want in (((40, 20), [40.0, 20.0]), ((), None)):
        s = Settings(vram_budget=budget)
        best, options = plan(table, host, s)
        spec = parse_spec(tomllib.loads(spec_text("r1.gguf", table, host, s, best, [], options)))
        assert spec.report.vram_budget_gib == want


def test_bandwidths_from_the_facts_the_collector_writes():
    """DIMMs at their configured speed (dmidecode's configured_mts), GPUs by the report's datasheet."""
    doc = copy.deepcopy(REF_FACTS)
    doc["facts"]["memory_modules"]["modules"] = [{"size_mib": 49152, "speed_mts": 6400,
                                                  "configured_mts": 4800}] * 8
    doc["facts"]["nvidia_gpus"]["gpus"][1]["name"] = "NVIDIA A100 80GB PCIe"
    host = host_from_facts(doc)
    assert host.bw_gbps == pytest.approx(8 * 4800 * 8 / 1000) and "4800 MT/s" in host.bw_source
    assert [g.bw_gbps for g in host.gpus] == [1792.0, 1935.0]
    assert all("datasheet" in g.bw_source for g in host.gpus)


def test_refuses_with_numbers_when_the_model_cannot_fit(table):
    facts = copy.deepcopy(REF_FACTS)
    facts["facts"]["numa"]["nodes"] = [{"id": 0, "size_mib": 128 * 1024}]
    with pytest.raises(PlanError) as err:
        plan(table, host_from_facts(facts), Settings())
    msg = str(err.value)
    assert "\n" not in msg and "cannot fit: 376.7 GiB of weights" in msg and "120.0 GiB RAM" in msg


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", "plan", *args], capture_output=True, text=True,
                          timeout=120)


def test_cli_writes_a_spec_the_sweep_accepts(r1, tmp_path):
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(REF_FACTS))
    out = tmp_path / "plan.toml"
    proc = _cli(str(r1), "--facts", str(facts), "--ctx", "8192", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "-ot" in proc.stdout and "--threads 96 --numa distribute" in proc.stdout
    import tomllib

    from bench.spec import parse_spec

    spec = parse_spec(tomllib.loads(out.read_text()))
    sources = [p.source for p in spec.placement]
    assert sources[0] == "planner" and "fit" in sources and "template" in sources
    assert [p.args for p in spec.placement] == spec.axes["args.placement"]
    assert all(p.predicted_decode_tps for p in spec.placement if p.source == "planner")


@pytest.mark.parametrize("setup, args, message", [
    ("notgguf", [], "not a readable GGUF"),
    ("truncated", [], "not a readable GGUF"),
    ("nogpus", [], "no GPUs in these facts"),
    ("ok", ["--vram-budget", "-4"], "every budget must be a positive GiB figure"),
    ("ok", ["--gpus", "3"], "no GPU 3 in the facts"),
    ("badjson", [], "not readable JSON"),
    ("chexps", [], "routed-expert tensors the planner cannot place yet (blk.3.ffn_gate_chexps.weight"),
    ("ok", ["--margin-mib", "-1"], "--margin-mib -1: give 0 or more"),
    ("ok", ["--reserve-mib", "-1"], "--reserve-mib -1: give 0 or more"),
    ("ok", ["--ram-headroom-gib", "-0.5"], "--ram-headroom-gib -0.5: give 0 or more"),
    ("ok", ["--out", "{tmp}"], "cannot write the spec"),  # a directory
    ("ok", ["--out", "{tmp}/facts.json/x.toml"], "cannot write the spec"),  # a file as its folder
])
def test_bad_inputs_are_one_line_errors(r1, tmp_path, setup, args, message):
    model, facts = r1, tmp_path / "facts.json"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    doc = copy.deepcopy(REF_FACTS)
    if setup == "notgguf":
        model = tmp_path / "x.gguf"
        model.write_text("hello")
    elif setup == "truncated":
        model = tmp_path / "t.gguf"
        with Path(r1).open("rb") as f:  # the header cut mid-way through the tensor table
            model.write_bytes(f.read(4096))
    elif setup == "chexps":  # GroveMoE-style chunk experts beside the routed experts
        model = write_r1(tmp_path / "grove.gguf", chexps=True)
    elif setup == "nogpus":
        doc["facts"]["nvidia_gpus"] = {"available": False, "gpus": None}
    facts.write_text("{" if setup == "badjson" else json.dumps(doc))
    proc = _cli(str(model), "--facts", str(facts), *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr, proc.stderr


def test_no_repack_only_for_a_cpu_only_amx_host(table):
    """The AMX workaround (bench.planner.host.NO_AMX_REASON) never touches a GPU box's launch."""
    doc = copy.deepcopy(REF_FACTS)
    doc["facts"]["cpu"]["amx_flags"] = ["amx_bf16", "amx_int8", "amx_tile"]
    with_gpus = host_from_facts(doc)
    doc["facts"]["nvidia_gpus"] = {"available": False, "gpus": None}
    cpu_only = host_from_facts(doc)
    doc["facts"]["cpu"]["amx_flags"] = []
    no_amx = host_from_facts(doc)
    assert (cpu_only_args(with_gpus), cpu_only_args(cpu_only), cpu_only_args(no_amx)) == \
        ([], ["--no-repack"], [])
    s = Settings(ctx=4096, ram_headroom_gib=0)
    for host, want in ((with_gpus, False), (cpu_only, True)):
        best, options = plan(table, host, s)
        text = spec_text("r1.gguf", table, host, s, best, [], options)
        assert ('"--no-repack"' in text) == want


def test_the_r1_spec_is_the_planners_output_for_the_reference_box(r1, tmp_path):
    """bench/specs/llama-server-deepseek-r1.toml starts the user's first sweep from this plan."""
    import tomllib

    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(REF_FACTS))
    out = tmp_path / "plan.toml"
    proc = _cli(str(r1), "--facts", str(facts), "--ctx", "16384",
                "--binary", "/opt/llama.cpp/build/bin/llama-server", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    spec = Path(__file__).resolve().parents[2] / "bench" / "specs" / "llama-server-deepseek-r1.toml"
    want, have = tomllib.loads(out.read_text()), tomllib.loads(spec.read_text())
    assert have["server"].pop("model").endswith("DeepSeek-R1-Q4_K_M-00001-of-00009.gguf")
    want["server"].pop("model")
    assert have == want, "re-plan: python -m bench plan (see the spec's header) and update the spec"
    sources = [p["source"] for p in have["placement"]]
    assert sources[:3] == ["planner", "fit", "template"]  # a sweep cut short still has the comparisons
    from bench.plan import server_configs
    from bench.spec import parse_spec

    # each launch loads 377 GiB: the thread axis only on the plan row, one launch per other row
    configs = server_configs(parse_spec(tomllib.loads(spec.read_text())))
    threads = [(c.axes["args.placement"], c.axes["--threads"]) for c in configs]
    plan_row = have["placement"][0]["args"]
    assert len(threads) == len(have["placement"]) + 1, threads
    assert sorted(t for a, t in threads if a == plan_row) == [48, 96]


def test_hand_written_rows_get_the_same_roofline(table):
    """predict_argv (template, --n-cpu-moe grid, -ngl 0) agrees with the plan's own prediction."""
    host, s = host_from_facts(REF_FACTS), Settings(ctx=16384)
    best, options = plan(table, host, s)
    for p in [best, *[o for o in options if o.gpus]]:
        argv = placement_argv(p, table.n_layer, [0, 1])
        assert predict_argv(table, host, s, argv) == pytest.approx(p.decode_tps, rel=1e-9)
    template = predict_argv(table, host, s, TEMPLATE)
    assert template is not None and template < best.decode_tps  # the plan reads fewer host bytes
    assert predict_argv(table, host, s, ["--fit", "on"]) is None  # chosen at launch
    assert predict_argv(table, host, s, ["--fit=on", *TEMPLATE]) is None
    assert predict_argv(table, host, s, ["--fit", "off", *TEMPLATE]) == template  # argv places it
    fewer = predict_argv(table, host, s, ["-ngl", "99", "--n-cpu-moe", "50"])
    more = predict_argv(table, host, s, ["-ngl", "99", "--n-cpu-moe", "40"])
    assert template < fewer < best.decode_tps < more  # 11 / 21 expert layers on the GPUs vs the plan's 17


def test_planner_and_report_put_the_same_layers_on_the_cpu(table):
    """A plan with layers kept on the CPU renders -ngl n_layer + 1 - cpu_layers; the report reads
    that argv back through the same mainline rule (bench.report.placement.layer_devices), so its
    host/GPU bytes, hence its roofline, equal the plan's own. (With ik_llama.cpp's rule, which the
    report used before, -ngl 59 would have kept one layer fewer on the CPU than planned.)"""
    host, s = host_from_facts(REF_FACTS), Settings(ctx=16384)
    best, _ = plan(table, host, s)
    for cpu_layers in (1, 3):
        p = fill(table, host, s, best.gpus, best.layer_counts, cpu_layers)
        assert p is not None
        p = predict(table, host, p, s)
        argv = placement_argv(p, table.n_layer, [0, 1])
        assert argv[argv.index("-ngl") + 1] == str(table.n_layer + 1 - cpu_layers)
        assert predict_argv(table, host, s, argv) == pytest.approx(p.decode_tps, rel=1e-9)
    # a one-GPU plan renders -dev CUDA1; with GPUs of unequal bandwidth the report must read that
    import dataclasses

    g0, g1 = host.gpus
    slow0 = dataclasses.replace(host, gpus=(dataclasses.replace(g0, bw_gbps=g0.bw_gbps / 4), g1))
    only1, _ = plan(table, slow0, Settings(ctx=16384, gpus=(1,)))
    argv = placement_argv(only1, table.n_layer, [0, 1])
    assert argv[argv.index("-dev") + 1] == "CUDA1"
    assert predict_argv(table, slow0, s, argv) == pytest.approx(only1.decode_tps, rel=1e-9)


def test_fixed_cost_calibrated_from_one_measured_launch(table, r1, tmp_path):
    """--calibrate: 1/measured - 1/roofline of the sweep's plan row; the re-plan then predicts it."""
    import csv

    host, s = host_from_facts(REF_FACTS), Settings(ctx=16384)
    best, _ = plan(table, host, s)
    argv = placement_argv(best, table.n_layer, [0, 1])
    results = tmp_path / "results.csv"
    with results.open("w", newline="") as f:
        cols = ["config_label", "status", "placement_source", "axis.args.placement", "decode_tps"]
        w = csv.DictWriter(f, cols)
        w.writeheader()
        w.writerow({"config_label": "tmpl", "status": "ok", "placement_source": "template",
                    "axis.args.placement": " ".join(TEMPLATE), "decode_tps": "9.0"})
        w.writerow({"config_label": "plan", "status": "ok", "placement_source": "planner",
                    "axis.args.placement": " ".join(argv), "decode_tps": f"{best.decode_tps / 2}"})
    fixed, how = calibrate(table, host, s, results)
    assert fixed == pytest.approx(1000 / best.decode_tps)
    assert how.startswith(f"{fixed:.3f} ms/token from plan")
    again, _ = plan(table, host, Settings(ctx=16384, fixed_ms=fixed))
    assert again.decode_tps == pytest.approx(best.decode_tps / 2)
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(REF_FACTS))
    proc = _cli(str(r1), "--facts", str(facts), "--ctx", "16384", "--calibrate", str(results))
    assert proc.returncode == 0 and f"fixed cost {fixed:.3f} ms/token" in proc.stdout, proc.stderr
    bad = tmp_path / "none.csv"
    bad.write_text("config_label,status\nx,ok\n")
    proc = _cli(str(r1), "--facts", str(facts), "--calibrate", str(bad))
    assert proc.returncode == 2 and "no ok row with placement_source planner" in proc.stderr
