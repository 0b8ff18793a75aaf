"""The pyinfra fact fixtures (``hardware.<Fact>/<case>.json``) and the captures they are built from.

Why generated: each fixture's ``output`` is a real capture from ``tests/fixtures/hw`` wrapped in
the ``##omni:`` section markers that the fact's own command prints, so it must stay identical to
the capture file. ``python tests/facts/facts_fixture_cases.py`` rewrites the JSON files (``fact`` from
the current parser: review the diff); ``test_facts_fixtures.py`` fails when they drift.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
HW = HERE.parent / "fixtures" / "hw"


def capture(name: str) -> list[str]:
    """A capture's lines without its ``# source:``/``# expect:`` header (not command output)."""
    lines = (HW / name).read_text().splitlines()
    return [line for line in lines if not line.startswith(("# source:", "# expect:"))]


def only(name: str, prefix: str) -> list[str]:
    return [line for line in capture(name) if line.startswith(prefix)]


M = "##omni:"

#: fact -> case -> (what the case shows, the command output the fact sees)
CASES: dict[str, dict[str, tuple[str, list[str]]]] = {
    "PcieLinks": {
        "esc8000a-4gpu-numa-nodes": (
            "lspci -vvv of 4 idle RTX 6000 Ada (2.5GT/s downgraded), NUMA node lines, shell prompts",
            [f"{M}lspci", *capture("lspci-vvv-esc8000a-2s-epyc-4x-rtx6000ada-numa-node.txt"), f"{M}sysfs"]),
        "wrx90-downgraded-width-and-speed": (
            "lspci -vvv with a sudo prompt: GPUs downgraded in speed, an SSD controller in width",
            [f"{M}lspci", *capture("lspci-vvv-wrx90-tr-pro-2x-rtx6000ada-idle-2.5gt-downgraded-spaces.txt"),
             f"{M}sysfs"]),
        "h200-sysfs-fallback": (
            "H200 VM without lspci: links and numa_node read from sysfs",
            [f"{M}missing lspci", f"{M}sysfs", *capture("h200-sysfs-pci.txt")]),
        "debian-vm-lspci-and-sysfs": (
            "real lspci on virtio devices (no PCIe links) plus sysfs, libkmod stderr noise",
            [f"{M}lspci", *capture("debian-vm-lspci-vvv.txt"),
             f"{M}sysfs", *capture("debian-vm-sysfs-pci.txt")]),
        "nothing-readable": (
            "no lspci and no /sys/bus/pci: unavailable with a reason",
            [f"{M}missing lspci", f"{M}sysfs"]),
    },
    "MemoryModules": {
        "epyc-4344p-full-dmidecode-derated": (
            "full dmidecode (all types): 4 x 48 GB DDR5-5600 configured 3600 MT/s",
            [f"{M}dmidecode", *capture("dmidecode-full-epyc-4344p-ddr5-5600-configured-3600.txt")]),
        "r740-old-format-mhz": (
            "dmidecode 3.0: MHz, Configured Clock Speed, MB sizes, 20 empty slots",
            [f"{M}dmidecode", *capture("dmidecode-t17-dell-r740-2s-xeon-ddr4-mhz-2666-configured-2400.txt")]),
        "genoa-12-slots-3-empty": (
            "9 of 12 slots with 64 GB DDR5-4800",
            [f"{M}dmidecode", *capture("dmidecode-t17-epyc-9454p-genoa-12slot-9x64gb-3empty.txt")]),
        "wrx90-8x64gb-same-locator": (
            "every Locator is 'DIMM 0'; Bank Locator tells channels A..H apart",
            [f"{M}dmidecode", *capture("dmidecode-t17-wrx90e-threadripper-pro-7985wx-ddr5-8x64gb-4800.txt")]),
        "h200-not-installed": (
            "dmidecode missing on the H200 VM",
            [f"{M}missing dmidecode"]),
        "debian-vm-no-smbios": (
            "dmidecode in a VM without SMBIOS tables",
            [f"{M}dmidecode", *capture("debian-vm-dmidecode-t-memory.txt")]),
        "sudo-refused": (
            "non-root without passwordless sudo: sudo -n refuses instead of prompting",
            [f"{M}dmidecode", "sudo: a password is required"]),
    },
    "NumaTopology": {
        "esc8000a-2-nodes": (
            "numactl: 2 nodes, distances 10/32",
            [f"{M}numactl", *capture("numactl-hardware-2s-epyc-genoa-esc8000a-2nodes.txt"), f"{M}sysfs"]),
        "wrx90-1-node": (
            "numactl: 1 node, nearly all memory used",
            [f"{M}numactl", *capture("numactl-hardware-wrx90-tr-pro-7965wx-1node.txt"), f"{M}sysfs"]),
        "h200-numactl": (
            "H200 VM: numactl present, sysfs alongside (numactl wins)",
            [f"{M}numactl", *capture("h200-numactl-hardware.txt"),
             f"{M}sysfs", *capture("h200-sysfs-node.txt")]),
        "h200-sysfs-fallback": (
            "numactl missing: /sys/devices/system/node",
            [f"{M}missing numactl", f"{M}sysfs", *capture("h200-sysfs-node.txt")]),
        "no-numa": (
            "numactl on a kernel without NUMA and nothing in sysfs",
            [f"{M}numactl", "No NUMA available on this system", f"{M}sysfs"]),
    },
    "NvidiaGpus": {
        "h200": (
            "H200 VM: the fact's own query, numa_node -1 in sysfs",
            [f"{M}nvidia-smi", *capture("h200-nvidia-smi-query-gpu-csv.txt"), f"{M}sysfs",
             *only("h200-sysfs-pci.txt", "/sys/bus/pci/devices/0000:00:06.0/numa_node")]),
        "h200-212-columns": (
            "212-column query: columns picked by header name, [N/A] cells",
            [f"{M}nvidia-smi", *capture("nvidia-smi-query-gpu-csv-h200-212cols-idle.txt"), f"{M}sysfs"]),
        "rtx4080super-idle-gen1": (
            "202-column query: gen 1 of 4 while idle",
            [f"{M}nvidia-smi", *capture("nvidia-smi-query-gpu-csv-rtx4080super-idle-gen1-of-4.txt"),
             f"{M}sysfs"]),
        "not-installed": (
            "no nvidia-smi (this Debian machine, CI)",
            [f"{M}missing nvidia-smi", f"{M}sysfs"]),
        "driver-not-loaded": (
            "nvidia-smi present but the kernel driver is not loaded",
            [f"{M}nvidia-smi",
             "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
             "Make sure that the latest NVIDIA driver is installed and running.", "", f"{M}sysfs"]),
    },
    "BlockDevices": {
        "h200": ("H200 VM: zram0, vda, vdb", capture("h200-lsblk-json.txt")),
        "not-json": ("lsblk printing an error instead of JSON", ["lsblk: unknown column: MOUNTPOINT"]),
    },
    "CpuInfo": {
        "h200-lscpu": ("lscpu -J on the H200 VM", [f"{M}lscpu", *capture("h200-lscpu-json.txt")]),
        "h200-cpuinfo-fallback": (
            "lscpu -J failed: /proc/cpuinfo",
            [f"{M}lscpu", f"{M}cpuinfo", *capture("h200-proc-cpuinfo.txt")]),
    },
    "NvidiaDriver": {
        "h200-proc": ("/proc/driver/nvidia/version on the H200 VM",
                      [f"{M}proc", *capture("h200-proc-driver-nvidia-version.txt")]),
        "nvidia-smi-fallback": ("no /proc file (container): nvidia-smi's driver_version",
                                [f"{M}nvidia-smi", "580.159.04"]),
        "not-loaded": ("no driver at all", [f"{M}missing"]),
    },
}


def fixture_path(fact: str, case: str) -> Path:
    return HERE / f"hardware.{fact}" / f"{case}.json"


def build(fact_name: str, case: str) -> dict:
    """The fixture as pyinfra-testing reads it: command, requires_command, output, fact."""
    from facts import hardware

    fact = getattr(hardware, fact_name)()
    description, output = CASES[fact_name][case]
    data: dict = {"description": description, "command": fact.command()}
    if fact.requires_command():
        data["requires_command"] = fact.requires_command()
    data["output"] = output
    data["fact"] = json.loads(json.dumps(fact.process(output)))
    return data


def main() -> int:
    for fact_name, cases in CASES.items():
        folder = HERE / f"hardware.{fact_name}"
        folder.mkdir(exist_ok=True)
        for stale in set(folder.glob("*.json")) - {fixture_path(fact_name, case) for case in cases}:
            stale.unlink()
        for case in cases:
            fixture_path(fact_name, case).write_text(json.dumps(build(fact_name, case), indent=2) + "\n")
    print(f"wrote {sum(len(cases) for cases in CASES.values())} fixtures under {HERE}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent.parent))
    sys.exit(main())
