"""``python -m facts`` end to end, in a subprocess: parse every KIND, collect on this machine,
and the error paths (one line on stderr, non-zero exit, no traceback)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HW = ROOT / "tests" / "fixtures" / "hw"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("OMNI_")}
    return subprocess.run([sys.executable, "-m", "facts", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**clean, **(env or {})}, timeout=60)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode != 0 and proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


@pytest.mark.parametrize(("kind", "name", "key", "value"), [
    ("lspci", "lspci-vvv-esc8000a-2s-epyc-4x-rtx6000ada-numa-node.txt", ("devices", 2, "numa_node"), 1),
    ("dmidecode", "dmidecode-t17-dell-r740-2s-xeon-ddr4-mhz-2666-configured-2400.txt", ("slots_empty",), 20),
    ("numactl", "numactl-hardware-2s-epyc-genoa-esc8000a-2nodes.txt", ("distances", 0, 1), 32),
    ("nvidia-smi-csv", "nvidia-smi-query-gpu-csv-h200-212cols-idle.txt", ("gpus", 0, "memory_free_mib"),
     143158),
    ("nvidia-smi-q", "nvidia-smi-q-rtx5090-gen5-idle-gen1-width-x8.txt", ("gpus", 0, "pcie_width_current"),
     8),
    ("lsblk", "lsblk-wrx90-tr-pro-9-nvme-raid0-lvm.txt", ("disks", 2, "name"), "nvme6n1"),
    ("lsblk", "h200-lsblk-json.txt", ("disks", 1, "size_bytes"), 274877906944),
    ("sysfs-pci", "h200-sysfs-pci.txt", ("devices", 6, "cap_gen"), 5),
    ("sysfs-node", "h200-sysfs-node.txt", ("nodes", 0, "size_mib"), 4443),
    ("lscpu", "h200-lscpu-json.txt", ("avx512",), True),
])
def test_parse_prints_json(kind: str, name: str, key: tuple, value: object) -> None:
    proc = run("parse", kind, str(HW / name))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    for part in key:
        data = data[part]
    assert data == value


@pytest.mark.parametrize(("args", "needles"), [
    (("parse", "lshw", "x.txt"), ("unknown KIND 'lshw'", "lspci")),
    (("parse", "lspci", "/nonexistent/capture.txt"), ("cannot read", "No such file")),
    (("parse", "numactl", str(HW / "h200-lscpu-json.txt")), ("numactl:", "numactl --hardware")),
    (("parse", "lspci", str(HW / "h200-lspci-vvv.txt")), ("lspci: command not found",)),
    (("parse", "nvidia-smi-csv", str(HW / "h200-nvidia-smi-query-gpu-csv-noheader.txt")), ("noheader",)),
    (("parse", "lspci"), ("required",)),
    (("frobnicate",), ("invalid choice",)),
    ((), ("required",)),
])
def test_bad_input_is_one_line(args: tuple, needles: tuple) -> None:
    assert_one_line_error(run(*args), *needles)


def test_parse_of_a_directory_is_one_line(tmp_path: Path) -> None:
    assert_one_line_error(run("parse", "lsblk", str(tmp_path)), "cannot read")


def test_collect_on_this_machine() -> None:
    """A real @local pyinfra run here (Debian, no GPU): GPU facts say why they are unavailable."""
    proc = run("collect")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["host"] == "@local" and doc["system"]["hostname"] == socket.gethostname()
    assert doc["collector"]["pyinfra"].startswith("3.")
    facts = doc["facts"]
    assert set(facts) == {"cpu", "memory_modules", "numa", "pcie_links", "nvidia_driver", "nvidia_gpus",
                          "block_devices"}
    for fact in facts.values():
        assert {"available", "source", "reason"} <= set(fact)
        assert fact["available"] or fact["reason"]  # unavailable always says why
    assert facts["cpu"]["available"] and facts["cpu"]["threads"] == os.cpu_count()
    assert facts["numa"]["available"] and facts["numa"]["count"] >= 1
    assert facts["pcie_links"]["available"] and facts["block_devices"]["available"]
    if not Path("/proc/driver/nvidia/version").exists():
        assert facts["nvidia_driver"]["available"] is False and facts["nvidia_driver"]["version"] is None
        assert "NVIDIA driver not loaded" in facts["nvidia_driver"]["reason"]
        assert facts["nvidia_gpus"]["available"] is False and facts["nvidia_gpus"]["gpus"] is None
        assert "nvidia-smi" in facts["nvidia_gpus"]["reason"]


def test_collect_host_without_inventory_says_what_to_set() -> None:
    assert_one_line_error(run("collect", "--host", "box1"), "OMNI_HOST")


def test_collect_host_not_in_inventory() -> None:
    assert_one_line_error(run("collect", "--host", "box2", env={"OMNI_HOST": "box1"}),
                          "'box2' is not in the inventory", "box1")


def test_collect_host_unreachable_fails_fast() -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = run("collect", "--host", "127.0.0.1", env={"OMNI_HOST": "127.0.0.1", "OMNI_SSH_PORT": str(port)})
    assert_one_line_error(proc, "cannot connect to 127.0.0.1", str(port))
