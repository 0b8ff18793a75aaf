"""Phase 4 plans from scripted facts: fresh host, converged host, drift, old releases, agents, no systemd."""

from __future__ import annotations

import re

import pytest

from deploys.runtime.gpu_smoke import smoke_pod
from deploys.runtime.k3s import FIRST_WITH_NVIDIA_RUNTIMECLASS, ships_nvidia_runtimeclass
from deploys.runtime.settings import DEFAULTS
from tests.deploys.phase4.phase4_boxes import (
    DEVICE_PLUGIN,
    KEYS,
    TEST_DIGEST,
    Box,
    converged,
    fresh_ubuntu,
    golden,
)
from tests.deploys.phase4.phase4_harness import Result, run_deploy

BOX = "@fake/box"
PIN = DEFAULTS["k3s"]["version"]
SHA = "0" * 63 + "1"
PIPE_TO_SHELL = re.compile(r"\b(curl|wget)\b[^;&|]*\|\s*(sudo\s+)?(ba|da)?sh\b")


def plan(box: Box, execute: bool = False, **data) -> Result:
    result = run_deploy([(BOX, box.data(**data), ["workstations"])], execute=execute)
    assert result.error is None, result.error
    return result


def all_text(result: Result, host: str = BOX) -> str:
    return "\n".join(op.text() for op in result.ops[host])


@pytest.fixture(scope="module")
def fresh() -> Result:
    return plan(fresh_ubuntu())


def test_fresh_host_plans_every_step_in_order(fresh):
    changing = fresh.changing(BOX)
    order = ["Install the Docker signing key", "Add the Docker apt repository", "Merge our settings into",
             "Install Docker CE at the pinned versions", "Install the NVIDIA Container Toolkit signing key",
             "Install the NVIDIA Container Toolkit at the pinned versions", "Register the nvidia runtime",
             "Write /etc/rancher/k3s/config.yaml", "Save the K3s", "Check the K3s install script's sha256",
             f"Install K3s {PIN}", "Enable and start K3s", "Verify Docker containers see every GPU",
             "Verify every K3s node is Ready", "Verify the nvidia RuntimeClass exists",
             "Verify a runtimeClassName nvidia pod runs nvidia-smi", "Record phase 4 as complete"]
    positions = [next(i for i, name in enumerate(changing) if step in name) for step in order]
    assert positions == sorted(positions), changing
    # nothing to remove, prerequisites already on a stock Ubuntu server
    assert "Remove packages that conflict with Docker CE" not in changing


def test_fresh_host_installs_exact_pins_from_signed_repositories(fresh):
    docker = fresh.op(BOX, "Install Docker CE at the pinned versions").text()
    for name, version in DEFAULTS["docker"]["packages"].items():
        assert f"{name}={version}" in docker
    toolkit = fresh.op(BOX, "Install the NVIDIA Container Toolkit at the pinned versions").text()
    assert all(f"{n}={v}" in toolkit for n, v in DEFAULTS["nvidia_toolkit"]["packages"].items())
    key = fresh.op(BOX, "Install the Docker signing key").text()
    assert "https://download.docker.com/linux/ubuntu/gpg" in key
    assert "gpg --batch --dearmor -o \"/etc/apt/keyrings/docker.gpg\"" in key
    check = fresh.op(BOX, "Check the Docker signing key fingerprint")
    assert check.conditional and KEYS["docker"] in check.text()
    assert "rm -f /etc/apt/keyrings/docker.gpg" in check.text()


def test_no_pipe_to_shell_and_no_containerd_edit(fresh):
    text = all_text(fresh)
    assert not PIPE_TO_SHELL.search(text)
    assert "--runtime=containerd" not in text and "/etc/containerd/config.toml" not in text
    install = fresh.op(BOX, f"Install K3s {PIN}").text()
    assert install == (f"INSTALL_K3S_VERSION={PIN} INSTALL_K3S_EXEC=server INSTALL_K3S_SKIP_START=true "
                       f"sh /usr/local/share/omni/k3s/install-{PIN}.sh")
    saved = fresh.op(BOX, "Save the K3s").text()
    assert "https://raw.githubusercontent.com/k3s-io/k3s/v1.35.6%2Bk3s1/install.sh" in saved


