"""Pure decisions of deploys/host/storage/ on real captured probe outputs (captures/*.txt)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploys.host.storage import DEFAULTS, StorageRefusal
from deploys.host.storage.identity import find_disk, wanted_disk
from deploys.host.storage.plan import plan_storage
from facts.storage import fstab_entries, parse_layout

CAPTURES = Path(__file__).with_name("captures")
LOOP = {"name": "loop0", "path": "/dev/loop0", "type": "loop", "model": None, "serial": None,
        "size_bytes": 2**30}
NVME = {
    "name": "nvme0n1",
    "path": "/dev/nvme0n1",
    "type": "disk",
    "model": "CT4000T705SSD3",
    "serial": "S7DATA",
    "size_bytes": 4000787030016,
}
WIN = {
    "name": "nvme1n1",
    "path": "/dev/nvme1n1",
    "type": "disk",
    "model": "WD_BLACK SN8100 4000GB",
    "serial": "S7WIN",
    "size_bytes": 2000398934016,
}


def layout(name: str, device: str = "loop0") -> dict:
    """The capture's layout, its loop0 renamed to ``device`` (the plan checks the probe's device)."""
    lines = CAPTURES.joinpath(f"{name}.txt").read_text().replace("loop0", device).splitlines()
    return parse_layout([line for line in lines if not line.startswith("# ")])


def cfg(**over) -> dict:
    return {
        **DEFAULTS,
        "mountpoint": "/tmp/omni/cap/nvme",
        "min_size_gib": 0.5,
        "fstab": "/etc/fstab",
        **over,
    }


def test_parse_layout_reads_table_signatures_partitions_mounts():
    fresh = layout("os-disk-fresh")
    assert fresh["table"]["label"] == "gpt" and len(fresh["table"]["partitions"]) == 2
    assert {s["type"] for s in fresh["signatures"]} == {"gpt", "PMBR"}
    assert fresh["partitions"]["/dev/loop0p2"]["blkid"]["TYPE"] == "ext4"
    blank = layout("blank")
    assert blank["table"] is None and "does not contain a recognized partition table" in blank["table_error"]
    assert blank["signatures"] == []
    assert any(m[1] == "/proc" for m in blank["mounts"])


def test_blank_disk_whole_disk_plan():
    plan = plan_storage(LOOP, layout("blank"), [], cfg(layout="whole-disk"))
    names = [name for name, _ in plan.commands + plan.mount_commands]
    assert names == [
        "Create a GPT with the omni-data partition on /dev/loop0",
        "Make the XFS filesystem on /dev/loop0p1",
        "Mount /tmp/omni/cap/nvme",
    ]
    partition, mkfs = plan.commands[0][1], plan.commands[1][1]
    assert "sfdisk -q --no-reread --no-tell-kernel /dev/loop0 && partx -u /dev/loop0" in partition
    assert "wipefs -n -O TYPE --noheadings /dev/loop0" in partition  # re-checked blank on the host
    assert f"mkfs.xfs -q -L omni-data -m uuid={plan.fs_uuid} /dev/loop0p1" in mkfs and " -f" not in mkfs
    assert plan.fstab_line == f"UUID={plan.fs_uuid} /tmp/omni/cap/nvme xfs defaults,noatime 0 2"


def test_fs_uuid_is_stable_per_disk_identity():
    one = plan_storage(LOOP, layout("blank"), [], cfg(layout="whole-disk")).fs_uuid
    assert one == plan_storage(LOOP, layout("blank"), [], cfg(layout="whole-disk")).fs_uuid
    assert (
        one
        != plan_storage({**LOOP, "path": "/dev/loop1"}, layout("blank", "loop1"), [],
                        cfg(layout="whole-disk")).fs_uuid
    )


def test_converged_disks_plan_nothing():
    for name, kind in (("whole-disk-converged", "whole-disk"), ("os-disk-converged", "append")):
        plan = plan_storage(LOOP, layout(name), [], cfg(layout=kind))
        assert plan.commands == [] and plan.mount_commands == [], name


def test_os_disk_gets_a_partition_in_the_largest_free_region():
    plan = plan_storage(LOOP, layout("os-disk-fresh"), [], cfg())
    name, command = plan.commands[0]
    assert name == "Add the omni-data partition in free space of /dev/loop0"
    assert 'start=657408, size=1439711, type=linux, name="omni-data"' in command and "--append" in command
    assert plan.partition == "/dev/loop0p3"


@pytest.mark.parametrize(
    ("capture", "kind", "found"),
    [
        ("ext4-whole-disk", "whole-disk", "holds ext4 (UUID"),
        ("ext4-whole-disk", "append", "holds ext4 (UUID"),
        (
            "os-disk-fresh",
            "whole-disk",
            "gpt partition table with 2 partition(s): /dev/loop0p1 'EFI System Partition'",
        ),
        ("blank", "append", "has no partition table"),
    ],
)
def test_foreign_content_is_refused_naming_what_was_found(capture, kind, found):
    with pytest.raises(StorageRefusal) as refusal:
        plan_storage(LOOP, layout(capture), [], cfg(layout=kind))
    assert found in str(refusal.value) and "\n" not in str(refusal.value)


def test_our_partition_with_foreign_filesystem_is_refused():
    data = layout("os-disk-converged")
    data["partitions"]["/dev/loop0p3"]["blkid"].update(TYPE="ext4", LABEL="backup")
    data["partitions"]["/dev/loop0p3"]["signatures"] = [{"type": "ext4", "uuid": "1234"}]
    with pytest.raises(
        StorageRefusal, match=r"loop0p3 holds ext4 \(UUID 1234\) \(label 'backup'\), which we did"
    ):
        plan_storage(LOOP, data, [], cfg())


def test_too_little_free_space_and_fstab_conflicts_are_refused():
    with pytest.raises(StorageRefusal, match=r"no free region of 300 GiB .*largest 0\.7 GiB"):
        plan_storage(LOOP, layout("os-disk-fresh"), [], cfg(min_size_gib=300))
    with pytest.raises(StorageRefusal, match="already mounts /dev/sdz1 at /tmp/omni/cap/nvme"):
        plan_storage(LOOP, layout("os-disk-fresh"), ["/dev/sdz1 /tmp/omni/cap/nvme ext4 defaults 0 2"], cfg())
    commented = ["# /dev/sdz1 /tmp/omni/cap/nvme ext4 defaults 0 2", "", "   "]
    assert fstab_entries(commented) == []  # a commented-out mount is no conflict
    assert plan_storage(LOOP, layout("os-disk-fresh"), commented, cfg()).commands


def test_a_missing_sfdisk_is_told_apart_from_a_blank_disk():
    # real: Ubuntu 24.04.3 without the fdisk package (the H100 device machine)
    missing = layout("ubuntu2404-blank-no-sfdisk")
    assert missing["table"] is None and missing["sfdisk_missing"]
    assert not layout("blank")["sfdisk_missing"]


def test_util_linux_2_39_prints_an_empty_signature_list_for_a_blank_disk():
    """The storage parser refuses empty wipefs output (fail closed); Ubuntu 24.04's util-linux
    2.39.3 prints ``{"signatures": []}`` for a blank disk, as Debian 12's 2.38 does, so a blank
    data disk is read as blank, not refused."""
    ubuntu = layout("ubuntu2404-blank-no-sfdisk")
    assert ubuntu["signatures"] == [] == layout("blank")["signatures"]
    assert not [p for p in ubuntu["problems"] if "wipefs" in p]


def inventory(*devices) -> dict:
    """The ``facts.hardware.BlockDevices`` fact holding these devices."""
    return {"available": True, "source": "lsblk", "reason": None,
            "disks": [d for d in devices if d["type"] == "disk"],
            "others": [d for d in devices if d["type"] != "disk"]}


def test_no_lsblk_is_a_refusal_naming_the_fix():
    missing = {"available": False, "source": None, "reason": "lsblk not installed", "disks": None,
               "others": None}
    with pytest.raises(StorageRefusal, match=r"block devices \(lsblk not installed\): install util-linux"):
        find_disk(missing, {"role": "ubuntu", "serial": "S7DATA"}, [], cfg())


def test_disk_is_found_by_serial_and_model_never_by_name():
    want = {"role": "ubuntu", "model": "CT4000T705SSD3", "serial": "S7DATA"}
    others = [{"role": "windows", "model": "WD_BLACK SN8100 4000GB", "serial": "S7WIN"}]
    renamed = {**NVME, "name": "nvme1n1", "path": "/dev/nvme1n1"}
    assert (
        find_disk(inventory({**WIN, "path": "/dev/nvme0n1"}, renamed), want, others, cfg())["path"]
        == "/dev/nvme1n1"
    )
    with pytest.raises(StorageRefusal, match="is model 'WD_BLACK SN8100 4000GB', inventory says"):
        find_disk(inventory({**WIN, "serial": "S7DATA"}), want, [], cfg())
    with pytest.raises(StorageRefusal, match=r"0 disks have serial S7DATA .*found: /dev/nvme1n1"):
        find_disk(inventory(WIN), want, others, cfg())
    with pytest.raises(StorageRefusal, match="also the 'windows' disk"):
        find_disk(inventory(NVME), want, [{"role": "windows", "serial": "S7DATA"}], cfg())


def test_missing_serial_is_refused_and_the_loop_escape_takes_only_loops():
    want = {"role": "ubuntu", "model": "CT4000T705SSD3", "serial": None}
    with pytest.raises(StorageRefusal, match=r"set OMNI_DISK_UBUNTU_SERIAL .*S7DATA"):
        find_disk(inventory(NVME, WIN), want, [], cfg())
    loopy = {**want, "path": "/dev/nvme0n1"}
    with pytest.raises(StorageRefusal, match="only a loop device"):
        find_disk(inventory(NVME), loopy, [], cfg(allow_unidentified_disk=True))
    with pytest.raises(StorageRefusal, match="set OMNI_DISK_UBUNTU_SERIAL"):
        find_disk(inventory(LOOP), {**want, "path": "/dev/loop0"}, [], cfg())  # flag not set
    assert (
        find_disk(inventory(LOOP), {**want, "path": "/dev/loop0"}, [], cfg(allow_unidentified_disk=True))
        == LOOP
    )


def test_windows_role_and_bad_layout_are_refused():
    data = {"disks": [{"role": "windows", "serial": "S7WIN"}]}
    with pytest.raises(StorageRefusal, match="Windows disk is never touched"):
        wanted_disk(data, cfg(disk_role="windows"))
    with pytest.raises(StorageRefusal, match="layout 'raid0' is unknown"):
        wanted_disk(data, cfg(layout="raid0"))


def test_the_reference_box_disks_are_the_runbooks_and_serials_come_from_the_environment():
    """Runbook: NVMe 0 = Crucial CT4000T705SSD3 (Ubuntu + /nvme XFS), NVMe 1 = WD_BLACK SN8100 (Windows)."""
    from omni.hostdata import host_data

    crucial = {**NVME, "model": "CT4000T705SSD3", "serial": "2413E8A1B2C3"}
    wd = {**WIN, "model": "WD_BLACK SN8100 4000GB", "serial": "25123A800001", "size_bytes": 4000787030016}
    data = host_data({"OMNI_DISK_UBUNTU_SERIAL": "2413E8A1B2C3", "OMNI_DISK_WINDOWS_SERIAL": "25123A800001"})
    want, others = wanted_disk(data, cfg())
    assert want == {"role": "ubuntu", "model": "CT4000T705SSD3", "serial": "2413E8A1B2C3"}
    assert find_disk(inventory(wd, crucial), want, others, cfg()) == crucial
    # the guard stays: the Windows disk's serial in the Ubuntu role is refused by model
    swapped = host_data({"OMNI_DISK_UBUNTU_SERIAL": "25123A800001"})
    with pytest.raises(StorageRefusal, match="is model 'WD_BLACK SN8100 4000GB', inventory says 'CT4000T"):
        find_disk(inventory(wd, crucial), *wanted_disk(swapped, cfg()), cfg())
    with pytest.raises(StorageRefusal, match="set OMNI_DISK_UBUNTU_SERIAL"):
        find_disk(inventory(wd, crucial), *wanted_disk(host_data({}), cfg()), cfg())
