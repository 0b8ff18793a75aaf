"""verify.py: rows from every deploys.checks module, the table, the JSON report, the exit status.

The @fake host answers with the real H200 captures (tests/fixtures/hw/h200-*.txt); the same run
also goes against this machine (@local) for real, where most components are absent (UNKNOWN).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from deploys.checks import Status, Weight, matrix
from deploys.core.pyinfra_run import plan
from omni.hostdata import host_data

ROOT = Path(__file__).resolve().parents[3]
VERIFY = ROOT / "deploys" / "verify.py"
HW = ROOT / "tests" / "fixtures" / "hw"


def capture(name: str) -> list[str]:
    return [line for line in (HW / f"h200-{name}.txt").read_text().splitlines() if not line.startswith("# ")]


def h200_host(**data) -> tuple[str, dict]:
    os_release = capture("os-release")
    missing = {"success": False}
    responses = {
        "-release": ["/etc/os-release", *os_release[:-1], "---"],
        "/proc/driver/nvidia/version": ["##omni:proc", *capture("proc-driver-nvidia-version")],
        "nvidia-smi --query-gpu": [
            "##omni:nvidia-smi",
            *capture("nvidia-smi-query-gpu-csv"),
            "##omni:sysfs",
            "/sys/bus/pci/devices/0000:00:06.0/numa_node:-1",
            "/sys/devices/system/node/online:0",
        ],
        "numactl --hardware": [
            "##omni:numactl",
            *capture("numactl-hardware"),
            "##omni:sysfs",
            *capture("sysfs-node"),
        ],
        "dmidecode -t memory": ["##omni:missing dmidecode"],
        "lspci -vvv": ["##omni:missing lspci", "##omni:sysfs", *capture("sysfs-pci")],
        "lscpu -J": ["##omni:lscpu", *capture("lscpu-json")],
        "cat /proc/meminfo": capture("proc-meminfo"),
        "uname -r": [os_release[-1].split()[1]],
        "cat /proc/cmdline": ["console=ttyS0 quiet"],
        re.compile(r"cat /var/lib/omni/|cat /boot/grub/|cat /etc/fstab|cat /proc/self/mounts"): missing,
        re.compile(r"command -v (lstopo-no-graphics|lspci|dmidecode|nvme|kubectl|docker)"): missing,
        "mokutil --sb-state": ["##omni:mokutil", "SecureBoot enabled"],
        "dpkg-query -W -f='${Status}' linux-modules-nvidia-580-open": ["install ok installed"],
        "dpkg-query": missing,
        "systemctl is-active nvidia-persistenced": ["active"],
    }
    return "@fake", {"fake_responses": responses, **data}


H200_DATA = {
    "gpus": [{"name": "NVIDIA H200", "memory_mib": 143771, "pcie_gen": 5, "pcie_width": 16}],
    "numa_nodes": 1,
    "memory": {"total_gib": 128, "dimm_count": 8, "speed_mts": 6400},
    "cpu": {"model": "Intel(R) Xeon(R) Platinum 8480+"},
}


def report(folder: Path) -> dict:
    (path,) = folder.glob("verify-fake-*.json")
    return json.loads(path.read_text())


def rows_by_name(document: dict) -> dict[str, dict]:
    return {row["name"]: row for row in document["rows"]}


def test_h200_machine_passes_its_own_hardware_rows(tmp_path):
    env = {**os.environ, "OMNI_REPORTS_DIR": str(tmp_path), "OMNI_BACKUP_DIR": str(tmp_path / "b")}
    result = plan(VERIFY, [h200_host(**H200_DATA)], env=env)
    document = report(tmp_path)
    rows = rows_by_name(document)
    assert (
        rows["GPUs visible"]["status"] == "PASS"
        and "NVIDIA H200 143771 MiB" in rows["GPUs visible"]["measured"]
    )
    link = rows["PCIe link NVIDIA H200"]
    assert link["status"] == "PASS"
    assert link["measured"] == "Gen5 x16 (idle Gen5 x16, max Gen5 x16) at 00000000:00:06.0"
    assert rows["NUMA nodes"]["status"] == "PASS"
    assert rows["OS"]["status"] == "PASS" and rows["OS"]["measured"] == "Ubuntu 24.04"
    assert rows["NVIDIA driver"]["status"] == "PASS"
    assert rows["NVIDIA driver"]["measured"] == "580.159.04 open: NVIDIA UNIX Open Kernel Module for x86_64"
    assert rows["Secure Boot"]["status"] == "PASS"
    assert rows["Secure Boot"]["measured"] == (
        "SecureBoot enabled; linux-modules-nvidia-580-open-generic-hwe-24.04 installed"
    )
    assert rows["nvidia-persistenced"]["status"] == "PASS"
    assert rows["SSH latency"]["target"] == "< 100.0 ms round trip"  # the runbook's, not 5 ms
    assert (
        rows["DIMM configured speed"]["status"] == "UNKNOWN"
        and "dmidecode" in rows["DIMM configured speed"]["reason"]
    )
    assert (
        rows["Dual boot menu"]["status"] == "UNKNOWN"
        and "GRUB not installed" in rows["Dual boot menu"]["reason"]
    )
    assert (
        rows["Data disk"]["status"] == "UNKNOWN" and "phase3 not applied yet" in rows["Data disk"]["reason"]
    )
    assert rows["Phase 0 ready"]["status"] == "UNKNOWN"
    assert result.error is None, result.error  # no CRITICAL row failed
    assert {"row", "target", "measured", "status", "weight"} <= set(
        re.findall(r"\b(row|target|measured|status|weight)\b", result.output)
    )
    assert document["summary"]["critical_failed"] == [] and document["facts"]["NvidiaGpus"]["available"]


def test_reference_box_expectations_fail_critical_rows_and_the_run(tmp_path):
    env = {**os.environ, "OMNI_REPORTS_DIR": str(tmp_path), "OMNI_BACKUP_DIR": str(tmp_path / "b")}
    result = plan(VERIFY, [h200_host(**host_data(env={}))], env=env)  # the reference box: 2 GPUs, NPS4
    rows = rows_by_name(report(tmp_path))
    assert rows["GPUs visible"]["status"] == "FAIL" and rows["GPUs visible"]["weight"] == "CRITICAL"
    assert rows["PCIe link NVIDIA GeForce RTX 5090"]["status"] == "UNKNOWN"
    assert rows["NUMA nodes"]["status"] == "FAIL"
    assert result.error.startswith("CRITICAL verification rows failed (@fake: GPUs visible")


def test_secure_boot_on_without_signed_modules_fails_once_phase3_ran(tmp_path):
    env = {**os.environ, "OMNI_REPORTS_DIR": str(tmp_path), "OMNI_BACKUP_DIR": str(tmp_path / "b")}
    name, data = h200_host(**H200_DATA)
    responses = data["fake_responses"]
    del responses["dpkg-query -W -f='${Status}' linux-modules-nvidia-580-open"]
    responses["systemctl is-active nvidia-persistenced"] = ["inactive"]
    data["fake_responses"] = {"cat /var/lib/omni/phase3.json": ['{"phase": 3}'], **responses}
    plan(VERIFY, [(name, data)], env=env)
    rows = rows_by_name(report(tmp_path))
    assert rows["Secure Boot"]["status"] == "FAIL" and rows["Secure Boot"]["weight"] == "HIGH"
    assert "install the signed prebuilt modules" in rows["Secure Boot"]["reason"]
    persistenced = rows["nvidia-persistenced"]
    assert persistenced["status"] == "FAIL" and persistenced["measured"] == "inactive"


def idle_gen1_host(load: dict | None) -> tuple[str, dict]:
    """The H200 capture with its link trained down to Gen1 (idle), and the load probe's answer."""
    name, data = h200_host(**H200_DATA)
    responses = data["fake_responses"]
    csv = [line.replace(", 5, 5, 16, 16", ", 1, 5, 16, 16") for line in responses["nvidia-smi --query-gpu"]]
    assert csv != responses["nvidia-smi --query-gpu"]
    loaded = {re.compile("cuMemcpyHtoD"): [json.dumps(load)] if load else {"success": False}}
    data["fake_responses"] = {**loaded, **responses, "nvidia-smi --query-gpu": csv}
    return name, data


