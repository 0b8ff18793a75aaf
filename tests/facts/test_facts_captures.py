"""Every real capture parses to what its ``# expect:`` line says (values asserted one by one).

Captures: tests/fixtures/hw (the 15 shared ones copied from ../shared/fixtures/hw, the H200
VM ones, and ones from this Debian dev VM). Odd-output cases that no capture holds are made by
editing a real capture the way the odd tool prints it, and say so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from facts.parse import ParseError, parse
from facts.parse.common import pci_address
from facts.parse.noise import strip_noise

HW = Path(__file__).parent.parent / "fixtures" / "hw"
GIB_MIB = 1024
G = 2**30


def read(name: str) -> str:
    return (HW / name).read_text()


def link(device: dict) -> tuple:
    return device["cap_speed_gts"], device["cap_width"], device["sta_speed_gts"], device["sta_width"]


def pcie(gpu: dict) -> tuple:
    """(gen max, gen current, width max, width current), the order the expect lines use."""
    return gpu["pcie_gen_max"], gpu["pcie_gen_current"], gpu["pcie_width_max"], gpu["pcie_width_current"]


def memory(gpu: dict) -> tuple:
    return gpu["memory_total_mib"], gpu["memory_used_mib"], gpu["memory_free_mib"]


def test_every_capture_has_a_filled_in_expect_line() -> None:
    for path in sorted(HW.glob("*.txt")):
        head = path.read_text().splitlines()[:2]
        assert head[0].startswith("# source:"), path.name
        assert head[1].startswith("# expect:") and "fill in" not in head[1], path.name


def test_the_shared_captures_are_copied_verbatim() -> None:
    shared = Path("/work/shared/fixtures/hw")
    if not shared.is_dir():  # a fresh clone elsewhere: the copies are what the tests use
        return
    for original in shared.glob("*.txt"):
        assert (HW / original.name).read_text() == original.read_text(), original.name


def test_noise_is_stripped() -> None:
    lines = strip_noise(read("lspci-vvv-wrx90-tr-pro-2x-rtx6000ada-idle-2.5gt-downgraded-spaces.txt"))
    assert lines[0].startswith("c1:00.0 VGA compatible controller")
    assert not any(line.startswith(("$ ", "[sudo]", "# source", "# expect")) for line in lines)


# --- lspci ---------------------------------------------------------------------------------

def _by_address(data: dict) -> dict[str, dict]:
    return {device["address"]: device for device in data["devices"]}


def test_lspci_esc8000a_four_gpus_with_numa_nodes() -> None:
    devices = _by_address(parse("lspci", read("lspci-vvv-esc8000a-2s-epyc-4x-rtx6000ada-numa-node.txt")))
    assert list(devices) == ["01:00.0", "41:00.0", "c1:00.0", "e1:00.0"]
    assert {a: d["numa_node"] for a, d in devices.items()} == {
        "01:00.0": 0, "41:00.0": 0, "c1:00.0": 1, "e1:00.0": 1}
    for device in devices.values():
        assert device["is_gpu"] and "RTX 6000 Ada" in device["description"]
        assert (device["cap_speed_gts"], device["cap_width"]) == (16, 16)
        assert (device["sta_speed_gts"], device["sta_width"]) == (2.5, 16)
        assert (device["cap_gen"], device["sta_gen"]) == (4, 1)
        assert device["downgraded"] is True


def test_lspci_wrx90_gpus_nic_and_downgraded_width() -> None:
    devices = _by_address(parse("lspci", read(
        "lspci-vvv-wrx90-tr-pro-2x-rtx6000ada-idle-2.5gt-downgraded-spaces.txt")))
    assert sorted(devices) == ["11:00.0", "21:00.0", "c1:00.0", "c2:00.0"]
    for gpu in ("c1:00.0", "c2:00.0"):
        assert devices[gpu]["is_gpu"] and "AD102GL" in devices[gpu]["description"]
        assert (devices[gpu]["cap_speed_gts"], devices[gpu]["cap_width"]) == (16, 16)
        assert (devices[gpu]["sta_speed_gts"], devices[gpu]["sta_width"]) == (2.5, 16)
        assert devices[gpu]["downgraded"] is True
    nic = devices["21:00.0"]
    assert not nic["is_gpu"] and "ConnectX-7" in nic["description"]
    assert link(nic) == (32, 16, 32, 16)
    assert nic["downgraded"] is False and nic["cap_gen"] == 5
    ssd = devices["11:00.0"]
    assert not ssd["is_gpu"] and "SSD7540" in ssd["description"]
    assert link(ssd) == (5, 2, 5, 1)
    assert ssd["downgraded"] is True


def test_lspci_debian_vm_virtio_has_no_links() -> None:
    devices = parse("lspci", read("debian-vm-lspci-vvv.txt"))["devices"]
    assert [d["address"] for d in devices] == [f"00:0{i}.0" for i in range(6)]
    assert not any(d["is_gpu"] for d in devices)
    assert all(d["cap_speed_gts"] is None and d["sta_width"] is None and d["downgraded"] is None
               for d in devices)


def _edited_wrx90(old: str, new: str) -> str:
    """The real wrx90 capture with its LnkSta lines printed the way another lspci version does."""
    text = read("lspci-vvv-wrx90-tr-pro-2x-rtx6000ada-idle-2.5gt-downgraded-spaces.txt")
    assert old in text
    return text.replace(old, new)


def test_lspci_ok_and_strange_markers() -> None:
    # pciutils >= 3.8 annotates every LnkSta value: (ok), (downgraded) or (strange).
    text = _edited_wrx90("LnkSta: Speed 32GT/s, Width x16", "LnkSta: Speed 32GT/s (ok), Width x16 (ok)")
    text = text.replace("LnkSta: Speed 5GT/s, Width x1 (downgraded)",
                        "LnkSta: Speed 8GT/s (strange), Width x2 (ok)")
    devices = _by_address(parse("lspci", text))
    assert (devices["21:00.0"]["sta_speed_gts"], devices["21:00.0"]["downgraded"]) == (32, False)
    assert devices["11:00.0"]["sta_speed_gts"] == 8 and devices["11:00.0"]["downgraded"] is False


def test_lspci_speed_unknown() -> None:
    # A link that is down prints "Speed unknown" (and width x0).
    text = _edited_wrx90("LnkSta: Speed 32GT/s, Width x16",
                         "LnkSta: Speed unknown (downgraded), Width x0 (downgraded)")
    nic = _by_address(parse("lspci", text))["21:00.0"]
    assert nic["sta_speed_gts"] is None and nic["sta_width"] == 0 and nic["downgraded"] is True


def test_lspci_access_denied_is_filled_from_sysfs() -> None:
    # Without root lspci prints "Capabilities: <access denied>" instead of the Lnk lines.
    from facts.hardware import PcieLinks

    text = read("lspci-vvv-esc8000a-2s-epyc-4x-rtx6000ada-numa-node.txt")
    denied = "\n".join(line for line in text.splitlines() if "Lnk" not in line)
    sysfs = [
        "/sys/bus/pci/devices/0000:01:00.0/class:0x030000", "/sys/bus/pci/devices/0000:01:00.0/vendor:0x10de",
        "/sys/bus/pci/devices/0000:01:00.0/current_link_speed:2.5 GT/s PCIe",
        "/sys/bus/pci/devices/0000:01:00.0/current_link_width:16",
        "/sys/bus/pci/devices/0000:01:00.0/max_link_speed:16.0 GT/s PCIe",
        "/sys/bus/pci/devices/0000:01:00.0/max_link_width:16",
    ]
    fact = PcieLinks().process(["##omni:lspci", *denied.splitlines(), "##omni:sysfs", *sysfs])
    assert fact["source"] == "lspci+sysfs"
    gpu = _by_address(fact)["01:00.0"]
    assert link(gpu) == (16, 16, 2.5, 16) and (gpu["downgraded"], gpu["numa_node"]) == (True, 0)
    assert _by_address(fact)["41:00.0"]["cap_speed_gts"] is None  # sysfs had nothing for it


# --- sysfs PCI -----------------------------------------------------------------------------

def test_sysfs_pci_h200_gen5_x16() -> None:
    devices = parse("sysfs-pci", read("h200-sysfs-pci.txt"))["devices"]
    assert [d["address"] for d in devices] == [f"0000:00:0{i}.0" for i in range(7)]
    gpus = [d for d in devices if d["is_gpu"]]
    assert len(gpus) == 1
    gpu = gpus[0]
    assert gpu["address"] == "0000:00:06.0"
    assert gpu["description"] == "3D controller: NVIDIA Corporation [10de:2335]"
    assert link(gpu) == (32, 16, 32, 16)
    assert (gpu["cap_gen"], gpu["sta_gen"], gpu["downgraded"]) == (5, 5, False)
    assert all(d["numa_node"] is None for d in devices)  # every numa_node is -1
    assert all(d["cap_speed_gts"] is None for d in devices if d is not gpu)


def test_sysfs_pci_debian_vm() -> None:
    devices = parse("sysfs-pci", read("debian-vm-sysfs-pci.txt"))["devices"]
    assert len(devices) == 6 and not any(d["is_gpu"] or d["cap_width"] for d in devices)


# --- dmidecode -----------------------------------------------------------------------------

def test_dmidecode_full_output_epyc_4344p_derated() -> None:
    data = parse("dmidecode", read("dmidecode-full-epyc-4344p-ddr5-5600-configured-3600.txt"))
    assert (data["slots_total"], data["slots_empty"], len(data["modules"])) == (4, 0, 4)
    assert data["total_mib"] == 192 * GIB_MIB
    for module in data["modules"]:
        assert (module["size_mib"], module["type"]) == (48 * GIB_MIB, "DDR5")
        assert (module["speed_mts"], module["configured_mts"]) == (5600, 3600)
    assert [(m["locator"], m["bank_locator"]) for m in data["modules"]] == [
        ("DIMM 0", "P0 CHANNEL A"), ("DIMM 1", "P0 CHANNEL A"),
        ("DIMM 0", "P0 CHANNEL B"), ("DIMM 1", "P0 CHANNEL B")]


def test_dmidecode_old_format_mhz_configured_clock_speed() -> None:
    data = parse("dmidecode", read("dmidecode-t17-dell-r740-2s-xeon-ddr4-mhz-2666-configured-2400.txt"))
    assert (data["slots_total"], data["slots_empty"], len(data["modules"])) == (24, 20, 4)
    assert data["total_mib"] == 64 * GIB_MIB
    for module in data["modules"]:
        assert (module["size_mib"], module["type"]) == (16384, "DDR4")
        assert (module["speed_mts"], module["configured_mts"]) == (2666, 2400)  # MHz read as MT/s
        assert module["bank_locator"] is None  # "Not Specified"


def test_dmidecode_genoa_nine_of_twelve() -> None:
    data = parse("dmidecode", read("dmidecode-t17-epyc-9454p-genoa-12slot-9x64gb-3empty.txt"))
    assert (data["slots_total"], data["slots_empty"], len(data["modules"])) == (12, 3, 9)
    assert data["total_mib"] == 576 * GIB_MIB
    assert {(m["size_mib"], m["type"], m["speed_mts"], m["configured_mts"]) for m in data["modules"]} == {
        (64 * GIB_MIB, "DDR5", 4800, 4800)}


def test_dmidecode_wrx90_same_locator_distinct_banks() -> None:
    data = parse("dmidecode", read("dmidecode-t17-wrx90e-threadripper-pro-7985wx-ddr5-8x64gb-4800.txt"))
    assert (data["slots_total"], data["slots_empty"], data["total_mib"]) == (8, 0, 512 * GIB_MIB)
    assert {m["locator"] for m in data["modules"]} == {"DIMM 0"}
    assert [m["bank_locator"] for m in data["modules"]] == [f"P0 CHANNEL {c}" for c in "ABCDEFGH"]
    speeds = {(m["speed_mts"], m["configured_mts"], m["type"]) for m in data["modules"]}
    assert speeds == {(4800, 4800, "DDR5")}


def test_dmidecode_out_of_spec_and_unknown_are_null() -> None:
    # Older dmidecode prints <OUT OF SPEC> for memory types it does not know (e.g. DDR5).
    text = read("dmidecode-t17-wrx90e-threadripper-pro-7985wx-ddr5-8x64gb-4800.txt")
    text = text.replace("\tType: DDR5", "\tType: <OUT OF SPEC>", 1)
    text = text.replace("Speed: 4800 MT/s", "Speed: Unknown", 1)
    first = parse("dmidecode", text)["modules"][0]
    assert (first["type"], first["speed_mts"], first["size_mib"]) == (None, None, 64 * GIB_MIB)


@pytest.mark.parametrize(("name", "needle"), [
    ("h200-dmidecode-t-memory.txt", "dmidecode: command not found"),
    ("debian-vm-dmidecode-t-memory.txt", "/dev/mem: No such file or directory"),
])
def test_dmidecode_without_tables_fails_with_the_tools_line(name: str, needle: str) -> None:
    with pytest.raises(ParseError, match=needle):
        parse("dmidecode", read(name))


# --- numactl / sysfs nodes -----------------------------------------------------------------

def test_numactl_esc8000a_two_nodes() -> None:
    data = parse("numactl", read("numactl-hardware-2s-epyc-genoa-esc8000a-2nodes.txt"))
    assert data["count"] == 2
    assert [(n["id"], n["cpus"], n["size_mib"], n["free_mib"]) for n in data["nodes"]] == [
        (0, list(range(0, 32)), 193129, 186031), (1, list(range(32, 64)), 193477, 186364)]
    assert data["distances"] == [[10, 32], [32, 10]] and data["distances_complete"] is True


def test_numactl_wrx90_one_node_nearly_full() -> None:
    data = parse("numactl", read("numactl-hardware-wrx90-tr-pro-7965wx-1node.txt"))
    assert data["count"] == 1 and len(data["nodes"][0]["cpus"]) == 24 and data["nodes"][0]["cpus"][-1] == 23
    assert (data["nodes"][0]["size_mib"], data["nodes"][0]["free_mib"]) == (128295, 1724)
    assert data["distances"] == [[10]] and data["distances_complete"] is True


@pytest.mark.parametrize(("kind", "name"), [("numactl", "h200-numactl-hardware.txt"),
                                            ("sysfs-node", "h200-sysfs-node.txt")])
def test_h200_node_from_numactl_and_sysfs_agree(kind: str, name: str) -> None:
    data = parse(kind, read(name))
    assert data["count"] == 1
    assert data["nodes"] == [{"id": 0, "cpus": list(range(16)), "size_mib": 4443, "free_mib": 3181}]
    assert data["distances"] == [[10]] and data["distances_complete"] is True


def test_numactl_debian_vm() -> None:
    data = parse("numactl", read("debian-vm-numactl-hardware.txt"))
    assert data["nodes"] == [{"id": 0, "cpus": [0, 1], "size_mib": 7898, "free_mib": 4295}]


def test_numactl_truncated_distance_matrix() -> None:
    # The real 2-node capture cut off after the first matrix row (a paste or a cut pipe).
    text = read("numactl-hardware-2s-epyc-genoa-esc8000a-2nodes.txt").rstrip("\n")
    cut = text[: text.rindex("\n")]
    data = parse("numactl", cut)
    assert data["distances"] == [[10, 32]] and data["distances_complete"] is False
    header_only = text[: text.index("  0:")]
    assert parse("numactl", header_only)["distances"] is None
    no_matrix = text[: text.index("node distances")]
    assert parse("numactl", no_matrix)["distances_complete"] is False


def test_numactl_memoryless_and_cpuless_nodes() -> None:
    # The real 2-node capture with node 1 printed as a memoryless node and a CPU-less node 2 added,
    # as numactl shows them (e.g. CXL memory expanders: memory, no CPUs).
    text = read("numactl-hardware-2s-epyc-genoa-esc8000a-2nodes.txt")
    text = text.replace("available: 2 nodes (0-1)", "available: 3 nodes (0-2)")
    text = text.replace("node 1 size: 193477 MB\nnode 1 free: 186364 MB",
                        "node 1 size: 0 MB\nnode 1 free: 0 MB\n"
                        "node 2 cpus:\nnode 2 size: 65536 MB\nnode 2 free: 65000 MB")
    data = parse("numactl", text)
    assert [(n["id"], len(n["cpus"]), n["size_mib"]) for n in data["nodes"]] == [(0, 32, 193129), (1, 32, 0),
                                                                                 (2, 0, 65536)]
    assert data["count"] == 3 and data["distances_complete"] is False  # the matrix still has 2 rows


# --- nvidia-smi ----------------------------------------------------------------------------

def test_nvidia_smi_csv_h200_212_columns() -> None:
    (gpu,) = parse("nvidia-smi-csv", read("nvidia-smi-query-gpu-csv-h200-212cols-idle.txt"))["gpus"]
    assert (gpu["name"], gpu["bus_id"], gpu["pci_address"]) == ("NVIDIA H200", "00000000:83:00.0",
                                                                 "0000:83:00.0")
    assert pcie(gpu) == (5, 5, 16, 16)
    assert memory(gpu) == (143771, 0, 143158)
    assert gpu["index"] == 0 and gpu["driver_version"] == "590.48.01"


def test_nvidia_smi_csv_rtx4080super_idle_gen1() -> None:
    (gpu,) = parse("nvidia-smi-csv", read("nvidia-smi-query-gpu-csv-rtx4080super-idle-gen1-of-4.txt"))["gpus"]
    assert (gpu["name"], gpu["bus_id"]) == ("NVIDIA GeForce RTX 4080 SUPER", "00000000:01:00.0")
    assert pcie(gpu) == (4, 1, 16, 16)
    assert memory(gpu) == (16376, 596, 15348)


def test_nvidia_smi_csv_h200_vm() -> None:
    (gpu,) = parse("nvidia-smi-csv", read("h200-nvidia-smi-query-gpu-csv.txt"))["gpus"]
    assert gpu == {
        "index": 0, "name": "NVIDIA H200", "uuid": "GPU-9b26f152-d3b2-bb66-7015-e67aeeeb525b",
        "bus_id": "00000000:00:06.0", "driver_version": "580.159.04", "memory_total_mib": 143771,
        "memory_used_mib": 0, "memory_free_mib": 143156, "pcie_gen_current": 5, "pcie_gen_max": 5,
        "pcie_width_current": 16, "pcie_width_max": 16, "pci_address": "0000:00:06.0"}


def test_nvidia_smi_csv_without_header_is_refused() -> None:
    with pytest.raises(ParseError, match="not an nvidia-smi CSV header"):
        parse("nvidia-smi-csv", read("h200-nvidia-smi-query-gpu-csv-noheader.txt"))


def _q(name: str) -> dict:
    return parse("nvidia-smi-q", read(name))


def test_nvidia_smi_q_two_4060ti_one_at_x4() -> None:
    data = _q("nvidia-smi-q-2x-rtx4060ti-one-gpu-width-x4-of-x8.txt")
    assert data["driver_version"] == "550.54.14"
    first, second = data["gpus"]
    assert [g["name"] for g in data["gpus"]] == ["NVIDIA GeForce RTX 4060 Ti"] * 2
    assert (first["bus_id"], second["bus_id"]) == ("00000000:03:00.0", "00000000:09:00.0")
    assert pcie(first) == (4, 4, 8, 4)
    assert pcie(second) == (4, 4, 8, 8)
    for gpu in data["gpus"]:
        assert memory(gpu) == (16380, 0, 16075)


def test_nvidia_smi_q_eight_h100() -> None:
    data = _q("nvidia-smi-q-8x-h100-sxm-gen5-x16.txt")
    assert data["driver_version"] == "565.57.01"
    buses = [g["bus_id"] for g in data["gpus"]]
    assert buses == [f"00000000:{bus}:00.0" for bus in ("18", "2A", "3A", "5D", "9A", "AB", "BA", "DB")]
    assert [g["index"] for g in data["gpus"]] == list(range(8))
    for gpu in data["gpus"]:
        assert gpu["name"] == "NVIDIA H100 80GB HBM3"
        assert pcie(gpu) == (5, 5, 16, 16)
        assert memory(gpu) == (81559, 1, 81106)  # FB memory, not BAR1 (131072) or Conf Compute (0)


def test_nvidia_smi_q_rtx5090_gen1_x8() -> None:
    data = _q("nvidia-smi-q-rtx5090-gen5-idle-gen1-width-x8.txt")
    (gpu,) = data["gpus"]
    assert data["driver_version"] == "570.124.06"
    assert (gpu["name"], gpu["bus_id"]) == ("NVIDIA GeForce RTX 5090", "00000000:02:00.0")
    assert pcie(gpu) == (5, 1, 16, 8)
    assert memory(gpu) == (32607, 2, 32119)


def test_nvidia_smi_q_h200_vm() -> None:
    data = _q("h200-nvidia-smi-q.txt")
    (gpu,) = data["gpus"]
    assert (data["driver_version"], data["cuda_version"]) == ("580.159.04", "13.0")
    assert (gpu["name"], gpu["bus_id"]) == ("NVIDIA H200", "00000000:00:06.0")
    assert memory(gpu) == (143771, 0, 143156)
    assert pcie(gpu) == (5, 5, 16, 16)


def test_csv_and_q_agree_on_the_h200() -> None:
    from_csv = parse("nvidia-smi-csv", read("h200-nvidia-smi-query-gpu-csv.txt"))["gpus"][0]
    from_q = _q("h200-nvidia-smi-q.txt")["gpus"][0]
    assert from_csv == from_q


# --- lsblk ---------------------------------------------------------------------------------

def test_lsblk_tree_esc8000a_17_nvme() -> None:
    data = parse("lsblk", read("lsblk-esc8000a-17-nvme-mdraid0.txt"))
    nvme = [d for d in data["disks"] if d["name"].startswith("nvme")]
    assert len(nvme) == 17
    members = [d for d in nvme if d["name"] != "nvme16n1"]
    assert sorted(d["name"] for d in members) == sorted(f"nvme{i}n1" for i in range(16))
    assert {d["size_bytes"] for d in members} == {round(931.5 * G)}
    arrays = {d["name"]: (d["children"][0]["name"], d["children"][0]["type"], d["children"][0]["mountpoints"])
              for d in members}
    assert sum(1 for child in arrays.values() if child == ("md0", "raid0", ["/mnt/nvme-raid-0"])) == 8
    assert sum(1 for child in arrays.values() if child == ("md1", "raid0", ["/mnt/nvme-raid-1"])) == 8
    assert {d["children"][0]["size_bytes"] for d in members} == {round(7.3 * 2**40)}
    boot = next(d for d in nvme if d["name"] == "nvme16n1")
    assert boot["size_bytes"] == round(476.9 * G)
    assert [(p["name"], p["size_bytes"], p["mountpoints"]) for p in boot["children"]] == [
        ("nvme16n1p1", G, ["/boot/efi"]), ("nvme16n1p2", round(475.9 * G), ["/"])]
    sda = next(d for d in data["disks"] if d["name"] == "sda")
    assert sda["size_bytes"] == 0
    assert [(o["name"], o["type"], o["size_bytes"]) for o in data["others"]] == [("sr0", "rom", 1024 * 2**20)]
    assert all(d["model"] is None and d["serial"] is None and d["size_exact"] is False for d in data["disks"])


def test_lsblk_tree_wrx90_lvm_under_partition() -> None:
    data = parse("lsblk", read("lsblk-wrx90-tr-pro-9-nvme-raid0-lvm.txt"))
    names = [d["name"] for d in data["disks"]]
    assert names == ["nvme0n1", "nvme3n1", "nvme6n1", "nvme7n1", "nvme4n1", "nvme2n1", "nvme5n1", "nvme1n1",
                     "nvme8n1"]  # out of numeric order, as printed
    for disk in data["disks"]:
        if disk["name"] != "nvme6n1":
            assert disk["size_bytes"] == round(931.5 * G)
            children = [(c["name"], c["mountpoints"]) for c in disk["children"]]
            assert children == [("md127", ["/mnt/nvme-raid"])]
    boot = data["disks"][2]
    assert boot["size_bytes"] == round(1.9 * 2**40)
    assert [(p["name"], p["mountpoints"]) for p in boot["children"]] == [
        ("nvme6n1p1", ["/boot/efi"]), ("nvme6n1p2", ["/boot"]), ("nvme6n1p3", [])]
    (lv,) = boot["children"][2]["children"]
    assert (lv["name"], lv["type"], lv["mountpoints"]) == ("ubuntu--vg-ubuntu--lv", "lvm", ["/"])


def test_lsblk_json_h200() -> None:
    data = parse("lsblk", read("h200-lsblk-json.txt"))
    assert [(d["name"], d["size_bytes"], d["mountpoints"], d["children"]) for d in data["disks"]] == [
        ("zram0", 0, [], []), ("vda", 274877906944, ["/"], []), ("vdb", 318332928, ["/usr/local/nvidia"], [])]
    assert all(d["model"] is None and d["serial"] is None and d["size_exact"] for d in data["disks"])
    assert data["others"] == []


# --- cpu / driver --------------------------------------------------------------------------

H200_AVX512 = ["avx512_bf16", "avx512_bitalg", "avx512_fp16", "avx512_vbmi2", "avx512_vnni",
               "avx512_vpopcntdq", "avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512ifma", "avx512vbmi",
               "avx512vl"]


@pytest.mark.parametrize(("kind", "name"), [("lscpu", "h200-lscpu-json.txt"),
                                            ("cpuinfo", "h200-proc-cpuinfo.txt")])
def test_cpu_h200_from_lscpu_and_cpuinfo(kind: str, name: str) -> None:
    cpu = parse(kind, read(name))
    assert (cpu["model"], cpu["vendor"], cpu["family"], cpu["model_id"]) == (
        "Intel(R) Xeon(R) Processor", "GenuineIntel", 6, 207)
    assert (cpu["sockets"], cpu["cores"], cpu["threads"], cpu["threads_per_core"]) == (1, 16, 16, 1)
    assert cpu["avx512"] is True and cpu["avx512_flags"] == H200_AVX512
    assert cpu["amx_flags"] == ["amx_bf16", "amx_int8", "amx_tile"]


def test_nvidia_driver_version_h200() -> None:
    assert parse("nvidia-version", read("h200-proc-driver-nvidia-version.txt")) == {
        "version": "580.159.04", "kernel_module": "NVIDIA UNIX Open Kernel Module for x86_64",
        "open_kernel_module": True}


# --- wrong input ---------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "name"), [
    ("lspci", "numactl-hardware-wrx90-tr-pro-7965wx-1node.txt"),
    ("dmidecode", "lsblk-wrx90-tr-pro-9-nvme-raid0-lvm.txt"),
    ("numactl", "h200-lscpu-json.txt"),
    ("nvidia-smi-csv", "nvidia-smi-q-rtx5090-gen5-idle-gen1-width-x8.txt"),
    ("nvidia-smi-q", "h200-nvidia-smi-query-gpu-csv.txt"),
    ("lsblk", "dmidecode-t17-epyc-9454p-genoa-12slot-9x64gb-3empty.txt"),
    ("lscpu", "h200-proc-cpuinfo.txt"),
])
def test_output_of_another_tool_is_refused_in_one_line(kind: str, name: str) -> None:
    with pytest.raises(ParseError) as error:
        parse(kind, read(name))
    assert "\n" not in str(error.value) and str(error.value).startswith(kind)


def test_pci_address_normalisation() -> None:
    assert pci_address("c1:00.0") == "0000:c1:00.0"
    assert pci_address("00000000:2A:00.0") == "0000:2a:00.0"
    assert pci_address("10000:e1:00.0") == "10000:e1:00.0"
