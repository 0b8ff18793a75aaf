"""Virtual media by URL: pick the right virtual drive, eject what is there, insert, confirm.

Why each step: AMI MegaRAC rejects InsertMedia without ``TransferProtocolType``; several firmwares
refuse (or silently ignore) an insert while another image is mounted; and mounting a remote ISO
can take a minute, during which the BMC already answered 204.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from sushy import exceptions as sushy_exc

from bmc.connection import Bmc
from bmc.errors import BmcError

#: --type -> Redfish MediaTypes that qualify
MEDIA_TYPES: dict[str, set[str]] = {"cd": {"CD", "DVD"}, "usb": {"USBStick"}}


def _image(dev: Any) -> str | None:
    image = dev.image
    return None if image in (None, "", "None") else str(image)


def _describe(dev: Any) -> dict[str, Any]:
    return {
        "id": dev.identity,
        "media_types": sorted(t.value for t in dev.media_types),
        "inserted": bool(dev.inserted),
        "image": _image(dev),
    }


def devices(bmc: Bmc) -> list[Any]:
    """Virtual drives of the system (Redfish 1.x puts them under the Manager; newer under the System)."""
    with bmc.errors("GET virtual media"):
        try:
            return list(bmc.system().virtual_media.get_members())
        except sushy_exc.MissingAttributeError:
            found: list[Any] = []
            for manager in bmc.root.get_manager_collection().get_members():
                try:
                    found.extend(manager.virtual_media.get_members())
                except sushy_exc.MissingAttributeError:
                    continue
            return found


def list_media(bmc: Bmc) -> list[dict[str, Any]]:
    return [_describe(d) for d in devices(bmc)]


def _pick(bmc: Bmc, media_type: str) -> Any:
    if media_type not in MEDIA_TYPES:
        raise BmcError(
            f"unknown media type {media_type!r}", f"use one of: {', '.join(MEDIA_TYPES)}", "invalid"
        )
    found = devices(bmc)
    for dev in found:
        if {t.value for t in dev.media_types} & MEDIA_TYPES[media_type]:
            return dev
    offered = ", ".join(f"{d.identity} ({'/'.join(t.value for t in d.media_types)})" for d in found) or "none"
    raise BmcError(
        f"the BMC has no virtual drive for {media_type} media (it has: {offered})",
        "use another --type",
        "unsupported",
    )


def _matches(dev: Any, url: str) -> bool:
    image = _image(dev)
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return bool(dev.inserted) and (image == url or (image is None and dev.image_name == name))


def _wait(bmc: Bmc, dev: Any, done: Any, label: str, timeout: float, poll: float, start: float) -> None:
    while True:
        with bmc.errors(f"GET virtual media {dev.identity}"):
            dev.refresh(force=True)
        if done(dev):
            return
        if time.monotonic() - start > timeout:
            raise BmcError(
                f"virtual drive {dev.identity} did not report {label} within {timeout:g} s "
                f"(Inserted={dev.inserted}, Image={_image(dev)})",
                "check that the BMC's network gets HTTP 200 for the image URL; raise --timeout",
                "timeout",
            )
        time.sleep(poll)


def check_url(url: str) -> str:
    """Only plain http(s) URLs without credentials: the BMC stores and shows the URL it mounts."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BmcError(
            f"image URL {url!r} is not an http:// or https:// URL", "serve the ISO over HTTP(S)", "invalid"
        )
    if parts.username or parts.password:
        raise BmcError(
            "the image URL carries credentials, which the BMC would store and display",
            "serve the ISO without authentication on the BMC's network",
            "invalid",
        )
    return parts.scheme.upper()


def eject(
    bmc: Bmc, media_type: str | None = None, timeout: float = 60.0, poll: float = 2.0
) -> dict[str, Any]:
    """Eject every inserted image (of ``media_type`` when given) and wait until the drives are empty."""
    start = time.monotonic()
    ejected = []
    for dev in devices(bmc):
        if media_type and not ({t.value for t in dev.media_types} & MEDIA_TYPES.get(media_type, set())):
            continue
        if not dev.inserted and _image(dev) is None:
            continue
        with bmc.errors(f"POST VirtualMedia.EjectMedia on {dev.identity}"):
            dev.eject_media()
        _wait(bmc, dev, lambda d: not d.inserted, "ejected", timeout, poll, start)
        ejected.append(dev.identity)
    elapsed = round(time.monotonic() - start, 1)
    message = (
        f"ejected {', '.join(ejected)} in {elapsed:g} s" if ejected else "nothing inserted; nothing sent"
    )
    return {"changed": bool(ejected), "ejected": ejected, "elapsed_s": elapsed, "message": message}


def insert(
    bmc: Bmc, url: str, media_type: str = "cd", timeout: float = 120.0, poll: float = 2.0
) -> dict[str, Any]:
    """Mount ``url`` on the drive for ``media_type`` and return once the BMC reports it Inserted."""
    protocol = check_url(url)
    dev = _pick(bmc, media_type)
    start = time.monotonic()
    if _matches(dev, url):
        return {
            "changed": False,
            "device": dev.identity,
            "image": url,
            "elapsed_s": 0.0,
            "message": f"{url} is already inserted in {dev.identity}; nothing sent",
        }
    if dev.inserted or _image(dev):
        with bmc.errors(f"POST VirtualMedia.EjectMedia on {dev.identity}"):
            dev.eject_media()
        _wait(bmc, dev, lambda d: not d.inserted, "ejected", timeout, poll, start)
    with bmc.errors(f"POST VirtualMedia.InsertMedia on {dev.identity}"):
        dev.insert_media(url, inserted=True, write_protected=True, transfer_protocol=protocol)
    _wait(bmc, dev, lambda d: _matches(d, url), "Inserted", timeout, poll, start)
    elapsed = round(time.monotonic() - start, 1)
    return {
        "changed": True,
        "device": dev.identity,
        "image": url,
        "elapsed_s": elapsed,
        "message": f"{url} inserted in {dev.identity} after {elapsed:g} s",
    }
