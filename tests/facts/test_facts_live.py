"""The facts run for real through pyinfra's @local connector: with lspci, numactl and dmidecode
installed (their real output on this machine), and with them hidden (the sysfs fallbacks)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from facts import hardware
from facts.collect import collect_local, connected_host
from facts.hardware import BlockDevices, CpuInfo, MemoryModules, NumaTopology, NvidiaGpus, PcieLinks
from facts.parse.common import expand_cpulist, pci_address
from tests.sysdeps import ensure_binary


@pytest.fixture(scope="module")
def tools() -> None:
    ensure_binary("lspci", "pciutils")
    ensure_binary("numactl", "numactl")
    ensure_binary("dmidecode", "dmidecode")


@pytest.fixture(scope="module")
def local(tools):
    with connected_host("@local", {}) as host:
        yield host


def kernel_pci_addresses() -> set[str]:
    return {pci_address(name) for name in os.listdir("/sys/bus/pci/devices")}


def kernel_nodes() -> set[int]:
    return {int(p.name[4:]) for p in Path("/sys/devices/system/node").glob("node[0-9]*")}


def test_pcie_links_from_real_lspci(local) -> None:
    fact = local.get_fact(PcieLinks)
    assert fact["available"] and fact["source"] in ("lspci", "lspci+sysfs")
    assert {d["pci_address"] for d in fact["devices"]} == kernel_pci_addresses()


def test_numa_from_real_numactl(local) -> None:
    fact = local.get_fact(NumaTopology)
    direct = subprocess.run(["numactl", "--hardware"], capture_output=True, text=True)
    if direct.returncode == 0:
        assert fact["available"] and fact["source"] == "numactl" and fact["reason"] is None
    else:  # e.g. a container whose seccomp profile forbids get_mempolicy
        first = (direct.stdout + direct.stderr).strip().splitlines()[0]
        assert fact["source"] == "sysfs" and first in fact["reason"]
    assert {n["id"] for n in fact["nodes"]} == kernel_nodes() and fact["count"] == len(kernel_nodes())
    sysfs_cpus = [cpu for path in Path("/sys/devices/system/node").glob("node[0-9]*/cpulist")
                  for cpu in expand_cpulist(path.read_text().strip())]
    assert sorted(cpu for n in fact["nodes"] for cpu in n["cpus"]) == sorted(sysfs_cpus)
    assert fact["distances_complete"] is True


def test_memory_modules_from_real_dmidecode(local) -> None:
    fact = local.get_fact(MemoryModules)
    direct = subprocess.run(["dmidecode", "-t", "memory"], capture_output=True, text=True)
    devices = direct.stdout.splitlines().count("Memory Device")
    assert fact["source"] == "dmidecode"
    if devices:
        assert fact["available"] and fact["slots_total"] == devices
    else:  # this dev VM and most CI containers have no SMBIOS tables
        assert not fact["available"] and fact["modules"] is None
        assert fact["reason"].startswith("dmidecode")


def test_cpu_and_disks(local) -> None:
    cpu = local.get_fact(CpuInfo)
    assert cpu["source"] == "lscpu" and cpu["threads"] == os.cpu_count()
    flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    assert cpu["avx512"] == (" avx512f" in flags)
    disks = local.get_fact(BlockDevices)
    assert disks["available"]
    assert {d["name"] for d in disks["disks"]} <= set(os.listdir("/sys/block"))


@pytest.fixture
def bare_path(tmp_path: Path) -> str:
    """A PATH with only the basic tools the fact commands use: lspci, numactl, lsblk hidden."""
    for tool in ("grep", "cat", "id", "head", "timeout", "sleep"):
        target = Path("/usr/bin", tool) if Path("/usr/bin", tool).exists() else Path("/bin", tool)
        (tmp_path / tool).symlink_to(target)
    return str(tmp_path)


def test_without_lspci_and_numactl_sysfs_answers(local, bare_path: str) -> None:
    links = local.get_fact(PcieLinks, _env={"PATH": bare_path})
    assert links["source"] == "sysfs" and "lspci not installed" in links["reason"]
    assert {d["pci_address"] for d in links["devices"]} == kernel_pci_addresses()
    from_sysfs = local.get_fact(NumaTopology, _env={"PATH": bare_path})
    from_numactl = local.get_fact(NumaTopology)
    assert from_sysfs["source"] == "sysfs" and "numactl not installed" in from_sysfs["reason"]

    def shape(fact: dict) -> list:  # free memory moves between two reads; the rest must agree
        return [(n["id"], n["cpus"], n["size_mib"]) for n in fact["nodes"]] + [fact["distances"]]

    assert shape(from_sysfs) == shape(from_numactl)


def test_without_nvidia_smi_gpus_are_unavailable(local, bare_path: str) -> None:
    fact = local.get_fact(NvidiaGpus, _env={"PATH": bare_path})
    assert fact == {"available": False, "source": None, "gpus": None,
                    "reason": "nvidia-smi not installed (no NVIDIA driver)"}


def test_without_lsblk_the_default_says_so(local, bare_path: str) -> None:
    # BlockDevices declares requires_command="lsblk": pyinfra answers with the fact's default().
    fact = local.get_fact(BlockDevices, _env={"PATH": bare_path})
    assert fact == {"available": False, "source": None, "disks": None, "others": None,
                    "reason": "lsblk not installed (apt install util-linux)"}


def _stand_in_nvidia_smi(folder: str, script: str) -> None:
    """nvidia-smi cannot run here (no GPU): a stand-in replays a real capture or hangs."""
    path = Path(folder, "nvidia-smi")
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)


def test_nvidia_smi_replaying_the_h200_capture(local, bare_path: str) -> None:
    capture = Path(__file__).parent.parent / "fixtures" / "hw" / "h200-nvidia-smi-query-gpu-csv.txt"
    _stand_in_nvidia_smi(bare_path, f"grep -v '^# ' {capture}\n")
    fact = local.get_fact(NvidiaGpus, _env={"PATH": bare_path})
    assert fact["available"] and fact["source"] == "nvidia-smi"
    (gpu,) = fact["gpus"]
    assert (gpu["name"], gpu["memory_total_mib"], gpu["pcie_gen_current"], gpu["pcie_width_current"]) == (
        "NVIDIA H200", 143771, 5, 16)


def test_a_hanging_nvidia_smi_is_cut_off(local, bare_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "NVIDIA_SMI_TIMEOUT_S", 1)
    _stand_in_nvidia_smi(bare_path, "sleep 30\n")
    fact = local.get_fact(NvidiaGpus, _env={"PATH": bare_path})
    assert fact["available"] is False and fact["reason"] == "nvidia-smi: timed out after 1 s"


def test_collect_local_is_the_cli_document(tools) -> None:
    doc = collect_local()
    assert doc["host"] == "@local" and doc["facts"]["pcie_links"]["source"].startswith("lspci")
