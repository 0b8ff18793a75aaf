"""Ubuntu autoinstall for the BMC install path: a NoCloud seed per workstation and an ISO that boots it.

Why a remastered ISO: the installer reads its autoinstall only when the kernel command line names a
seed (``autoinstall ds=nocloud;s=URL``), and through BMC virtual media there is no keyboard to type
it at the GRUB menu. So phase 0, on the ISO server, copies the verified Ubuntu ISO with ``xorriso``
replacing only ``/boot/grub/grub.cfg`` (every ``linux /casper/vmlinuz`` line gains the two words;
the boot records are replayed unchanged), and serves the seed (``user-data``, ``meta-data``) from
the same nginx, under ``/autoinstall/<host>/``. ``autoinstall`` on the command line also skips the
installer's "really erase?" question, so the storage section is written defensively:

* the target disk is matched by the ``ubuntu`` role's model **and** serial from the inventory (no
  serial configured → refused in one line); the Windows disk is never named;
* partitions are the runbook's (3.4): ESP 512 MiB, ``/`` 500 GiB, ``/home`` 500 GiB; the rest is
  left free for phase 3, which adds the ``/nvme`` XFS partition there (``deploys/host/storage/``);
* the HWE kernel, OpenSSH with key-only login, the owner's public keys; then a reboot into the
  installed system (the BMC's boot override was "once"), where phase 3's BMC half waits for SSH.

Host data ``autoinstall`` (merged over :data:`DEFAULTS`): ``username``, ``hostname`` (default the
host's name up to the first dot), ``password_hash`` (mandatory, ``openssl passwd -6``: sudo and the
console need it; key-only over SSH), ``ssh_authorized_keys`` (mandatory, public keys),
``esp_mib``/``root_gib``/``home_gib``, ``kernel``, ``base_iso`` (the verified image in
``isos.images`` to remaster).
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from deploys.core.markers import safe_name
from omni.settings import settings

DEFAULTS: dict[str, Any] = {
    "username": "omni",
    "hostname": None,
    "password_hash": None,
    "ssh_authorized_keys": [],
    "esp_mib": 512,
    "root_gib": 500,
    "home_gib": 500,
    "kernel": "linux-generic-hwe-24.04",
    "base_iso": "ubuntu-24.04.3-live-server-amd64.iso",
}
_HASH = re.compile(r"^\$(6|y|5)\$\S+$")
_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+|sk-ssh-ed25519@openssh\.com) \S+")


class AutoinstallConfigError(ValueError):
    """An autoinstall that cannot be written safely; the message names the key to set."""


def autoinstall_settings(data: Any, host_name: str) -> dict[str, Any]:
    """Validated settings plus the Ubuntu disk's identity (model + serial) from ``disks``."""
    cfg = settings(DEFAULTS, data, "autoinstall")
    where = f"{host_name}: autoinstall"
    if not _HASH.match(str(cfg["password_hash"] or "")):
        raise AutoinstallConfigError(
            f"{where}.password_hash is not set: give a crypt hash (`openssl passwd -6`), never a password"
        )
    keys = cfg["ssh_authorized_keys"]
    if not isinstance(keys, list) or not keys or not all(_KEY.match(str(k)) for k in keys):
        raise AutoinstallConfigError(
            f"{where}.ssh_authorized_keys must list your SSH public keys (login is key-only)"
        )
    disks = [d for d in (data.get("disks") or []) if d.get("role") == "ubuntu"]
    if len(disks) != 1 or not disks[0].get("serial") or not disks[0].get("model"):
        raise AutoinstallConfigError(
            f"{host_name}: the ubuntu disk needs its model and serial before an unattended install: "
            "set OMNI_DISK_UBUNTU_SERIAL (lsblk -d -o NAME,MODEL,SERIAL)"
        )
    cfg["disk"] = {"model": str(disks[0]["model"]).strip(), "serial": str(disks[0]["serial"]).strip()}
    cfg["hostname"] = cfg["hostname"] or re.sub(r"[^a-z0-9-]", "-", host_name.split(".")[0].lower())
    return cfg


