"""The report's placement section from results rows: measured vs predicted, ratios, readback."""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from bench.report import render_report
from bench.report.cli import add_arguments, options_from
from bench.report.data import Sweep, load_sweep
from bench.report.hostfacts import from_facts
from bench.report.modelbytes import ModelBytes, TensorRead, model_for_sweep
from bench.report.options import ReportOptions
from bench.report.placement import bytes_by_device, group_bytes, parse_placement
from bench.report.placements import GpuUse, budgets, findings, placement_rows
from bench.report.summary import ConfigSummary, summarise


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser

READBACK = json.dumps({"offloaded_layers": 14, "total_layers": 14, "buffers_mib": {
    "CUDA0 model": 2900.5, "CUDA_Host model": 3100.0, "CPU_Mapped model": 40.0, "CUDA0 KV": 44.0,
    "CUDA0 compute": 300.0}})


def _summary(cid: str, decode: float | None, status: str = "ok") -> ConfigSummary:
    return ConfigSummary(cid, f"placement {cid}", "llama-server", status, "cmd", [], {}, decode_tps=decode,
                         served=decode is not None, gpu_peak={0: 4.1e9}, gpu_total={0: 80e9})


def test_rows_ratios_and_prediction_error():
    cols = ["config_id", "placement_source", "predicted_decode_tps", "placement_readback"]
    rows = pd.DataFrame([dict(zip(cols, r, strict=True)) for r in [
        ("p", "planner", 50.0, READBACK), ("p", "planner", 50.0, ""), ("n", "planner", 45.0, ""),
        ("f", "fit", None, "{}"), ("t", "template", None, ""), ("x", "grid", None, ""),
    ]])
    out = placement_rows(rows, [_summary("p", 40.0), _summary("n", 42.0), _summary("f", 20.0),
                                _summary("t", 25.0), _summary("x", None, "server-died")])
    p, n, f, t, x = out
    assert (p.source, f.source, t.source, x.source) == ("planner", "fit", "template", "grid")
    assert p.prediction_error == pytest.approx(0.25) and n.prediction_error == pytest.approx(45 / 42 - 1)
    assert (p.vs_fit, p.vs_template, t.vs_template) == (2.0, 1.6, 1.0)
    assert p.layers == "14/14" and p.gpu_weights_mib == 2900.5 and p.host_weights_mib == 3140.0
    assert p.other_mib == {"CUDA0 KV": 44.0, "CUDA0 compute": 300.0}
    assert x.decode_tps is None and x.prediction_error is None
    text = findings(out)
    assert text[0].startswith("planner's row placement p: 40.00 tokens/s, 0.952 x the best measured row "
                              "(placement n, 42.00)")
    assert "1.60 x" in text[1] and "2.00 x" in text[2]
    assert "max 25.0%" in text[3] and "placement x (server-died)" in text[4]


def test_a_sweep_without_placement_sources_has_no_section():
    rows = pd.DataFrame([{"config_id": "a", "placement_source": "", "predicted_decode_tps": None}])
    assert placement_rows(rows, [_summary("a", 10.0)]) == []
    assert findings([]) == []


# ------------------------------------------------- the committed device sweep: free memory, budget, groups

EXAMPLE = Path(__file__).resolve().parents[2] / "reports" / "examples" / "placement"
MIB, GIB = 2**20, 2**30
PLAN, FIT = "GPUs 0 (plan) · threads=16", "llama.cpp --fit · threads=16"
BEST = "-ngl 99 --n-cpu-moe 8 · threads=16"


def _example(tmp_path: Path, budget_gib: float | None = None, facts: bool = False) -> tuple[Sweep, list]:
    """The H100 sweep of reports/examples/placement, with the VRAM budget given here or none."""
    sweep_dir = tmp_path / "placement"
    shutil.copytree(EXAMPLE, sweep_dir)
    (sweep_dir / "report.toml").unlink(missing_ok=True)  # the committed one gives the 3 GiB budget
    if budget_gib is not None:
        (sweep_dir / "report.toml").write_text(f"[report]\nvram_budget_gib = {budget_gib}\n")
    if facts:  # the facts the plan was made from (nvidia-smi at sweep start: 81079 of 81559 MiB free)
        shutil.copy(sweep_dir / "device" / "facts.json", sweep_dir / "facts.json")
    sweep = load_sweep(sweep_dir)
    model, _ = model_for_sweep(sweep.meta["model"], sweep_dir)
    return sweep, placement_rows(sweep.rows, summarise(sweep), sweep, model)


