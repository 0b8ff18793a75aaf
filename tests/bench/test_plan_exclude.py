"""Validity rules on raw-args axes: a list is any-of when its items are the axis's own values."""

from __future__ import annotations

import tomllib
from importlib.resources import files

from bench.plan import server_configs
from bench.spec import parse_spec

SPEC = """
name = "x"
engine = "llama-server"
[server]
model = "m.gguf"
[axes]
"args.placement" = ["-ngl 99", ["-ot", "exps=CPU"], "-ngl 0"]
"--threads" = [16, 8]
[[exclude]]
"--threads" = 8
"args.placement" = ["-ngl 99", "-ngl 0"]
[[exclude]]
"--threads" = 16
"args.placement" = ["-ot", "exps=CPU"]
"""


def _pairs(spec) -> set[tuple[str, int]]:
    return {(str(c.axes["args.placement"]), c.axes["--threads"]) for c in server_configs(spec)}


def test_list_of_axis_values_is_any_of_and_an_argv_list_is_one_value():
    spec = parse_spec(tomllib.loads(SPEC))
    assert _pairs(spec) == {("-ngl 99", 16), ("-ngl 0", 16), (str(["-ot", "exps=CPU"]), 8)}


def test_h200_example_spec_plans_six_launches_per_repeat():
    spec = parse_spec(tomllib.loads(files("bench.specs").joinpath("h200-moe.toml").read_text()))
    fa = {(str(c.axes["args.placement"]), c.axes["--threads"], c.axes["-fa"]) for c in server_configs(spec)}
    assert fa == {
        ("-ngl 99", 16, "on"), ("-ngl 99", 16, "off"),
        ("-ngl 99 -ot exps=CPU", 16, "on"), ("-ngl 99 -ot exps=CPU", 8, "on"),
        ("-ngl 99 --n-cpu-moe 8", 16, "on"), ("-ngl 0", 16, "on"),
    }


def test_two_gpu_split_spec_keeps_nvlink_multicast_off_and_skips_row_mode_on_one_gpu():
    spec = parse_spec(tomllib.loads(files("bench.specs").joinpath("h200-x2-split.toml").read_text()))
    configs = server_configs(spec)
    assert spec.server.env["NCCL_NVLS_ENABLE"] == "0"
    assert len(configs) == 2 * (2 * 4 - 1)
    assert not [c for c in configs if c.axes["--tensor-split"] == "1,0" and c.axes["--split-mode"] == "row"]
    assert {c.axes["--tensor-split"] for c in configs} == {"1,0", "3,1", "1,1", "96,32"}
