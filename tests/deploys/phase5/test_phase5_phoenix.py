"""Phoenix trigger logic, run for real: the shipped script, a recording ``docker`` first on PATH.

What the systemd path unit does is "run the service while restart-requested exists"; the tests run
the script the same way and check: one request -> exactly one recreate per project, cooldown and
hourly maximum respected, requests during the grace period coalesced, nothing loops, a hanging or
failing docker cannot wedge it.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from deploys.stack.render import TEMPLATES

SCRIPT = TEMPLATES / "phoenix" / "omni-phoenix-restart.sh"
PROJECTS = "omni-inference=/opt/omni/inference/compose.yaml omni-memgraph=/opt/omni/memgraph/compose.yaml"


class Phoenix:
    def __init__(self, tmp_path: Path, **settings: str) -> None:
        self.state, self.logs, bin_dir = tmp_path / "state", tmp_path / "log", tmp_path / "bin"
        for folder in (self.state, bin_dir):
            folder.mkdir()
        self.record = tmp_path / "docker-calls"
        docker = bin_dir / "docker"
        docker.write_text('#!/bin/sh\necho "$*" >> "$DOCKER_RECORD"\n'
                          'if [ -n "${DOCKER_SLEEP:-}" ]; then sleep "$DOCKER_SLEEP"; fi\n'
                          'exit "${DOCKER_EXIT:-0}"\n')
        docker.chmod(0o755)
        self.env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", DOCKER_RECORD=str(self.record),
                        PHOENIX_STATE_DIR=str(self.state), PHOENIX_LOG_DIR=str(self.logs),
                        PHOENIX_GRACE_S="0", PHOENIX_COOLDOWN_S="300", PHOENIX_MAX_PER_HOUR="3",
                        PHOENIX_TIMEOUT_S="20", PHOENIX_PROJECTS=PROJECTS) | settings

    def request(self, reason: str = "agent updated its tools") -> None:
        (self.state / "restart-requested").write_text(reason + "\n")

    def run(self, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(["sh", str(SCRIPT)], env=self.env | env, capture_output=True, text=True,
                              timeout=60)

    def path_unit(self, limit: int = 10) -> int:
        """Run the script while the request file exists, as the path unit does; return the run count."""
        runs = 0
        while (self.state / "restart-requested").exists() and runs < limit:
            self.run()
            runs += 1
        return runs

    @property
    def calls(self) -> list[str]:
        return self.record.read_text().splitlines() if self.record.exists() else []

    @property
    def log(self) -> str:
        return (self.logs / "phoenix.log").read_text()


@pytest.fixture
def phoenix(tmp_path) -> Phoenix:
    return Phoenix(tmp_path)


def test_one_request_recreates_each_project_exactly_once(phoenix):
    assert phoenix.run().returncode == 0 and phoenix.calls == []  # no request, nothing happens
    phoenix.request()
    assert phoenix.path_unit() == 1
    assert phoenix.calls == [
        "compose -p omni-inference -f /opt/omni/inference/compose.yaml up -d --force-recreate",
        "compose -p omni-memgraph -f /opt/omni/memgraph/compose.yaml up -d --force-recreate",
    ]
    assert not (phoenix.state / "restart-requested").exists()
    assert (phoenix.state / "last-restart").read_text().startswith("20")
    assert "restart requested (agent updated its tools)" in phoenix.log
    assert "recreated omni-inference" in phoenix.log and "restart finished (exit 0)" in phoenix.log


def test_second_request_inside_the_cooldown_is_refused_and_consumed(phoenix):
    phoenix.request()
    phoenix.path_unit()
    phoenix.request("again")
    assert phoenix.path_unit() == 1  # consumed: the path unit does not fire again
    assert len(phoenix.calls) == 2
    refused = (phoenix.state / "restart-refused").read_text()
    assert "cooldown: the last restart was" in refused and "the cooldown is 300s" in refused


def test_hourly_maximum_holds_even_without_cooldown(tmp_path):
    phoenix = Phoenix(tmp_path, PHOENIX_COOLDOWN_S="0", PHOENIX_MAX_PER_HOUR="2")
    for _ in range(3):
        phoenix.request()
        phoenix.path_unit()
    assert len(phoenix.calls) == 4  # two restarts of two projects, the third refused
    assert "refused: rate: 2 restarts in the last hour, the maximum is 2" in phoenix.log


def test_requests_during_the_grace_period_join_the_first(tmp_path):
    phoenix = Phoenix(tmp_path, PHOENIX_GRACE_S="2")
    phoenix.request("first")
    runner = threading.Thread(target=phoenix.run)
    runner.start()
    time.sleep(0.8)
    phoenix.request("second, during grace")
    runner.join(timeout=30)
    assert phoenix.path_unit() == 0  # nothing left to trigger on
    assert len(phoenix.calls) == 2


def test_a_concurrent_run_does_not_restart_twice(tmp_path):
    phoenix = Phoenix(tmp_path, PHOENIX_GRACE_S="2", PHOENIX_COOLDOWN_S="0")
    phoenix.request()
    first = threading.Thread(target=phoenix.run)
    first.start()
    time.sleep(0.5)
    phoenix.request()
    second = phoenix.run()
    first.join(timeout=30)
    assert "another restart is in progress" in second.stdout
    assert len(phoenix.calls) == 2


def test_failing_recreate_counts_and_is_not_retried_in_a_loop(phoenix):
    phoenix.request()
    result = phoenix.run(DOCKER_EXIT="3")
    assert result.returncode == 3 and "FAILED to recreate omni-inference (exit 3)" in phoenix.log
    phoenix.request()
    # the failed attempt still started the cooldown
    assert phoenix.path_unit() == 1 and len(phoenix.calls) == 2


def test_a_hanging_docker_is_cut_off_by_the_timeout(tmp_path):
    phoenix = Phoenix(tmp_path, PHOENIX_TIMEOUT_S="1")
    phoenix.request()
    start = time.monotonic()
    result = phoenix.run(DOCKER_SLEEP="30")
    assert time.monotonic() - start < 10
    assert result.returncode == 124 and "FAILED to recreate omni-memgraph (exit 124)" in phoenix.log
