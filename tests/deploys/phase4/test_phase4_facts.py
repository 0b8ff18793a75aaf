"""Phase 4 fact parsers on real captures, and the fact memo that gathers each fact once per run."""

from __future__ import annotations

import json
from pathlib import Path

from deploys.runtime.docker import merged_daemon_json
from deploys.runtime.settings import DEFAULTS
from facts.runtime import JsonFile, K3sVersions, SystemdBooted
from tests.deploys.phase4.phase4_boxes import converged, fresh_ubuntu
from tests.deploys.phase4.phase4_harness import run_deploy

FIXTURES = Path(__file__).parent / "fixtures"


def _capture(name: str) -> list[str]:
    return [line for line in (FIXTURES / name).read_text().splitlines() if not line.startswith("#")]


def test_k3s_versions_reads_the_release_tag_not_the_go_version():
    output = ["binary=" + _capture("k3s-version-v1.35.4.txt")[0], "running:",
              *_capture("apiserver-version-v1.35.0.json")]
    assert K3sVersions().process(output) == {"binary": "v1.35.4+k3s1", "running": "v1.35.0"}


def test_k3s_versions_when_nothing_is_installed_or_running():
    assert K3sVersions().process(["binary=", "running:"]) == {"binary": None, "running": None}
    # kubectl printed an error page instead of JSON: not a version
    assert K3sVersions().process(["binary=", "running:", "<html>502</html>"])["running"] is None


def test_json_file_parses_the_nvidia_ctk_daemon_json():
    value = JsonFile().process(_capture("daemon-json-after-nvidia-ctk.json"))
    assert value["runtimes"]["nvidia"] == {"args": [], "path": "nvidia-container-runtime"}
    assert JsonFile().process([]) is None
    assert "__invalid__" in JsonFile().process(['{"log-driver": "json-file",'])


def test_our_daemon_settings_merge_without_dropping_the_nvidia_runtime():
    current = json.loads((FIXTURES / "daemon-json-after-nvidia-ctk.json").read_text())
    merged = merged_daemon_json(current, DEFAULTS["docker"]["daemon_json"])
    assert merged["runtimes"] == current["runtimes"] and merged["data-root"] == current["data-root"]
    assert merged["log-driver"] == "json-file"
    assert merged_daemon_json(merged, DEFAULTS["docker"]["daemon_json"]) is None  # second run: nothing


def test_systemd_booted():
    assert SystemdBooted().process(["booted"]) is True
    assert SystemdBooted().process(["not-booted"]) is False


def test_each_fact_command_runs_once_while_planning():
    result = run_deploy([("@fake/box", fresh_ubuntu().data(), ["workstations"])])
    assert result.error is None
    counts = result.fact_commands("@fake/box")
    assert counts and max(counts.values()) == 1, [c for c, n in counts.items() if n > 1]
    # File and Directory facts on one path share one stat; dpkg -l serves four apt ops
    assert sum("dpkg -l" in c for c in counts) == 1


def test_the_memo_forgets_after_a_change_so_later_ops_see_the_new_state():
    """Executing a fresh host: after the first change every fact is gathered again."""
    result = run_deploy([("@fake/box", fresh_ubuntu().data(phase4={"verify": False}), ["workstations"])],
                        execute=True)
    executed = result.executed["@fake/box"]
    assert sum("dpkg -l" in c for c in executed) >= 2  # gathered again after packages changed
    assert result.changed["@fake/box"]


def test_a_converged_host_runs_no_command_when_executed():
    result = run_deploy([("@fake/box", converged().data(phase4={"verify": False}), ["workstations"])],
                        execute=True)
    assert result.error is None
    assert result.changed["@fake/box"] == []
    assert result.executed["@fake/box"] == []  # every fact came from the plan's answers
