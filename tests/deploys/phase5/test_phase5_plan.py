"""Phase 5 plans on ``@fake`` hosts with scripted facts: fresh, converged, drifted, refused."""

from __future__ import annotations

from phase5_boxes import OS_RELEASE, ROOT, Box, converged

from deploys.core.pyinfra_run import plan

DEPLOY = ROOT / "deploys" / "phase5.py"
RUNBOOK_LIE = {"inference": {"models": [{"name": "architect", "path": "/nvme/models/r1/r1-q4.gguf",
                                         "port": 8000, "size_bytes": 386 * 10**9,
                                         "kv_bytes_per_token": 70272}]}}


def run(box: Box, **data):
    return plan(DEPLOY, [("@fake/box", box.data() | data)], cwd=ROOT, timeout=120)


def test_fresh_host_gets_every_project_in_order():
    result = run(Box())
    assert result.error is None, result.error
    names = [o.short for o in result.ops]
    starts = [n for n in names if n.startswith("Start the ")]
    concerns = ("inference", "memgraph", "observability")
    assert starts == [f"Start the {c} project (files changed)" for c in concerns]
    assert names[0] == "Create the shared docker network omni"
    assert names[-1] == "Record the phase 5 marker /var/lib/omni/phase5.json"
    commands = result.commands()
    assert ("docker compose -p omni-inference -f /opt/omni/inference/compose.yaml up -d --remove-orphans "
            "--build") in commands
    assert any("curl -fsS -o /dev/null http://127.0.0.1:8000/v1/models" in c for c in commands)
    assert any("mgconsole --output-format=csv" in c for c in result.op("Wait until Memgraph").commands)
    assert result.op("Watch for Phoenix").commands == [
        "systemctl daemon-reload", "systemctl start omni-phoenix.path", "systemctl enable omni-phoenix.path"]
    password = result.op("Generate the Grafana admin password").commands[0]
    assert "/dev/urandom" in password and "chmod 0400" in password and "echo" not in password
    assert not any("agents" in n or "autoglm" in n for n in names)  # off by default


def test_converged_host_plans_no_change():
    result = run(converged(Box()))
    assert result.error is None, result.error
    assert result.changed_ops() == []
    assert result.commands() == []


def test_converged_full_lineup_plans_no_change():
    box = converged(Box(stack={"agents": {"enabled": True, "image": "ghcr.io/example/agents:1.0"},
                               "autoglm": {"enabled": True, "image": "ghcr.io/example/autoglm:1.0"}},
                        zen5=False))
    result = run(box)
    assert result.error is None and result.changed_ops() == []


def test_a_stopped_server_is_started_without_reuploading():
    box = converged(Box())
    box.projects["omni-inference"]["llm-architect"] = "exited"
    result = run(box)
    assert result.changed_ops() == ["Start the inference project (not running: llm-architect)",
                                    "Wait until the inference servers (/v1/models) is healthy"]


def test_a_placement_change_reuploads_and_restarts_only_inference():
    box = converged(Box())
    box.overrides["stack"] = {"inference": {"models": [{"name": "architect", "port": 8000,
                                                        "path": "/nvme/models/DeepSeek-R1/DeepSeek-R1.gguf",
                                                        "size_bytes": 281 * 10**9, "threads": 64,
                                                        "numa": "interleave=all", "alias": "DeepSeek-R1-671B",
                                                        "kv_bytes_per_token": 70272}]}}
    result = run(box)
    assert result.changed_ops() == ["Upload inference/compose.yaml",
                                    "Start the inference project (files changed)",
                                    "Wait until the inference servers (/v1/models) is healthy"]


def test_a_disabled_component_is_taken_down():
    box = converged(Box())
    box.overrides["stack"] = {"memgraph": {"enabled": False}}
    result = run(box)
    assert "Stop the disabled memgraph project (volumes kept)" in result.changed_ops()
    assert "docker compose -p omni-memgraph down --remove-orphans" in result.commands()


def test_runbook_memory_lie_is_refused_before_any_change():
    result = run(Box(stack=RUNBOOK_LIE))
    assert result.ops == []
    assert result.error.startswith("@fake/box: memory budget: the enabled models need 359.5 GiB of RAM")
    assert "377.0 GiB RAM - 80.0 GiB headroom leaves 297.0 GiB (RAM from /proc/meminfo" in result.error


def test_model_size_on_the_host_wins_over_inventory():
    box = Box()
    box.model_sizes["/nvme/models/DeepSeek-R1/DeepSeek-R1.gguf"] = 386 * 10**9
    result = run(box)
    assert result.ops == [] and "359.5 GiB weights off-GPU (file on host)" in result.error


def test_host_without_docker_compose_is_refused():
    result = run(Box(docker=False))
    assert result.ops == []
    assert result.error == ("@fake/box: phase 5 needs Docker with the compose plugin on the host: "
                            "run phase 4 first")


def test_bad_inventory_and_other_distributions_are_refused_in_one_line():
    result = run(Box(stack={"memgraph": {"port": "bolt"}}))
    assert result.ops == [] and result.error.startswith("@fake/box: stack.memgraph.port: Input should be")
    debian = Box()
    responses = debian.data()["fake_responses"]
    responses["ls -pdL *-release"] = ["/etc/os-release", 'NAME="Debian GNU/Linux"', 'VERSION_ID="12"',
                                      "ID=debian", "---"]
    result = plan(DEPLOY, [("@fake/box", debian.data() | {"fake_responses": responses})], cwd=ROOT)
    assert result.ops == [] and "phase 5 supports Ubuntu 24.04 only, found Debian" in result.error
    assert OS_RELEASE  # the Ubuntu boxes above use the H200 capture
