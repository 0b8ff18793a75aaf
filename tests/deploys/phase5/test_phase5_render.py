"""Rendered stack files: equal to the reviewed golden files, and accepted by the real tools.

Regenerate the golden files after an intended change with ``OMNI_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest
import yaml
from phase5_support import GOLDEN, SCENARIOS, scenario_config

from deploys.stack import render
from deploys.stack.config import stack_config
from omni.hostdata import host_data

CONCERNS = ("inference", "memgraph", "agents", "autoglm", "observability", "phoenix")


def rendered(scenario: str) -> dict[str, dict[str, str]]:
    config = scenario_config(scenario)
    cpu = SCENARIOS[scenario][1]
    files = {"inference": render.render_inference(config), "memgraph": render.render_memgraph(config, cpu),
             "observability": render.render_observability(config)}
    for key in ("agents", "autoglm"):
        if getattr(config, key).enabled:
            files[key] = render.render_service(config, key)
    files["phoenix"] = render.render_phoenix(config, [c for c in CONCERNS if c in files])
    return files


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_rendered_files_match_golden(scenario):
    actual = {f"{concern}/{name}": text for concern, files in rendered(scenario).items()
              for name, text in files.items()}
    folder = GOLDEN / scenario
    if os.environ.get("OMNI_UPDATE_GOLDEN"):
        for rel, text in actual.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text)
    expected = {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}
    assert sorted(actual) == sorted(expected)
    for rel in actual:
        assert actual[rel] == expected[rel], f"{scenario}/{rel} differs from golden (OMNI_UPDATE_GOLDEN=1)"


def compose_files(tmp_path: Path, scenario: str) -> dict[str, Path]:
    out = {}
    for concern, files in rendered(scenario).items():
        if "compose.yaml" not in files:
            continue
        text = files["compose.yaml"]
        if concern == "autoglm":  # docker-compose checks that a build context exists
            context = tmp_path / "autoglm-src"
            context.mkdir(exist_ok=True)
            text = text.replace("/opt/omni/autoglm/src", str(context))
        path = tmp_path / concern / "compose.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        for name, extra in files.items():
            if name.startswith("Dockerfile"):
                (path.parent / name).write_text(extra)
        out[concern] = path
    return out


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_compose_files_pass_docker_compose_config(tmp_path, scenario, docker_compose):
    def check(item: tuple[str, Path]) -> tuple[str, subprocess.CompletedProcess]:
        concern, path = item
        return concern, subprocess.run([*docker_compose, "-p", f"omni-{concern}", "-f", str(path), "config",
                                        "-q"], capture_output=True, text=True, timeout=60)

    with ThreadPoolExecutor(4) as pool:  # each docker-compose start costs a second of Python imports
        for concern, proc in pool.map(check, compose_files(tmp_path, scenario).items()):
            assert proc.returncode == 0, f"{concern}: {proc.stderr}"


def test_docker_compose_rejects_a_broken_file(tmp_path, docker_compose):
    """The validator is not a rubber stamp: an unknown service key fails."""
    path = compose_files(tmp_path, "reference")["memgraph"]
    path.write_text(path.read_text().replace("restart: unless-stopped", "restart: no\n    bogus: 1"))
    proc = subprocess.run([*docker_compose, "-f", str(path), "config", "-q"], capture_output=True,
                          text=True)
    assert proc.returncode != 0 and "bogus" in proc.stderr


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_published_port_binds_to_the_configured_address(scenario):
    config = scenario_config(scenario)
    for concern, files in rendered(scenario).items():
        if "compose.yaml" not in files:
            continue
        doc = yaml.safe_load(files["compose.yaml"])
        expected = config.bind_for(concern) if concern != "inference" else config.bind
        for name, service in doc["services"].items():
            if service.get("network_mode") == "none":  # a one-shot helper (memgraph-dirs): no ports
                assert service["restart"] == "no" and "ports" not in service, name
                continue
            assert service["networks"] == [config.network], name
            assert service["restart"] == "unless-stopped", name
            for port in service.get("ports", []):
                assert port.startswith(f"{expected}:"), f"{concern}/{name}: {port}"
    if scenario == "reference":
        assert config.bind == "127.0.0.1" and config.bind_for("observability") == "127.0.0.1"


def test_inference_services_carry_the_placement_and_never_no_vmm():
    files = rendered("full")["inference"]
    doc = yaml.safe_load(files["compose.yaml"])
    assert sorted(doc["services"]) == ["llm-architect", "llm-executor", "llm-kt"]  # coder is disabled
    architect = doc["services"]["llm-architect"]
    assert architect["entrypoint"] == ["numactl", "--cpunodebind=0", "--membind=0", "/app/llama-server"]
    command = architect["command"]
    for flag, value in [("-ngl", "99"), ("--tensor-split", "3,1"), ("--threads", "96"),
                        ("-ot", r"\.ffn_(up|down|gate)_exps\.=CPU"), ("--cache-type-k", "q8_0"),
                        ("--port", "8000")]:
        assert command[command.index(flag) + 1] == value
    assert "--metrics" in command and "--mlock" in command
    assert set(architect["cap_add"]) == {"SYS_NICE", "IPC_LOCK"} and architect["ulimits"] == {"memlock": -1}
    executor = doc["services"]["llm-executor"]
    assert executor["entrypoint"] == ["/app/llama-server"]
    assert executor["command"][-3:] == ["--numa", "distribute", "--jinja"]
    assert "cap_add" not in executor
    assert executor["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == ["1"]
    kt = doc["services"]["llm-kt"]
    assert kt["profiles"] == ["ktransformers"] and "healthcheck" not in kt
    assert "--gpu_split" not in kt["command"]
    for text in files.values():
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        assert "GGML_CUDA_NO_VMM" not in code
    kt_docker = "\n".join(line for line in files["Dockerfile.ktransformers"].splitlines()
                          if not line.startswith("#"))  # the header comment names the runbook's mistakes
    assert "--break-system-packages" not in kt_docker and "python3 -m venv /opt/venv" in kt_docker
    assert "numactl" in kt_docker.split("apt-get install", 1)[1].split("&&", 1)[0]
    for fake in ("ENABLE_DEEPGEMM=", "KTRANSFORMERS_BACKEND_GPU=", "--gpu_split "):
        assert fake not in kt_docker


def test_official_image_with_numactl_policy_is_refused_in_one_line():
    config = stack_config(host_data(env={}, overrides={"stack": {"inference": {
        "image": "ghcr.io/ggml-org/llama.cpp:server-cuda12-b9603"}}}))
    with pytest.raises(render.RenderError, match="needs numactl, which the official image"):
        render.render_inference(config)
    official = stack_config(host_data(env={}, overrides={"numa_policy": "--numa distribute", "stack": {
        "inference": {"image": "ghcr.io/ggml-org/llama.cpp:server-cuda12-b9603"}}}))
    files = render.render_inference(official)
    assert list(files) == ["compose.yaml"]  # nothing to build
    assert "build:" not in files["compose.yaml"]


def test_memgraph_glibc_workaround_only_on_zen5():
    config = scenario_config("reference")
    assert "GLIBC_TUNABLES" in render.render_memgraph(config, SCENARIOS["reference"][1])["compose.yaml"]
    for cpu in (SCENARIOS["full"][1], None, {"available": False, "reason": "no lscpu"},
                {"available": True, "vendor": "AuthenticAMD", "family": 25}):
        assert "GLIBC_TUNABLES" not in render.render_memgraph(config, cpu)["compose.yaml"]
    assert render.is_zen5({"vendor": "AuthenticAMD", "family": "0x1a"})


def test_prometheus_config_passes_promtool(tmp_path, promtool):
    for scenario in sorted(SCENARIOS):
        path = tmp_path / f"{scenario}.yml"
        path.write_text(rendered(scenario)["observability"]["prometheus.yml"])
        proc = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = yaml.safe_load(rendered("full")["observability"]["prometheus.yml"])["scrape_configs"]
    llama = next(j for j in jobs if j["job_name"] == "llama-server")
    assert [t["targets"] for t in llama["static_configs"]] == [["omni-llm-architect:8000"],
                                                              ["omni-llm-executor:8001"]]  # no kt /metrics


def test_promtool_rejects_a_broken_config(tmp_path, promtool):
    path = tmp_path / "bad.yml"
    path.write_text(rendered("reference")["observability"]["prometheus.yml"].replace("15s", "15 seconds"))
    assert subprocess.run([promtool, "check", "config", str(path)], capture_output=True).returncode != 0


DASHBOARD_SCHEMA = {
    "type": "object",
    "required": ["uid", "title", "panels", "schemaVersion"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
        "schemaVersion": {"type": "integer", "minimum": 36},
        "panels": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["id", "type", "title", "gridPos", "datasource", "targets"],
            "properties": {
                "type": {"enum": ["timeseries", "stat", "gauge", "table"]},
                "datasource": {"const": {"type": "prometheus", "uid": "omni-prometheus"}},
                "gridPos": {"type": "object", "required": ["h", "w", "x", "y"], "properties": {
                    "w": {"type": "integer", "minimum": 1, "maximum": 24},
                    "x": {"type": "integer", "minimum": 0, "maximum": 23}}},
                "targets": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["refId", "expr"],
                    "properties": {"expr": {"type": "string", "minLength": 1}}}},
            },
        }},
    },
}


def test_grafana_provisioning_and_dashboard(tmp_path, promtool):
    files = rendered("reference")["observability"]
    datasource = yaml.safe_load(files["grafana/provisioning/datasources/prometheus.yaml"])["datasources"][0]
    provider = yaml.safe_load(files["grafana/provisioning/dashboards/omni.yaml"])["providers"][0]
    dashboard = json.loads(files["grafana/dashboards/omni-inference.json"])
    jsonschema.validate(dashboard, DASHBOARD_SCHEMA)
    assert datasource["uid"] == "omni-prometheus" and datasource["url"] == "http://omni-prometheus:9090"
    assert provider["options"]["path"] == "/etc/grafana/dashboards"
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    covered = " ".join(exprs)
    for metric in ("llamacpp:tokens_predicted_total", "llamacpp:tokens_predicted_seconds_total",
                   "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_GPU_UTIL", "node_memory_MemAvailable_bytes"):
        assert metric in covered
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    # every query parses as PromQL: promtool checks them as recording rules
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"omni:dashboard_query_{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in proc.stdout


def test_grafana_has_no_default_password():
    compose = yaml.safe_load(rendered("reference")["observability"]["compose.yaml"])
    env = compose["services"]["grafana"]["environment"]
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana-admin-password"


def test_systemd_units_pass_systemd_analyze(tmp_path, systemd_analyze):
    files = rendered("reference")["phoenix"]
    root = tmp_path / "opt"
    root.mkdir()
    for name, text in files.items():
        text = text.replace("/opt/omni/phoenix", str(root))
        (root / name).write_text(text)
    (root / "omni-phoenix-restart.sh").chmod(0o755)
    proc = subprocess.run([systemd_analyze, "verify", str(root / "omni-phoenix.path"),
                           str(root / "omni-phoenix.service")], capture_output=True, text=True,
                          env=dict(os.environ, SYSTEMD_LOG_LEVEL="warning"))
    problems = [line for line in proc.stderr.splitlines() if "omni-phoenix" in line]
    assert proc.returncode == 0 and not problems, proc.stderr


def test_agents_get_the_environment_agent_framework_reads():
    """OpenAIChatClient reads OPENAI_CHAT_MODEL_ID, OPENAI_API_KEY, OPENAI_BASE_URL."""
    env = yaml.safe_load(rendered("full")["agents"]["compose.yaml"])["services"]["agents"]["environment"]
    assert env["OPENAI_CHAT_MODEL_ID"] == "deepseek-r1"
    assert env["OPENAI_BASE_URL"] == "http://omni-llm-architect:8000/v1" and env["OPENAI_API_KEY"] == "none"
    assert "OPENAI_CHAT_COMPLETION_MODEL" not in env


def test_memgraph_is_mage_with_data_and_logs_under_nvme():
    doc = yaml.safe_load(rendered("reference")["memgraph"]["compose.yaml"])
    server, dirs = doc["services"]["memgraph"], doc["services"]["memgraph-dirs"]
    assert server["image"].startswith("memgraph/memgraph-mage:")  # runbook 5.3: MAGE algorithms
    mounts = ["/nvme/memgraph/data:/var/lib/memgraph", "/nvme/memgraph/log:/var/log/memgraph"]
    assert server["volumes"] == mounts and dirs["volumes"] == mounts and "volumes" not in doc
    assert server["depends_on"] == {"memgraph-dirs": {"condition": "service_completed_successfully"}}