def test_rendered_files_match_the_reviewed_golden_files(fresh):
    uploads = fresh.uploads(BOX)
    assert uploads["/etc/apt/sources.list.d/docker.sources"] == golden("docker.sources")
    assert uploads["/etc/apt/sources.list.d/nvidia-container-toolkit.sources"] == golden(
        "nvidia-container-toolkit.sources")
    assert uploads["/etc/docker/daemon.json"] == golden("daemon.json")
    assert uploads["/etc/rancher/k3s/config.yaml"] == golden("k3s-config.yaml")
    assert uploads["/var/lib/omni/phase4.json"] == golden("phase4.json")
    pod = smoke_pod(DEFAULTS["phase4"]["cuda_image"], device_plugin=True)
    assert pod == golden("gpu-smoke-pod.yaml") and "nvidia.com/gpu: __OMNI_GPUS__" in pod
    assert pod.strip() in fresh.op(BOX, "runtimeClassName nvidia pod").text()
    assert 'sed "s/__OMNI_GPUS__/$want/"' in fresh.op(BOX, "runtimeClassName nvidia pod").text()


def test_unpinned_install_script_stops_before_running_with_the_hash_to_pin(fresh):
    check = fresh.op(BOX, "Check the K3s install script's sha256").text()
    assert "is not pinned" in check and "k3s.install_script_sha256" in check and check.endswith("exit 1")


def test_pinned_install_script_is_checked_against_the_pin():
    result = plan(fresh_ubuntu(), k3s={"install_script_sha256": SHA.upper()})
    check = result.op(BOX, "Check the K3s install script's sha256").text()
    assert f'[ "$sum" = {SHA} ]' in check and "rm -f" in check


def test_converged_host_plans_and_executes_no_change():
    result = plan(converged(), execute=True)
    assert [name for name in result.changing(BOX) if not name.startswith("Verify ")] == []
    assert result.changing(BOX) == ["Verify Docker containers see every GPU",
                                    "Verify every K3s node is Ready",
                                    "Verify the nvidia RuntimeClass exists",
                                    "Verify the NVIDIA device plugin advertises every GPU",
                                    "Verify a runtimeClassName nvidia pod runs nvidia-smi"]
    assert not any(op.conditional for op in result.ops[BOX])
    assert [name for name in result.changed[BOX] if not name.startswith("Verify ")] == []
    quiet = plan(converged(), execute=True, phase4={"verify": False})
    assert quiet.changing(BOX) == [] and quiet.changed[BOX] == []


def test_k3s_version_drift_takes_the_upgrade_path():
    result = plan(converged(k3s_binary="v1.34.9+k3s1", k3s_running="v1.34.9+k3s1"), phase4={"verify": False})
    changing = result.changing(BOX)
    assert changing == [f"Save the K3s {PIN} install script",
                        f"Check the K3s install script's sha256 (v1.34.9+k3s1 -> {PIN})",
                        f"Install K3s {PIN} with its install script",
                        "Restart K3s (install, config or NVIDIA toolkit changed)",
                        "Wait for the K3s API server"]
    assert f"INSTALL_K3S_VERSION={PIN}" in result.op(BOX, f"Install K3s {PIN}").text()
    assert result.op(BOX, "Restart K3s").conditional


def test_running_release_behind_the_binary_gets_a_restart_only():
    result = plan(converged(k3s_running="v1.34.9+k3s1"), phase4={"verify": False})
    assert result.changing(BOX) == ["Restart K3s (running release differs from the pin)",
                                    "Wait for the K3s API server"]
    assert not result.op(BOX, "Restart K3s").conditional