def _by_name(rows: list) -> dict:
    return {r.name: r for r in rows}


def test_vram_is_judged_against_free_memory_and_the_budget_not_the_card(tmp_path):
    """The plan's GPU0 peak (3815 MiB of NVML used, 480 MiB of it in use before the launch) against
    free memory and the 3 GiB budget; without facts of free memory, the launch's first sample."""
    _, rows = _example(tmp_path / "a", budget_gib=3)
    plan = _by_name(rows)[PLAN]
    (g,) = plan.gpus
    assert g.peak == pytest.approx(3814.8125 * MIB) and g.total == 81559 * MIB
    assert g.used == pytest.approx((3814.8125 - 480) * MIB)  # the server's own, not the device's
    assert (g.free_at_start, g.free_source) == (pytest.approx((81559 - 480) * MIB), "launch")
    assert g.budget == 3 * GIB and g.over_budget and not g.over_free
    assert plan.over == "budget"
    assert plan.problems == ["GPU0 used 3.26 GiB > budget 3 GiB (log buffers 2.56 GiB + CUDA context, "
                             "allocator)"]
    over = {r.name for r in rows if r.problems}
    assert over == {PLAN, FIT, "GPU0 5 expert layers (+1) · threads=16", BEST}

    _, rows = _example(tmp_path / "b", facts=True)  # free memory recorded at sweep start, no budget
    (g,) = _by_name(rows)[PLAN].gpus
    assert (g.free_at_start, g.free_source, g.budget) == (81079 * MIB, "sweep start", None)
    assert not any(r.problems for r in rows)  # 3.3 GiB of 79 GiB free: every row fits the card
    tight = GpuUse(0, 3 * GIB, 80 * GIB, 2 * GIB, "sweep start", 0.0)
    assert tight.over_free and tight.problems() == ["GPU0 used 3.00 GiB > 2.00 GiB free at sweep start"]


def test_a_row_over_the_budget_is_not_the_best_measured_row(tmp_path):
    _, rows = _example(tmp_path / "a")
    text = findings(rows)  # no budget known: the fastest row is the yardstick, as before
    assert text[0].startswith(f"planner's row {PLAN}: 124.54 tokens/s, 0.961 x the best measured row ({BEST}")
    _, rows = _example(tmp_path / "b", budget_gib=3)
    text = findings(rows)
    assert text[0].startswith("over free GPU memory or the VRAM budget, not ranked (4 of 8 rows): ")
    assert BEST in text[0] and PLAN in text[0]
    within = "GPU0 3 expert layers (-1) · threads=16"
    assert text[1] == f"fastest row {BEST} (129.61 tokens/s) is over; best within: {within} (121.79)"
    assert text[2] == (f"planner's row {PLAN}: 124.54 tokens/s, 1.023 x the best measured row within free "
                       f"memory and budget ({within}, 121.79); the plan itself is over (above)")


def test_where_each_tensor_group_went(tmp_path):
    """Per configuration, group x device bytes from model.json and the launch flags (the ceiling's
    mapping), KV from the server log; they agree with the log's own GPU weights to the MiB."""
    sweep, rows = _example(tmp_path)
    model, _ = model_for_sweep(sweep.meta["model"], sweep.path)
    by = _by_name(rows)
    plan = by[PLAN].groups
    assert plan is not None and plan.devices == [0, None] and plan.names == ["GPU0", "host"]
    cells = dict(plan.rows())
    on_gpu = re.compile(r"^blk\.(3|6|9|11)\.ffn_(up|down|gate)_exps\.|^blk\.12\.ffn_gate_exps\.")
    routed_gpu = sum(t.n_bytes for t in model.tensors if on_gpu.search(t.name))
    assert cells["routed experts"] == [routed_gpu, model.routed_expert_bytes - routed_gpu]
    assert cells["attention"][1] is None and cells["shared expert"][1] is None  # every-token weights on GPU
    assert cells["KV cache"] == [32.5 * MIB, None]
    assert list(cells) == ["attention", "dense FFN, router, norms", "shared expert", "routed experts",
                           "output / embeddings", "KV cache"]
    weights_gpu = plan.totals()[0] - 32.5 * MIB
    assert weights_gpu == pytest.approx(2371.04 * MIB, abs=1 * MIB)  # the log's CUDA0 model buffer
    template = dict(by["runbook template · threads=16"].groups.rows())
    assert template["routed experts"] == [None, model.routed_expert_bytes]  # -ot exps=CPU
    cpu = by["-ngl 0 · threads=16"].groups
    assert cpu.totals()[0] == 0 and dict(cpu.rows())["KV cache"] == [None, 32.5 * MIB]
    fit = by[FIT]
    assert fit.groups is None and "--fit" in fit.groups_note and "2,168 MiB" in fit.groups_note


