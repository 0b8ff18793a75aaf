"""Boot an OS installer from an ISO through the BMC: virtual CD, boot once in UEFI mode, power-cycle.

Why the refusals: the BMC boots whatever URL it is handed, so an ISO is used only when phase 0
recorded its sha256 as verified (``deploys/bmc/iso_record.py``); and a power-cycle into an installer
must happen once, so a controller-side marker (``backups/bmc-install-<role>-<host>.json``)
makes the second run a no-op. Delete the marker to install again.

Used by ``deploys/phase2.py`` (Windows) and the BMC half of phase 3 (Ubuntu)::

    from deploys.bmc.media import install_os_from_iso
    install_os_from_iso(role="ubuntu")

Everything runs on the controller; the box needs no OS. With no OS to SSH into, target the
controller and name the BMC: ``OMNI_HOST=@local OMNI_BMC_URL=https://<bmc> pyinfra inventory.py
deploys/phase2.py``.
"""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.operations import python

from bmc import boot, media, power
from bmc.connection import Bmc, settings_from_data
from bmc.errors import BmcError
from deploys.bmc import iso_record
from deploys.core.flags import MediaFlags, run_flags
from deploys.core.markers import backup_root, safe_name
from omni.files import atomic_write_json

DEFAULTS: dict[str, Any] = {
    # role -> image: its name in phase 0's record (``isos.images[].name``) or the URL the BMC mounts;
    # sha256: optional, must then equal the recorded one. The BMC mounts the record's served_url.
    "install_isos": {
        "windows": {"image": "windows11.iso", "sha256": None},
        "ubuntu": {"image": "ubuntu-24.04.3-live-server-amd64.iso", "sha256": None},
    },
    # how to start the installer and how long each step may take: MediaFlags, their one home
    **MediaFlags().model_dump(),
}


def install_marker(role: str, host_name: str) -> Path:
    return backup_root() / f"bmc-install-{role}-{safe_name(host_name)}.json"


def _connect(data: dict[str, Any]) -> Bmc:
    return Bmc(settings_from_data(data, os.environ))


def _run(host: Any, step: Any) -> bool:
    """Run one BMC step inside a pyinfra callback; a failure is one red line and a failed op."""
    try:
        message = step()
    except BmcError as exc:
        host.log_styled(str(exc), fg="red", log_func=logger.error)
        return False
    host.log(message, log_func=logger.info)
    return True


def _insert(state: Any, host: Any, data: dict[str, Any], url: str) -> bool:
    def step() -> str:
        with _connect(data) as bmc:
            timeout, poll = float(data["bmc_media_timeout"]), float(data["bmc_poll_s"])
            return media.insert(bmc, url, "cd", timeout, poll)["message"]

    return _run(host, step)


def _boot_cd(state: Any, host: Any, data: dict[str, Any]) -> bool:
    def step() -> str:
        with _connect(data) as bmc:
            return boot.boot_once(bmc, "cd", uefi=True)["message"]

    return _run(host, step)


def _power(state: Any, host: Any, data: dict[str, Any], marker: str, record: dict[str, Any]) -> bool:
    def step() -> str:
        with _connect(data) as bmc:
            verb = data["bmc_install_power_action"]
            result = power.power(
                bmc, verb, wait=True, timeout=float(data["bmc_power_timeout"]), poll=float(data["bmc_poll_s"])
            )
            atomic_write_json(
                Path(marker),
                record
                | {
                    "booted_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "power": verb,
                    "power_message": result["message"],
                },
                sort_keys=True,
                mode=0o600,
            )
            return f"{verb}: {result['message']}; the installer is booting (marker {marker})"

    return _run(host, step)


def ssh_banner(address: str, port: int, timeout: float) -> str | None:
    """The SSH server's identification line (``SSH-2.0-...``), or None when nothing answers yet."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            line = conn.recv(256).decode("ascii", "replace").strip()
    except OSError:
        return None
    return line if line.startswith("SSH-") else None


def _wait_for_ssh(state: Any, host: Any, address: str, port: int, within: float, poll: float) -> bool:
    """pyinfra callback: poll the installed system's SSH port until it identifies itself."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        banner = ssh_banner(address, port, min(poll, 10.0))
        if banner:
            host.log(f"{address}:{port} answers ({banner}) after {time.monotonic() - start:.0f} s: the "
                     "installed system is up; continue with deploys/phase3.py (its host key is new: "
                     f"ssh-keygen -R {address})", log_func=logger.info)
            return True
        time.sleep(poll)
    host.log_styled(f"{address}:{port} did not answer SSH within {within:g} s: watch the install on the "
                    "BMC's remote console", fg="red", log_func=logger.error)
    return False


@deploy("Boot an OS installer from a verified ISO through the BMC", data_defaults=DEFAULTS)
def install_os_from_iso(role: str, image: str | None = None) -> None:
    """Insert the ``role`` ISO, boot once from virtual CD in UEFI mode, power-cycle, wait until On.

    ``image``: the default when the host data names none (phase 3: the workstation's autoinstall ISO).
    """
    data = host.data.dict()
    for key, value in DEFAULTS.items():
        data.setdefault(key, value)
    data |= run_flags(MediaFlags).model_dump()  # checked before the BMC is asked anything
    default = {**DEFAULTS["install_isos"].get(role, {}), **({"image": image} if image else {})}
    own = (data.get("install_isos") or {}).get(role) or {}
    if own == DEFAULTS["install_isos"].get(role):  # data_defaults put the module default there
        own = {}
    iso = {**default, **own}
    image, sha256 = iso.get("image"), iso.get("sha256")
    if not image:
        raise DeployError(
            f"{host.name}: no {role} ISO in the inventory: set install_isos.{role}.image to its "
            "name in phase 0's isos.images (or the URL phase 0 serves it at)"
        )
    try:
        entry = iso_record.require_verified(image, sha256)
        url = entry.get("served_url") or image
        media.check_url(url)
    except (iso_record.IsoRecordError, BmcError) as exc:
        raise DeployError(f"{host.name}: refusing to boot the {role} ISO: {exc}") from None
    marker = install_marker(role, host.name)
    record = {"role": role, "url": url, "sha256": entry["sha256"], "bmc_url": data.get("bmc_url")}
    try:
        done = json.loads(marker.read_text()) if marker.exists() else None
    except ValueError:
        done = None
    if done and done.get("sha256") == entry["sha256"] and done.get("url") == url:
        host.log(
            f"the {role} installer was already booted from {url} at {done.get('booted_at')}; nothing to do "
            f"(delete {marker} to install again)",
            log_func=logger.info,
        )
        return
    try:
        with _connect(data) as bmc:  # the BMC must answer before anything is changed
            inserted = any(m["inserted"] and m["image"] == url for m in media.list_media(bmc))
    except BmcError as exc:
        raise DeployError(f"{host.name}: {exc}") from None
    if not inserted:
        python.call(
            name=f"Insert the {role} ISO as virtual CD through the BMC", function=_insert, data=data, url=url
        )
    python.call(name="Boot once from the virtual CD in UEFI mode", function=_boot_cd, data=data)
    python.call(
        name=f"Power-cycle the box into the {role} installer and wait until it is On",
        function=_power,
        data=data,
        marker=str(marker),
        record=record,
    )
