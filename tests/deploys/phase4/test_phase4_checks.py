"""deploys/checks/runtime.py: the phase 4 rows of the Verification Matrix on scripted hosts."""

from __future__ import annotations

from deploys.checks import Status
from deploys.checks.context import CheckContext
from deploys.checks.runtime import rows
from tests.deploys.phase4.phase4_boxes import converged, fresh_ubuntu, running
from tests.deploys.phase4.phase4_harness import connected_host


def _rows(box, groups=("workstations",), **data):
    with connected_host("@fake/box", box.data(**data), groups) as host:
        return {row.name: row for row in rows(CheckContext.for_host(host))}


def test_running_converged_server_passes_every_row():
    found = _rows(running(converged()))
    assert {name: row.status for name, row in found.items()} == {name: Status.PASS for name in (
        "Docker CE", "Docker nvidia runtime", "NVIDIA Container Toolkit", "K3s release",
        "K3s containerd nvidia runtime", "K3s nodes Ready", "RuntimeClass nvidia", "K3s schedulable GPUs")}
    assert found["K3s nodes Ready"].measured == "1/1 Ready"
    assert found["K3s schedulable GPUs"].measured == "1 allocatable, nvidia-smi lists 1"


def test_fresh_host_is_unknown_not_failed():
    found = _rows(fresh_ubuntu())
    assert {row.status for row in found.values()} == {Status.UNKNOWN}
    assert "phase 4 not applied yet" in found["K3s release"].reason


def test_deployed_host_with_a_drift_fails_the_right_rows():
    box = running(converged(k3s_binary="v1.34.9+k3s1", k3s_running="v1.34.9+k3s1"), nodes=("box", "node2"))
    box.probes["get nodes --no-headers"] = ["box     Ready      control-plane,master   3d   v1.34.9+k3s1",
                                            "node2   NotReady   <none>                 3d   v1.34.9+k3s1"]
    del box.files["/var/lib/rancher/k3s/agent/etc/containerd/config.toml"]
    found = _rows(box)
    assert found["K3s release"].status == Status.FAIL
    assert found["K3s release"].measured == "binary v1.34.9+k3s1, running v1.34.9+k3s1"
    assert found["K3s nodes Ready"].status == Status.FAIL and found["K3s nodes Ready"].measured == "1/2 Ready"
    assert found["K3s containerd nvidia runtime"].status == Status.FAIL
    assert found["Docker CE"].status == Status.PASS


def test_agents_skip_the_cluster_rows():
    found = _rows(converged(agent=True), groups=("k3s_agents",))
    assert "K3s nodes Ready" not in found and "RuntimeClass nvidia" not in found
    assert found["K3s release"].status == Status.PASS


def test_gpus_the_device_plugin_does_not_advertise_fail_the_schedulable_row():
    box = running(converged())
    box.probes["allocatable.nvidia"] = [""]  # no device plugin: the resource is absent
    row = _rows(box)["K3s schedulable GPUs"]
    assert row.status == Status.FAIL and row.measured == "0 allocatable, nvidia-smi lists 1"
    assert "device plugin" in row.reason
    assert "K3s schedulable GPUs" not in _rows(running(converged()), k3s={"device_plugin": False})
