"""Issue 19, class 12: the data-disk guard refuses a disk the kernel says is in use even where
sfdisk and wipefs see a blank disk: partitions the kernel knows without a table, a mounted
filesystem inside one, holders (LVM, md, dm-crypt) and swap. Real loop devices and a real
pyinfra apply where root allows; holders (no device-mapper in this container) through the probe's
own parser on the lines its command prints."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from deploys.core.pyinfra_run import plan
from deploys.host.storage import StorageRefusal, storage_settings
from deploys.host.storage.guard import host_blank_guard
from deploys.host.storage.plan import plan_storage
from facts.storage import parse_layout
from tests.sysdeps import ensure_binary

DEPLOY = Path(__file__).parents[1] / "deploys" / "storage" / "storage_deploy.py"
MIB = 2**20

pytestmark = pytest.mark.slow


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True)


@pytest.fixture
def loop(tmp_path: Path):
    for binary, package in (("sfdisk", "fdisk"), ("wipefs", "util-linux"), ("mkfs.ext4", "e2fsprogs"),
                            ("addpart", "util-linux")):
        ensure_binary(binary, package)
    image = tmp_path / "disk.img"
    with image.open("wb") as f:
        f.truncate(256 * MIB)
    proc = sh("losetup", "-f", "--show", "-P", str(image), check=False)
    if proc.returncode != 0:
        pytest.skip(f"no loop devices here: {proc.stderr.strip()}")
    device = proc.stdout.strip()
    yield device
    sh("umount", str(tmp_path / "mnt"), check=False)
    sh("delpart", device, "1", check=False)
    sh("losetup", "-d", device, check=False)


def data(tmp_path: Path, loop: str, layout: str = "whole-disk") -> dict:
    return {
        "disks": [{"role": "data", "model": None, "serial": None, "path": loop}],
        "storage": {"disk_role": "data", "layout": layout, "allow_unidentified_disk": True,
                    "fstab": str(tmp_path / "fstab"), "mountpoint": str(tmp_path / "nvme"),
                    "min_size_gib": 0.1, "folders": []},
    }


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_kernel_partition_without_a_table_is_not_blank(tmp_path: Path, loop: str):
    sh("addpart", loop, "1", "2048", str(64 * MIB // 512))  # the kernel knows loopNp1; no table says so
    assert sh("wipefs", "-n", "-O", "TYPE", "--noheadings", loop).stdout.strip() == ""  # "blank" to wipefs
    before = digest(tmp_path / "disk.img")
    result = plan(DEPLOY, [("@local", data(tmp_path, loop))], execute=True)
    assert result.ops == [] and "the kernel knows partitions" in result.error and "\n" not in result.error
    assert digest(tmp_path / "disk.img") == before


def test_mounted_filesystem_inside_a_kernel_partition_is_refused(tmp_path: Path, loop: str):
    sh("addpart", loop, "1", "2048", str(64 * MIB // 512))
    sh("mkfs.ext4", "-q", "-L", "inuse", f"{loop}p1")
    (tmp_path / "mnt").mkdir()
    sh("mount", f"{loop}p1", str(tmp_path / "mnt"))
    (tmp_path / "mnt" / "live.txt").write_text("in use\n")
    assert sh("wipefs", "-n", "-O", "TYPE", "--noheadings", loop).stdout.strip() == ""
    result = plan(DEPLOY, [("@local", data(tmp_path, loop))], execute=True)
    assert result.ops == [] and f"is mounted at {tmp_path / 'mnt'}" in result.error
    assert (tmp_path / "mnt" / "live.txt").read_text() == "in use\n"


BLANK = ["##sfdisk", "sfdisk: /dev/nvme1n1: does not contain a recognized partition table", "##rc 1",
         "##wipefs", '{"signatures": []}', "##rc 0", "##blkid", "##rc 2"]
SWAPS_HEAD = "Filename Type Size Used Priority"


def lsblk(children: str = "", mount: str = "null") -> list[str]:
    return ["##lsblk", '{"blockdevices": [{"name": "nvme1n1", "path": "/dev/nvme1n1", "type": "disk", '
            f'"fstype": null, "mountpoints": [{mount}]{children}}}]}}', "##rc 0"]


DISK = {"path": "/dev/nvme1n1", "size_bytes": 4 * 2**40, "serial": "S1", "model": "M"}


def probe(holders: tuple[str, ...] = (), swaps: tuple[str, ...] = ()) -> list[str]:
    """The whole DiskLayout output of a blank-looking disk, with these holders and swap lines."""
    return [*BLANK, *lsblk(), "##holders", *holders, "##rc 0", "##swaps", SWAPS_HEAD, *swaps, "##rc 0",
            "##mounts", "proc /proc proc rw,relatime 0 0", "##rc 0"]


@pytest.mark.parametrize("extra,needle", [
    ({"holders": ("/sys/class/block/nvme1n1/holders/dm-0",)}, "in use by dm-0"),
    ({"holders": ("/sys/class/block/nvme1n1/holders/md127",)}, "in use by md127"),
    ({"swaps": ("/dev/nvme1n1 partition 8388604 0 -2",)}, "/dev/nvme1n1 on /dev/nvme1n1 is active swap"),
])
def test_holders_and_swap_on_a_blank_looking_disk_are_refused(extra: dict, needle: str):
    layout = parse_layout(probe(**extra))
    assert layout["problems"] == []
    cfg = storage_settings({"storage": {"layout": "whole-disk"}})
    with pytest.raises(StorageRefusal, match="refusing") as info:
        plan_storage(DISK, layout, [], cfg)
    assert needle in str(info.value)
    assert plan_storage(DISK, parse_layout(probe()), [], cfg).commands  # the same disk without them is taken


@pytest.mark.parametrize("cut", ["##holders", "##swaps"])
def test_a_missing_holders_or_swaps_section_is_not_an_empty_one(cut: str):
    """Fail closed: without the kernel's view the disk is not known to be free, so it is refused."""
    lines = probe(holders=("/sys/class/block/nvme1n1/holders/dm-0",),
                  swaps=("/dev/nvme1n1 partition 1 0 -2",))
    start = lines.index(cut)
    layout = parse_layout([*lines[:start], *lines[lines.index("##rc 0", start) + 1:]])
    cfg = storage_settings({"storage": {"layout": "whole-disk"}})
    refusal = f"cannot trust the layout probe of /dev/nvme1n1: the probe printed no '{cut}' section"
    with pytest.raises(StorageRefusal, match=refusal):
        plan_storage(DISK, layout, [], cfg)


def test_the_on_host_recheck_refuses_what_is_not_blank(tmp_path: Path, loop: str):
    """The shell guard that runs right before sfdisk/mkfs (it once passed on any disk: ``-o`` is
    wipefs's offset, not its columns)."""
    def guard(path: str, whole: bool) -> int:
        return subprocess.run(["sh", "-c", host_blank_guard(path, whole) + "exit 0"],
                              capture_output=True).returncode

    assert guard(loop, True) == 0  # blank
    sh("addpart", loop, "1", "2048", str(64 * MIB // 512))
    assert guard(loop, True) == 1  # a kernel partition
    assert guard(f"{loop}p1", False) == 0
    sh("mkfs.ext4", "-q", f"{loop}p1")
    assert guard(f"{loop}p1", False) == 1  # a signature
    sh("delpart", loop, "1")
    sh("mkfs.ext4", "-q", loop)
    assert guard(loop, True) == 1
    assert guard("/dev/nonexistent-omni", False) == 1  # unreadable: refused, not "blank"