def user_data(cfg: dict[str, Any]) -> str:
    """The cloud-config ``user-data`` carrying the autoinstall (JSON is valid YAML)."""
    disk = cfg["disk"]
    storage = [
        # subiquity's ``match``: glob on udev's ID_SERIAL (NVMe: "<model>_<serial>") and the model
        {"type": "disk", "id": "os-disk", "match": {"serial": f"*{disk['serial']}", "model": disk["model"]},
         "ptable": "gpt", "wipe": "superblock-recursive", "preserve": False, "grub_device": False},
        {"type": "partition", "id": "esp", "device": "os-disk", "number": 1, "size": f"{cfg['esp_mib']}M",
         "flag": "boot", "grub_device": True, "preserve": False},
        {"type": "format", "id": "esp-fs", "volume": "esp", "fstype": "fat32", "preserve": False},
        {"type": "partition", "id": "root", "device": "os-disk", "number": 2, "size": f"{cfg['root_gib']}G",
         "preserve": False},
        {"type": "format", "id": "root-fs", "volume": "root", "fstype": "ext4", "preserve": False},
        {"type": "partition", "id": "home", "device": "os-disk", "number": 3, "size": f"{cfg['home_gib']}G",
         "preserve": False},
        {"type": "format", "id": "home-fs", "volume": "home", "fstype": "ext4", "preserve": False},
        {"type": "mount", "id": "root-mnt", "device": "root-fs", "path": "/"},
        {"type": "mount", "id": "home-mnt", "device": "home-fs", "path": "/home"},
        {"type": "mount", "id": "esp-mnt", "device": "esp-fs", "path": "/boot/efi"},
    ]
    document = {
        "autoinstall": {
            "version": 1,
            "identity": {"hostname": cfg["hostname"], "username": cfg["username"],
                         "password": cfg["password_hash"]},
            "ssh": {"install-server": True, "allow-pw": False,
                    "authorized-keys": list(cfg["ssh_authorized_keys"])},
            "kernel": {"package": cfg["kernel"]},
            "storage": {"swap": {"size": 0}, "config": storage},
            "shutdown": "reboot",
        }
    }
    return "#cloud-config\n" + json.dumps(document, indent=2) + "\n"


def meta_data(host_name: str) -> str:
    return f"instance-id: omni-{safe_name(host_name)}\n"


def seed_path(host_name: str) -> str:
    """The seed's folder under the served directory (and so under the served URL)."""
    return f"autoinstall/{safe_name(host_name)}"


def iso_name(host_name: str) -> str:
    return f"ubuntu-autoinstall-{safe_name(host_name)}.iso"


def remaster_command(directory: str, base: str, out: str, seed_url: str) -> str:
    """Copy ``base`` to ``out`` with grub.cfg's kernel lines naming the seed; sha256 beside it.

    Written to ``<out>.part`` and moved into place only when xorriso succeeded and the new
    grub.cfg has the seed on every kernel line; ``<out>.inputs`` records what it was built from.
    """
    q = shlex.quote
    src, dst, work = f"{directory}/{base}", f"{directory}/{out}", f"{directory}/.{out}.work"
    arg = f"autoinstall 'ds=nocloud;s={seed_url}'"
    sed = (r"s@^(\s*linux\s+/casper/vmlinuz)(\s)@\1 " + arg.replace("@", r"\@") + r"\2@; "
           r"s@^set timeout=.*@set timeout=5@")
    return (
        f"set -e; rm -rf {q(work)}; mkdir -p {q(work)}; "
        f"xorriso -osirrox on -indev {q(src)} -extract /boot/grub/grub.cfg {q(work)}/grub.cfg 2>/dev/null; "
        f"chmod u+w {q(work)}/grub.cfg; sed -E -i {q(sed)} {q(work)}/grub.cfg; "
        f"grep -q {q('ds=nocloud;s=' + seed_url)} {q(work)}/grub.cfg || "
        f"{{ echo 'no linux /casper/vmlinuz line in {base}: not an Ubuntu live-server ISO' >&2; exit 1; }}; "
        f"rm -f {q(dst)}.part; xorriso -indev {q(src)} -outdev {q(dst)}.part "
        f"-map {q(work)}/grub.cfg /boot/grub/grub.cfg -boot_image any replay 2>{q(work)}/xorriso.log "
        f"|| {{ tail -n 5 {q(work)}/xorriso.log >&2; exit 1; }}; "
        f"chmod 644 {q(dst)}.part; sha256sum {q(dst)}.part | cut -d' ' -f1 > {q(dst)}.sha256; "
        f"mv {q(dst)}.part {q(dst)}; echo {q(seed_url)} > {q(dst)}.inputs; "
        f"sha256sum {q(src)} | cut -d' ' -f1 >> {q(dst)}.inputs; rm -rf {q(work)}"
    )