def pcie_row(tmp_path: Path, load: dict | None) -> dict:
    env = {**os.environ, "OMNI_REPORTS_DIR": str(tmp_path), "OMNI_BACKUP_DIR": str(tmp_path / "b")}
    plan(VERIFY, [idle_gen1_host(load)], env=env)
    return rows_by_name(report(tmp_path))["PCIe link NVIDIA H200"]


def test_pcie_row_judges_the_current_link_under_load_not_the_maximum(tmp_path):
    bus = "00000000:00:06.0"
    gen3 = pcie_row(
        tmp_path / "gen3", {"load": {"0": "40 GiB"}, "samples": {bus: {"gen": 3, "width": 16}}, "error": None}
    )
    assert gen3["status"] == "FAIL" and gen3["weight"] == "CRITICAL"  # max Gen5 would have passed it
    assert gen3["measured"] == f"Gen3 x16 under load (idle Gen1 x16, max Gen5 x16) at {bus}"
    assert "CbsCmnEarlyLinkSpeedSHP" in gen3["reason"]
    gen5 = pcie_row(
        tmp_path / "gen5", {"load": {"0": "80 GiB"}, "samples": {bus: {"gen": 5, "width": 16}}, "error": None}
    )
    assert gen5["status"] == "PASS" and gen5["measured"].startswith("Gen5 x16 under load (idle Gen1 x16")
    none = pcie_row(tmp_path / "none", {"load": {}, "samples": {}, "error": "OSError: libcuda.so.1: gone"})
    assert none["status"] == "UNKNOWN" and "no GPU load ran (OSError: libcuda.so.1" in none["reason"]


