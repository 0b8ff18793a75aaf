"""Stack inventory: defaults from the reference box, overrides merged, bad values refused in one line."""

from __future__ import annotations

import pytest

from deploys.stack.config import StackConfigError, numa_launch, stack_config
from omni.hostdata import host_data


def test_reference_box_gives_one_architect_model_on_port_8000():
    config = stack_config(host_data(env={}))
    [model] = config.inference.models
    assert (model.name, model.port, model.numa) == ("architect", 8000, "interleave=all")
    assert model.path == "/nvme/models/DeepSeek-R1/DeepSeek-R1.gguf"
    assert model.kv_bytes_per_token == 61 * 576 * 2  # deepseek2 MLA
    assert config.inference.headroom_gib == 80
    assert config.bind == "127.0.0.1" and config.root == "/opt/omni"
    assert not config.agents.enabled and config.memgraph.enabled


def test_stack_table_merges_into_defaults_and_keeps_the_rest():
    data = host_data(env={}, overrides={"stack": {"memgraph": {"port": 7688}, "bind": "127.0.0.2"}})
    config = stack_config(data)
    assert config.memgraph.port == 7688 and config.memgraph.image.startswith("memgraph/memgraph-mage:")
    assert config.bind_for("memgraph") == "127.0.0.2"


@pytest.mark.parametrize(
    ("stack", "expected"),
    [
        ({"memgraph": {"port": "seven"}}, "stack.memgraph.port: Input should be a valid integer"),
        ({"memgraph": {"colour": 1}}, "stack.memgraph.colour: Extra inputs are not permitted"),
        ({"root": "/home/x"}, "stack.root: String should match pattern"),
        ({"agents": {"enabled": True}}, "stack.agents: enabled but neither image nor build is set"),
        ({"inference": {"models": [{"name": "a", "path": "/m.gguf", "port": 8000, "numa": "spread=1"}]}},
         "stack.inference.models[0].numa: numa 'spread=1'"),
        ({"inference": {"models": [{"name": "a", "path": "/m.gguf", "port": 8000,
                                    "override_tensor": ["exps"]}]}},
         "stack.inference.models[0].override_tensor: -ot 'exps': not PATTERN=BUFFER"),
        ({"inference": {"models": [{"name": "a", "path": "/a.gguf", "port": 8000},
                                   {"name": "b", "path": "/b.gguf", "port": 8000}]}},
         "stack.inference: models share a port: 8000"),
        ({"eval": {"model": "coder"}}, "stack: eval.model 'coder' is not an enabled model (architect)"),
    ],
)
def test_bad_stack_values_fail_with_one_line_naming_the_key(stack, expected):
    with pytest.raises(StackConfigError) as info:
        stack_config(host_data(env={}, overrides={"stack": stack}))
    message = str(info.value)
    assert message.startswith(expected), message
    assert "\n" not in message and message.endswith("fix it in host data (docs/phase5.md)")


@pytest.mark.parametrize(
    ("policy", "prefix", "flags"),
    [
        ("none", [], []),
        ("interleave=all", ["numactl", "--interleave=all"], []),
        ("cpunodebind=0 membind=0", ["numactl", "--cpunodebind=0", "--membind=0"], []),
        ("numactl --interleave=0,1", ["numactl", "--interleave=0,1"], []),
        ("--numa distribute", [], ["--numa", "distribute"]),
    ],
)
def test_numa_vocabulary_matches_the_bench_spec(policy, prefix, flags):
    assert numa_launch(policy) == (prefix, flags)


def test_numa_engine_flag_must_be_a_real_mode():
    with pytest.raises(ValueError, match="use --numa with one of distribute, isolate, numactl"):
        numa_launch("--numa spread")
