"""A real apply of the storage step on a loop device: partition, mkfs.xfs, fstab, mount, rerun.

The fstab and mount point are test-local (``storage.fstab``/``storage.mountpoint``), so the real
/etc/fstab is never edited; loops are detached and mounts undone in teardown.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from deploys.core.pyinfra_run import plan
from tests.sysdeps import ensure_binary

DEPLOY = Path(__file__).with_name("storage_deploy.py")
MIB = 2**20


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True)


@pytest.fixture(scope="module", autouse=True)
def tools():
    for binary, package in (
        ("mkfs.xfs", "xfsprogs"),
        ("sfdisk", "fdisk"),
        ("mkfs.ext4", "e2fsprogs"),
        ("wipefs", "util-linux"),
        ("partx", "util-linux"),
    ):
        ensure_binary(binary, package)


@pytest.fixture
def loops(tmp_path):
    """Make sparse-file loop devices on demand; detach them and unmount everything after."""
    made: list[str] = []
    mounts: list[Path] = []

    def make(size_mib: int) -> str:
        image = tmp_path / f"disk{len(made)}.img"
        with image.open("wb") as f:
            f.truncate(size_mib * MIB)
        made.append(sh("losetup", "-f", "--show", "-P", str(image)).stdout.strip())
        return made[-1]

    make.mounts = mounts  # type: ignore[attr-defined]
    yield make
    for mount in [*mounts, tmp_path / "nvme"]:
        sh("umount", str(mount), check=False)
    for dev in made:
        sh("losetup", "-d", dev, check=False)


def host_data(tmp_path: Path, loop: str, layout: str) -> dict:
    return {
        "disks": [
            {"role": "data", "model": None, "serial": None, "path": loop},
            {"role": "windows", "model": "WD_BLACK SN8100 4000GB", "serial": "S-WINDOWS"},
        ],
        "storage": {
            "disk_role": "data",
            "layout": layout,
            "allow_unidentified_disk": True,
            "fstab": str(tmp_path / "fstab"),
            "mountpoint": str(tmp_path / "nvme"),
            "min_size_gib": 0.5,
            "folders": ["models", "memgraph"],
        },
    }


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_whole_disk_partition_mkfs_fstab_mount_then_no_change(tmp_path, loops):
    loop = loops(1024)
    (tmp_path / "fstab").write_text("# test fstab\n")
    data = host_data(tmp_path, loop, "whole-disk")
    first = plan(DEPLOY, [("@local", data)], execute=True)
    assert first.error is None
    assert all(o.success for o in first.ops), [(o.name, o.success) for o in first.ops]
    assert first.changed_ops()[:4] == [
        f"Create a GPT with the omni-data partition on {loop}",
        f"Make the XFS filesystem on {loop}p1",
        f"Mount {tmp_path}/nvme by UUID in {tmp_path}/fstab",
        f"Mount {tmp_path}/nvme",
    ]
    probe = dict(line.split("=", 1) for line in sh("blkid", "-p", "-o", "export", f"{loop}p1").stdout.split())
    assert (probe["TYPE"], probe["LABEL"], probe["PART_ENTRY_NAME"]) == ("xfs", "omni-data", "omni-data")
    fstab = (tmp_path / "fstab").read_text().splitlines()
    assert fstab == ["# test fstab", f"UUID={probe['UUID']} {tmp_path}/nvme xfs defaults,noatime 0 2"]
    mount = next(
        line.split()
        for line in Path("/proc/self/mounts").read_text().splitlines()
        if line.split()[1] == f"{tmp_path}/nvme"
    )
    assert mount[0] == f"{loop}p1" and mount[2] == "xfs" and "noatime" in mount[3].split(",")
    assert (tmp_path / "nvme" / "models").is_dir() and (tmp_path / "nvme" / "memgraph").is_dir()
    (tmp_path / "nvme" / "models" / "keep.bin").write_bytes(b"model bytes")

    second = plan(DEPLOY, [("@local", data)], execute=True)
    assert second.error is None and all(o.success for o in second.ops)
    assert second.changed_ops() == []
    assert (tmp_path / "nvme" / "models" / "keep.bin").read_bytes() == b"model bytes"


def test_existing_ext4_is_refused_and_left_intact(tmp_path, loops):
    loop = loops(64)
    sh("mkfs.ext4", "-q", "-L", "precious", loop)
    mnt = tmp_path / "ext4"
    mnt.mkdir()
    sh("mount", loop, str(mnt))
    (mnt / "data.txt").write_text("someone's data\n" * 1000)
    file_sum = sha256(mnt / "data.txt")
    sh("umount", str(mnt))
    image = tmp_path / "disk0.img"
    before = sha256(image)
    for layout in ("whole-disk", "append"):
        result = plan(DEPLOY, [("@local", host_data(tmp_path, loop, layout))], execute=True)
        assert result.ops == []
        assert "holds ext4" in result.error and "refusing" in result.error, result.error
        assert "\n" not in result.error
    assert sha256(image) == before
    sh("mount", "-o", "ro", loop, str(mnt))
    loops.mounts.append(mnt)
    assert sha256(mnt / "data.txt") == file_sum
    assert not (tmp_path / "fstab").exists()


def test_append_beside_an_existing_partition_keeps_it(tmp_path, loops):
    loop = loops(1024)
    sh(
        "sh",
        "-c",
        f"printf 'label: gpt\\nstart=2048, size=100MiB, type=linux, name=\"installer\"\\n' | "
        f"sfdisk -q --no-reread --no-tell-kernel {loop} && partx -u {loop}",
    )
    sh("mkfs.ext4", "-q", f"{loop}p1")
    mnt = tmp_path / "root"
    mnt.mkdir()
    sh("mount", f"{loop}p1", str(mnt))
    loops.mounts.append(mnt)
    (mnt / "etc.txt").write_text("installed system\n")
    (tmp_path / "fstab").write_text("")
    data = host_data(tmp_path, loop, "append")
    first = plan(DEPLOY, [("@local", data)], execute=True)
    assert first.error is None and all(o.success for o in first.ops), first
    assert first.changed_ops()[:2] == [
        f"Add the omni-data partition in free space of {loop}",
        f"Make the XFS filesystem on {loop}p2",
    ]
    assert (mnt / "etc.txt").read_text() == "installed system\n"
    assert plan(DEPLOY, [("@local", data)], execute=True).changed_ops() == []