def test_a_crashing_check_module_becomes_one_unknown_row(monkeypatch):
    monkeypatch.setattr(matrix, "check_modules", lambda: ["json"])
    (row,) = matrix.collect_rows(ctx=None)  # type: ignore[arg-type]
    assert (row.name, row.status, row.weight) == ("json checks", Status.UNKNOWN, Weight.MEDIUM)
    assert "AttributeError" in row.reason


def test_every_checks_module_is_collected():
    names = matrix.check_modules()
    assert "deploys.checks.hardware" in names and "deploys.checks.host" in names
    assert "deploys.checks.context" not in names


def test_cli_against_this_machine_writes_a_report_and_never_crashes(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    env.update(OMNI_HOST="@local", OMNI_REPORTS_DIR=str(tmp_path), OMNI_BACKUP_DIR=str(tmp_path / "b"))
    pyinfra = Path(sys.executable).with_name("pyinfra")
    proc = subprocess.run(
        [str(pyinfra), "-y", "inventory.py", "deploys/verify.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and "Verification Matrix: @local" in out
    (path,) = tmp_path.glob("verify-local-*.json")
    document = json.loads(path.read_text())
    assert len(document["rows"]) >= 15 and all(
        r["status"] in {"PASS", "FAIL", "UNKNOWN"} for r in document["rows"]
    )
    failed = document["summary"]["critical_failed"]
    assert (proc.returncode != 0) == bool(failed), out[-2000:]
    if failed:
        assert "CRITICAL verification rows failed" in out


def test_the_gpu_load_probe_runs_on_a_host_without_cuda_and_says_why():
    """The host-side snippet of deploys/checks/_gpu_load.py, run for real here (no libcuda here)."""
    from deploys.checks._gpu_load import _SNIPPET, load_failed

    proc = subprocess.run([sys.executable, "-c", _SNIPPET, "0.2"], capture_output=True, text=True, timeout=60)
    result = json.loads(proc.stdout.splitlines()[-1])
    assert proc.returncode == 0 and set(result) == {"load", "samples", "error"}
    reason = load_failed(result)
    assert reason and ("libcuda" in reason or "CUDA" in reason), reason
