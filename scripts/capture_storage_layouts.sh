#!/usr/bin/env bash
# Recapture tests/deploys/storage/captures/*.txt: the DiskLayout probe's real output on loop devices.
# Why: the storage parser refuses any output that is not what the probe prints (fail closed), so the
# captures must come from the current probe command; rerun this whenever DiskLayout.command changes.
# Needs root, util-linux, fdisk, e2fsprogs, xfsprogs and a free /dev/loop0 (the tests expect that name).
# Usage: sudo PYTHONPATH=$PWD scripts/capture_storage_layouts.sh [python]
set -euo pipefail
PY=${1:-python3}
OUT=tests/deploys/storage/captures
WORK=$(mktemp -d)
MNT=/tmp/omni/cap/nvme  # the mount point the plan tests configure
UUID=6567d7d5-6cf6-5ec1-b748-890722c5d277  # filesystem_uuid() of the tests' /dev/loop0 disk
ESP='start=2048, size=131072, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI System Partition"'
ROOT='start=133120, size=524288, type=linux'
probe=$("$PY" -c "from facts.storage import DiskLayout; print(DiskLayout().command('/dev/loop0'))")

cleanup() { umount "$MNT" 2>/dev/null || true; losetup -d /dev/loop0 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

capture() {  # NAME DESCRIPTION SETUP...: a fresh 1 GiB image on /dev/loop0, SETUP run, then the probe
    local name=$1 what=$2; shift 2
    truncate -s 1G "$WORK/$name.img"
    losetup -P /dev/loop0 "$WORK/$name.img"
    "$@"
    { echo "# source: DiskLayout().command('/dev/loop0') on $what" \
           "(scripts/capture_storage_layouts.sh, Debian 12 sandbox, $(date -u +%F))"
      sh -c "$probe"; } > "$OUT/$name.txt"
    umount "$MNT" 2>/dev/null || true
    losetup -d /dev/loop0
}

nothing() { :; }
ext4() { mkfs.ext4 -q -L precious /dev/loop0; }
os_disk() {
    printf 'label: gpt\n%s\n%s\n' "$ESP" "$ROOT" | sfdisk -q /dev/loop0; partx -u /dev/loop0
    mkfs.ext4 -q /dev/loop0p1; mkfs.ext4 -q -L root /dev/loop0p2
}
ours() {  # PARTITION: our XFS, mounted like the deploy leaves it
    mkfs.xfs -q -L omni-data -m uuid=$UUID "$1"
    mkdir -p "$MNT"; mount -o noatime "$1" "$MNT"
}
os_converged() {
    os_disk
    printf 'start=657408, size=1439711, type=linux, name="omni-data"\n' | sfdisk -q --append /dev/loop0; partx -u /dev/loop0
    ours /dev/loop0p3
}
whole_converged() {
    printf 'label: gpt\nstart=2048, type=linux, name="omni-data"\n' | sfdisk -q /dev/loop0; partx -u /dev/loop0
    ours /dev/loop0p1
}

capture blank "a blank 1 GiB sparse loop device" nothing
capture ext4-whole-disk "a loop device holding an ext4 filesystem (no partition table)" ext4
capture os-disk-fresh "a loop device laid out like an Ubuntu install (ESP + ext4 root) with free space" os_disk
capture os-disk-converged "the Ubuntu-like loop device after the append apply, mounted" os_converged
capture whole-disk-converged "a loop device after the whole-disk apply, mounted" whole_converged