def test_group_bytes_split_rows_across_gpus_and_keep_one_mapping():
    """-sm row shares a layer's matrices by -ts; the ceiling's bytes per token sum the same mapping."""
    t = [TensorRead("blk.0.attn_q.weight", 100, 100.0, 0, False),
         TensorRead("blk.0.ffn_up_exps.weight", 800, 100.0, 0, True),
         TensorRead("blk.0.ffn_up_shexp.weight", 40, 40.0, 0, False),
         TensorRead("token_embd.weight", 50, 1.0, None, False),
         TensorRead("output.weight", 60, 60.0, None, False)]
    model = ModelBytes("m.gguf", "deepseek2", 1, 8, 1, 1050, tuple(t))
    cells = group_bytes(model, parse_placement(["-ngl", "99", "-sm", "row", "-ts", "3,1"], n_gpus=2), 2)
    assert cells["attention"] == {0: 75.0, 1: 25.0} and cells["routed experts"] == {0: 600.0, 1: 200.0}
    assert cells["output / embeddings"] == {None: 50.0, 0: 60.0}  # output layer: position 1 of 2 < 3/4
    cells = group_bytes(model, parse_placement(["-ngl", "99", "--cpu-moe"], n_gpus=2), 2)
    assert cells["routed experts"] == {None: 800.0} and cells["shared expert"] == {0: 40.0}
    host, gpu = bytes_by_device(model, parse_placement(["-ngl", "99", "--cpu-moe"], n_gpus=2), 2)
    assert host == 101.0 and sum(gpu) == 200.0


def test_free_memory_read_from_facts():
    doc = {"facts": {"nvidia_gpus": {"available": True, "gpus": [
        {"index": 0, "memory_total_mib": 97887, "memory_free_mib": 96000},
        {"index": 1, "memory_total_mib": 32607, "memory_free_mib": 0}]}}}
    a, b = from_facts(doc).gpus
    assert (a.mem_free_bytes, b.mem_free_bytes) == (96000 * MIB, 0.0)  # 0 free is a full card, not unknown


def test_budget_is_a_report_setting_in_the_spec_and_the_flags(tmp_path):
    sweep, _ = _example(tmp_path, budget_gib=3)
    assert budgets(sweep) == {0: 3 * GIB}
    assert ReportOptions.model_validate({"vram_budget_gib": [90, 30]}).vram_budget_gib == [90, 30]
    with pytest.raises(ValueError):
        ReportOptions.model_validate({"vram_budget_gib": [0]})
    assert options_from(_parser().parse_args([".", "--vram-budget-gib", "90", "--vram-budget-gib", "30"])) \
        == {"vram_budget_gib": [90.0, 30.0]}


def test_the_page_shows_free_memory_budget_and_group_tables(tmp_path):
    sweep, _ = _example(tmp_path, budget_gib=3)
    page = render_report(sweep.path).read_text()
    section = page.split('id="placement"')[1].split("All result rows")[0]
    assert section.count('<table class="placement-groups">') == 7  # every row but --fit's
    assert section.count("<details class=\"groups\">") == 8
    assert "GPU0 3.26 / 79.18<sup>L</sup> / 79.65 (budget 3.00)" in section
    assert section.count('<span class="flag wrap">over budget</span>') == 4
    assert "budget</b> is <code>vram_budget_gib</code> (GPU0 3 GiB)" in section