def test_toolkit_upgrade_restarts_k3s_but_not_docker():
    box = converged()
    box.packages["nvidia-container-toolkit"] = "1.18.1-1"
    result = plan(box, phase4={"verify": False})
    assert "Install the NVIDIA Container Toolkit at the pinned versions" in result.changing(BOX)
    assert "Restart K3s (install, config or NVIDIA toolkit changed)" in result.names(BOX)
    assert not any(name.startswith("Restart Docker") for name in result.names(BOX))


def test_release_table_for_the_packaged_nvidia_runtimeclass():
    assert ships_nvidia_runtimeclass((1, 35, 6, 1)) and ships_nvidia_runtimeclass((1, 29, 0, 1))
    for (major, minor), (patch, k3s) in FIRST_WITH_NVIDIA_RUNTIMECLASS.items():
        assert ships_nvidia_runtimeclass((major, minor, patch, k3s))
        assert not ships_nvidia_runtimeclass((major, minor, patch - 1, 9))
    assert not ships_nvidia_runtimeclass((1, 25, 16, 4))


def test_old_release_gets_our_runtimeclass_never_named_runtimes_yaml():
    result = plan(fresh_ubuntu(), k3s={"version": "v1.28.4+k3s2"})
    uploads = result.uploads(BOX)
    ours = "/var/lib/rancher/k3s/server/manifests/omni-nvidia-runtimeclass.yaml"
    assert uploads[ours] == golden("omni-nvidia-runtimeclass.yaml")
    assert not any(path.endswith("/runtimes.yaml") for path in uploads)
    current = plan(fresh_ubuntu())
    assert ours not in current.uploads(BOX)
    disabled = plan(fresh_ubuntu(), k3s={"config": {"disable": ["traefik", "runtimes"]}})
    assert ours in disabled.uploads(BOX)


def test_agents_join_the_server_with_a_token_read_at_run_time():
    agent = fresh_ubuntu()
    agent.units = {"docker.service": False, "k3s-agent.service": False}
    result = run_deploy([(BOX, fresh_ubuntu().data(), ["workstations"]),
                         ("@fake/node2", agent.data(k3s={"server_url": "https://box:6443"}), ["k3s_agents"])])
    assert result.error is None, result.error
    uploads = result.uploads("@fake/node2")
    assert uploads["/etc/rancher/k3s/config.yaml"] == golden("agent-k3s-config.yaml")
    assert uploads["/var/lib/omni/phase4.json"] == golden("agent-phase4.json")
    copy = result.op("@fake/node2", "Copy the K3s join token from the server")
    assert copy.commands == ["install -d -m 0755 /etc/rancher/k3s",
                             "install -m 0600 /dev/null /etc/rancher/k3s/omni-agent-token",
                             ("upload", "<read from the K3s server when the run executes>\n",
                              "/etc/rancher/k3s/omni-agent-token")]
    assert "INSTALL_K3S_EXEC=agent" in result.op("@fake/node2", f"Install K3s {PIN}").text()
    assert not any(n.startswith("Verify") for n in result.changing("@fake/node2"))
    # the server's K3s runs (and answers) before the agent reads its token, and before the agent starts
    order = result.order
    assert order.index((BOX, "Wait for the K3s API server")) < order.index(
        ("@fake/node2", "Copy the K3s join token from the server")) < order.index(
        ("@fake/node2", "Enable and start the K3s agent"))
    converged_agent = converged(agent=True)
    again = run_deploy([(BOX, converged().data(phase4={"verify": False}), ["workstations"]),
                        ("@fake/node2", converged_agent.data(phase4={"verify": False},
                                                             k3s={"server_url": "https://box:6443"}),
                         ["k3s_agents"])], execute=True)
    assert again.error is None and again.changed == {BOX: [], "@fake/node2": []}


def test_agent_needs_a_reachable_server():
    result = run_deploy([(BOX, fresh_ubuntu().data(), ["workstations"]),
                         ("@fake/node2", fresh_ubuntu().data(), ["k3s_agents"])])
    assert result.error and "which agents cannot reach: set k3s.server_url" in result.error
    result = run_deploy([("@fake/node2", fresh_ubuntu().data(), ["k3s_agents"])])
    assert result.error and "needs a K3s server" in result.error


