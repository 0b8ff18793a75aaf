"""Phase 3 planned against an ``@fake`` Ubuntu 24.04 host with scripted command outputs.

Fact outputs are real captures where we have them (os-release from the H200 machine, disk probes
from loop devices in tests/deploys/storage/captures, renamed to the NVMe disk) and the stock
Ubuntu 24.04 /etc/default/grub and fstab otherwise.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from deploys.core.pyinfra_run import plan
from deploys.host.nvidia_driver import wanted_packages

ROOT = Path(__file__).resolve().parents[3]
PHASE3 = ROOT / "deploys" / "phase3.py"
CAPTURES = ROOT / "tests" / "deploys" / "storage" / "captures"
OS_RELEASE = (ROOT / "tests/fixtures/hw/h200-os-release.txt").read_text().splitlines()[2:15]
GRUB_FRESH = [
    "GRUB_DEFAULT=0",
    "GRUB_TIMEOUT_STYLE=hidden",
    "GRUB_TIMEOUT=0",
    "GRUB_DISTRIBUTOR=`( . /etc/os-release; echo ${NAME:-Ubuntu} ) 2>/dev/null || echo Ubuntu`",
    'GRUB_CMDLINE_LINUX_DEFAULT="quiet splash"',
    'GRUB_CMDLINE_LINUX=""',
    "#GRUB_DISABLE_OS_PROBER=false",
]
MERGED = 'GRUB_CMDLINE_LINUX_DEFAULT="quiet splash iommu=pt pcie_aspm=off"'
FSTAB = [
    "# /etc/fstab: static file system information.",
    "/dev/disk/by-uuid/93b07283-4a8c-4c1d-a7cb-6fc0135541c9 / ext4 defaults 0 1",
]
DISKS = [
    {"role": "ubuntu", "model": "CT4000T705SSD3", "serial": "S7DATA"},
    {"role": "windows", "model": "WD_BLACK SN8100 4000GB", "serial": "S7WIN"},
]
LSBLK = {
    "blockdevices": [
        {
            "name": "nvme1n1",
            "path": "/dev/nvme1n1",
            "type": "disk",
            "model": "WD_BLACK SN8100 4000GB",
            "serial": "S7WIN",
            "size": 2000398934016,
        },
        {
            "name": "nvme0n1",
            "path": "/dev/nvme0n1",
            "type": "disk",
            "model": "CT4000T705SSD3",
            "serial": "S7DATA",
            "size": 1073741824,
        },
    ]
}


def disk_probe(capture: str) -> list[str]:
    text = (CAPTURES / f"{capture}.txt").read_text()
    text = text.replace("/dev/loop0p", "/dev/nvme0n1p").replace("/dev/loop0", "/dev/nvme0n1")
    text = text.replace('"loop0', '"nvme0n1').replace("/tmp/omni/cap/nvme", "/nvme")  # lsblk names too
    return [line for line in text.splitlines() if not line.startswith("# ")]


def dpkg(packages: list[str]) -> list[str]:
    head = [
        "Desired=Unknown/Install/Remove/Purge/Hold",
        "||/ Name Version Architecture Description",
        "+++-====-=======-============-===========",
        "ii  adduser                 3.137ubuntu1        all          add and remove users and groups",
    ]
    return head + [f"ii  {p:<24} 1.0-1ubuntu1        amd64        {p}" for p in packages]


def stat_dir(path: str) -> str:
    return f"user=root group=root mode=drwxr-xr-x atime=0 mtime=0 ctime=0 size=4096 '{path}'"


SB_ON = ["##omni:mokutil", "SecureBoot enabled"]
SB_OFF = ["##omni:mokutil", "SecureBoot disabled"]


def host(converged: bool, secure_boot: list[str] = SB_ON, **data) -> tuple[str, dict]:
    grub = (
        [*GRUB_FRESH[:4], MERGED, 'GRUB_CMDLINE_LINUX=""', "GRUB_DISABLE_OS_PROBER=false"]
        if converged
        else GRUB_FRESH
    )
    probe = disk_probe("os-disk-converged" if converged else "os-disk-fresh")
    ours = probe[probe.index("##part /dev/nvme0n1p3") :] if "##part /dev/nvme0n1p3" in probe else []
    uuid = next((line.split("=", 1)[1] for line in ours if line.startswith("UUID=")), None)
    responses: dict = {
        "-release": ["/etc/os-release", *OS_RELEASE, "---"],
        "mokutil --sb-state": secure_boot,
        "dpkg -l": dpkg(
            [
                "linux-generic-hwe-24.04",
                "linux-modules-nvidia-580-open-generic-hwe-24.04",
                "nvidia-driver-580-open",
                "numactl",
                "hwloc",
                "pciutils",
                "dmidecode",
                "nvme-cli",
                "os-prober",
                "xfsprogs",
                "fdisk",
                "mokutil",
            ]
            if converged
            else ["fdisk"]
        ),
        "cat /etc/default/grub": grub,
        re.compile(r"grep -E .*GRUB_CMDLINE_LINUX_DEFAULT=\.\*"): [grub[4]],
        re.compile(r"grep -E .*GRUB_CMDLINE_LINUX_DEFAULT=\"quiet"): [MERGED] if converged else [],
        re.compile(r"grep -E .*GRUB_DISABLE_OS_PROBER=\.\*"): [grub[-1]],
        re.compile(r"grep -E .*\^GRUB_DISABLE_OS_PROBER=false\$"): [grub[-1]] if converged else [],
        "lsblk -J -b -o NAME,PATH,TYPE,MODEL,SERIAL,SIZE": json.dumps(LSBLK).splitlines(),
        "sfdisk -J": probe,
        "cat /etc/fstab": FSTAB + ([f"UUID={uuid} /nvme xfs defaults,noatime 0 2"] if converged else []),
        re.compile(r"grep -E .*UUID="): [f"UUID={uuid} /nvme xfs defaults,noatime 0 2"] if converged else [],
    }
    if converged:
        responses[re.compile(r"systemctl show .*UnitFileState.*nvidia-persistenced")] = [
            "Id=nvidia-persistenced.service",
            "UnitFileState=enabled",
        ]
        marker = (
            json.dumps(
                {
                    "phase": 3,
                    "packages": wanted_packages({}, {"secure_boot": True}),
                    "grub": ["iommu=pt", "pcie_aspm=off"],
                    "storage": "/nvme",
                },
                indent=2,
            )
            + "\n"
        )
        responses[re.compile(r"sha1sum .*phase3\.json")] = [
            f"{hashlib.sha1(marker.encode()).hexdigest()}  /var/lib/omni/phase3.json"
        ]
        responses[re.compile(r"stat -c .*phase3\.json")] = [
            "user=root group=root mode=-rw-r--r-- atime=0 mtime=0 ctime=0 size=1 '/var/lib/omni/phase3.json'"
        ]
        for path in [
            "/var/lib/omni",
            "/nvme",
            *[
                f"/nvme/{f}"
                for f in ("models", "memgraph", "phoenix", "prometheus", "grafana", "eval", "letta")
            ],
        ]:
            responses[re.compile(rf"stat -c .* {re.escape(path)} ")] = [stat_dir(path)]
    return "@fake", {
        "disks": DISKS,
        "storage": {"min_size_gib": 0.5},
        "phase0_waived": "yes",
        "fake_responses": responses,
        **data,
    }


def test_fresh_ubuntu_plans_packages_grub_storage_and_marker():
    result = plan(PHASE3, [host(converged=False)])
    assert result.error is None, result.error
    assert result.changed_ops() == [
        "Update the apt package lists",
        "Install linux-generic-hwe-24.04, linux-modules-nvidia-580-open-generic-hwe-24.04, "
        "nvidia-driver-580-open, numactl, hwloc, pciutils, dmidecode, nvme-cli, os-prober, xfsprogs, fdisk, "
        "mokutil",
        "Enable nvidia-persistenced",
        "Set GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub",
        "Let update-grub run os-prober (Windows Boot Manager entry)",
        "Add the omni-data partition in free space of /dev/nvme0n1",
        "Make the XFS filesystem on /dev/nvme0n1p3",
        "Mount /nvme by UUID in /etc/fstab",
        "Mount /nvme",
        "Own /nvme",
        "Create /nvme/models",
        "Create /nvme/memgraph",
        "Create /nvme/phoenix",
        "Create /nvme/prometheus",
        "Create /nvme/grafana",
        "Create /nvme/eval",
        "Create /nvme/letta",
        "Create /var/lib/omni",
        "Record that phase 3 completed",
    ]
    assert [o.short for o in result.ops if o.conditional] == [
        "Regenerate grub.cfg",
        "Say that a reboot is needed",
    ]
    commands = result.commands()
    assert any(
        "apt-get -y" in c
        and "install linux-generic-hwe-24.04 linux-modules-nvidia-580-open-generic-hwe-24.04 "
        "nvidia-driver-580-open" in c
        for c in commands
    )
    # the driver is not loaded yet: persistenced is enabled for the next boot, not started
    enable = result.op("Enable nvidia-persistenced").commands
    assert enable == ["systemctl enable nvidia-persistenced.service"]
    assert result.op("Set GRUB_CMDLINE").commands[0].startswith("sed -E -i")
    assert "quiet splash iommu=pt pcie_aspm=off" in result.op("Set GRUB_CMDLINE").commands[0]
    assert (
        result.op("Add the omni-data")
        .commands[0]
        .endswith("| sfdisk -q --append --no-reread --no-tell-kernel /dev/nvme0n1 && partx -u /dev/nvme0n1")
    )
    mkfs = result.op("Make the XFS").commands[0]
    assert "mkfs.xfs -q -L omni-data -m uuid=" in mkfs and "/dev/nvme0n1p3" in mkfs and " -f " not in mkfs
    assert re.search(
        r"echo 'UUID=[0-9a-f-]{36} /nvme xfs defaults,noatime 0 2' >> /etc/fstab",
        result.op("by UUID").commands[0],
    )
    assert not any("nvme1n1" in c for c in commands), "the Windows disk appears in a command"
    assert not any("reboot" in c for c in commands)


def test_secure_boot_off_leaves_the_module_to_the_driver_package_and_unreadable_takes_the_signed():
    off = plan(PHASE3, [host(converged=False, secure_boot=SB_OFF)])
    install = next(o.short for o in off.ops if o.short.startswith("Install linux-generic"))
    assert "linux-modules-nvidia" not in install and "nvidia-driver-580-open" in install
    unknown = plan(PHASE3, [host(converged=False, secure_boot=["##omni:missing mokutil"])])
    install = next(o.short for o in unknown.ops if o.short.startswith("Install linux-generic"))
    assert "linux-modules-nvidia-580-open-generic-hwe-24.04" in install


def test_converged_host_changes_nothing():
    result = plan(PHASE3, [host(converged=True)])
    assert result.error is None, result.error
    assert len(result.ops) >= 15  # every operation was planned, none would change
    assert result.changed_ops() == []


def test_confirm_reboot_adds_a_guarded_reboot():
    result = plan(PHASE3, [host(converged=False, confirm_reboot="yes")])
    reboot = result.op("Reboot into the new kernel")
    assert reboot.conditional and not any(o.short == "Say that a reboot is needed" for o in result.ops)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "disks": [
                    {"role": "ubuntu", "model": "CT4000T705SSD3", "serial": "S7OTHER"},
                    DISKS[1],
                ]
            },
            "data disk: 0 disks have serial S7OTHER (role 'ubuntu'); found: /dev/nvme1n1 (disk, model "
            "WD_BLACK SN8100 4000GB, serial S7WIN); /dev/nvme0n1",
        ),
        (
            {"disks": [{"role": "ubuntu", "model": "WD_BLACK SN8100 4000GB", "serial": "S7DATA"}, DISKS[1]]},
            "disk with serial S7DATA is model 'CT4000T705SSD3', inventory says "
            "'WD_BLACK SN8100 4000GB'",
        ),
        (
            {"disks": [{"role": "ubuntu", "model": "CT4000T705SSD3", "serial": None}, DISKS[1]]},
            "disk role 'ubuntu' has no serial in the inventory: set OMNI_DISK_UBUNTU_SERIAL",
        ),
        (
            {"storage": {"min_size_gib": 0.5, "layout": "whole-disk"}},
            "/dev/nvme0n1 holds a gpt partition table with 2 partition(s): /dev/nvme0n1p1 "
            "'EFI System Partition' ext4; /dev/nvme0n1p2 '' ext4, which we did not create: refusing",
        ),
    ],
)
def test_wrong_disk_or_disk_with_data_is_refused_before_any_operation(change, message):
    name, data = host(converged=False)
    result = plan(PHASE3, [(name, {**data, **change})])
    assert result.ops == [] and message in result.error and "\n" not in result.error, result.error


def test_our_partition_holding_someone_elses_filesystem_is_refused():
    name, data = host(converged=True)
    probe = data["fake_responses"]["sfdisk -J"]
    start = probe.index("##part /dev/nvme0n1p3")
    probe[start:] = [
        line.replace("TYPE=xfs", "TYPE=ext4")
        .replace("LABEL=omni-data", "LABEL=photos")
        .replace('"type": "xfs"', '"type": "ext4"')
        for line in probe[start:]
    ]
    result = plan(PHASE3, [(name, data)])
    assert (
        "/dev/nvme0n1p3 holds ext4" in result.error
        and "which we did not create: refusing to format it" in result.error
    )


def test_non_ubuntu_and_missing_phase0_marker_are_refused(tmp_path):
    name, data = host(converged=False)
    debian = dict(
        data,
        fake_responses={
            **data["fake_responses"],
            "-release": ["/etc/os-release", 'NAME="Debian GNU/Linux"', "ID=debian", 'VERSION_ID="12"', "---"],
        },
    )
    assert "phase 3 supports Ubuntu 24.04 only, found Debian 12" in plan(PHASE3, [(name, debian)]).error
    data.pop("phase0_waived")
    env = {**__import__("os").environ, "OMNI_BACKUP_DIR": str(tmp_path)}
    error = plan(PHASE3, [(name, data)], env=env).error
    assert f"phase 0 has not completed ({tmp_path}/phase0-ready-fake.json missing)" in error
    (tmp_path / "phase0-ready-fake.json").write_text('{"ready": true}')
    assert plan(PHASE3, [(name, data)], env=env).error is None