def test_host_without_systemd_plans_and_refuses_to_apply_first():
    box = Box(systemd=False)
    box.packages.pop("gnupg")
    result = plan(box)
    first = result.ops[BOX][0]
    assert first.name == "Refuse to apply phase 4 without systemd" and first.text().endswith("exit 1")
    text = all_text(result)
    assert "systemctl enable --now docker.service" in text and "systemctl enable --now k3s.service" in text
    assert "gnupg" in result.op(BOX, "Install the apt repository prerequisites").text()


def test_docker_can_be_left_out():
    result = plan(fresh_ubuntu(), docker={"enabled": False})
    names = result.names(BOX)
    assert not any("Docker" in name for name in names)
    assert "Install the NVIDIA Container Toolkit at the pinned versions" in result.changing(BOX)


@pytest.mark.parametrize(("data", "message"), [
    ({"k3s": {"version": "1.35"}}, "k3s.version: '1.35' is not a K3s release tag"),
    ({"k3s": {"versoin": "v1.35.6+k3s1"}}, "k3s.versoin: Extra inputs are not permitted"),
    ({"docker": {"key_fingerprints": ["ABCD"]}},
     "docker.key_fingerprints: 'ABCD' is not a 40-hex"),
])
def test_bad_settings_stop_with_one_line_naming_the_key(data, message):
    result = run_deploy([(BOX, fresh_ubuntu().data(**data), ["workstations"])])
    assert result.error and message in result.error and "\n" not in result.error


def test_join_token_travels_from_server_to_agent_without_appearing_in_any_command():
    token = "K10f00dfeed::server:5ecret"
    server_box = fresh_ubuntu()
    server_box.probes["cat /var/lib/rancher/k3s/server/node-token"] = token
    agent = fresh_ubuntu()
    agent.units = {"docker.service": False, "k3s-agent.service": False}
    result = run_deploy([(BOX, server_box.data(phase4={"verify": False}), ["workstations"]),
                         ("@fake/node2", agent.data(k3s={"server_url": "https://box:6443"}), ["k3s_agents"])],
                        execute=True)
    assert result.error is None, result.error
    assert "Copy the K3s join token from the server" in result.changed["@fake/node2"]
    assert "install -m 0600 /dev/null /etc/rancher/k3s/omni-agent-token" in result.executed["@fake/node2"]
    commands = result.executed["@fake/node2"] + result.executed[BOX] + [
        c for ops in result.ops.values() for op in ops for c in op.commands if isinstance(c, str)]
    assert not any(token in command for command in commands)


def test_missing_server_token_stops_the_agent_with_one_line():
    agent = fresh_ubuntu()
    agent.units = {"docker.service": False, "k3s-agent.service": False}
    server_box = fresh_ubuntu()
    server_box.probes["cat /var/lib/rancher/k3s/server/node-token"] = {"success": False}
    agent.probes["cannot read /var/lib/rancher/k3s/server/node-token"] = {"success": False}  # `exit 1`
    result = run_deploy([(BOX, server_box.data(phase4={"verify": False}), ["workstations"]),
                         ("@fake/node2", agent.data(k3s={"server_url": "https://box:6443"}), ["k3s_agents"])],
                        execute=True)
    assert result.error == "failed hosts: ['@fake/node2']"
    failing = [c for c in result.executed["@fake/node2"] if "node-token" in c]
    assert failing == ["echo '@fake/node2: cannot read /var/lib/rancher/k3s/server/node-token on the K3s "
                       "server @fake/box: apply phase 4 on the server first' >&2; exit 1"]


def test_hand_made_one_line_sources_are_replaced_by_deb822():
    """Docker's older instructions: a .list with another keyring would make apt refuse to update."""
    box = converged()
    box.sources["/etc/apt/sources.list.d/docker.list"] = (
        "deb [arch=amd64 signed-by=/usr/share/keyrings/docker-archive-keyring.gpg] "
        "https://download.docker.com/linux/ubuntu noble stable\n")
    box.files["/etc/apt/sources.list.d/docker.list"] = box.sources["/etc/apt/sources.list.d/docker.list"]
    result = plan(box, phase4={"verify": False})
    # apt could not update while both existed: refresh the lists once the conflict is gone
    assert result.changing(BOX) == ["Remove the Docker one-line source docker.list (replaced by deb822)",
                                    "Update apt package lists for Docker CE"]
    assert result.op(BOX, "source docker.list").text() == "rm -f /etc/apt/sources.list.d/docker.list"


def test_device_plugin_is_deployed_pinned_by_digest_or_the_run_says_what_to_pin(fresh):
    """K3s ships no device plugin: without one, no pod can request nvidia.com/gpu."""
    check = fresh.op(BOX, "Check the NVIDIA device plugin image is pinned").text()
    assert "nvcr.io/nvidia/k8s-device-plugin:v0.17.1 is not pinned" in check
    assert "k3s.device_plugin_digest" in check and check.endswith("exit 1")
    pinned = plan(fresh_ubuntu(), k3s={"device_plugin_digest": TEST_DIGEST})
    manifest = pinned.uploads(BOX)[DEVICE_PLUGIN]
    assert f'image: "nvcr.io/nvidia/k8s-device-plugin:v0.17.1@{TEST_DIGEST}"' in manifest
    assert "runtimeClassName: nvidia" in manifest and "kind: DaemonSet" in manifest
    order = pinned.changing(BOX)
    assert order.index("Deploy NVIDIA's device plugin (K3s manifest, pinned by digest)") < order.index(
        "Enable and start K3s")
    off = plan(fresh_ubuntu(), k3s={"device_plugin": False})
    assert "Verify the NVIDIA device plugin advertises every GPU" not in off.changing(BOX)
    assert "NVIDIA_VISIBLE_DEVICES" in off.op(BOX, "runtimeClassName nvidia pod").text()


def test_pinned_docker_and_toolkit_are_held_and_the_ssh_user_gets_docker_and_kubeconfig():
    box = fresh_ubuntu()
    box.accounts["omni"] = ("/home/omni", "omni", "omni adm")
    result = plan(box, ssh_user="omni")
    changing = result.changing(BOX)
    hold = result.op(BOX, "Hold Docker CE at the pins (apt-mark hold)").text()
    assert hold.startswith("apt-mark hold containerd.io docker-buildx-plugin docker-ce")
    toolkit = result.op(BOX, "Hold the NVIDIA Container Toolkit").text()
    assert "apt-mark hold libnvidia-container-tools" in toolkit
    assert "--allow-change-held-packages" in result.op(BOX, "Install Docker CE at the pinned versions").text()
    assert result.op(BOX, "Add omni to the docker group").text() == "usermod -aG docker omni"
    give = result.op(BOX, "Give omni the K3s kubeconfig (/home/omni/.kube/config, 0600)").text()
    assert "install -m 0600 -o omni -g omni /etc/rancher/k3s/k3s.yaml /home/omni/.kube/config" in give
    assert changing.index("Enable and start K3s") < changing.index(
        "Give omni the K3s kubeconfig (/home/omni/.kube/config, 0600)")
    # already in the group, holds in place: nothing of that again
    box.accounts["omni"] = ("/home/omni", "omni", "omni adm docker")
    box.holds = sorted({*DEFAULTS["docker"]["packages"], *DEFAULTS["nvidia_toolkit"]["packages"]})
    again = plan(box, ssh_user="omni").changing(BOX)
    assert not any(n.startswith(("Hold ", "Add omni to the docker group")) for n in again)
    missing = run_deploy([(BOX, fresh_ubuntu().data(phase4={"users": ["nobody-here"]}), ["workstations"])])
    assert "phase4.users names 'nobody-here', which has no account on the host" in missing.error
