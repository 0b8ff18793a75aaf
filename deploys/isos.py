"""Phase 0 ISO staging on the ISO-serving host: download, verify sha256, serve over HTTP, record.

Why not ``files.download``: it leaves a file that failed verification in place. Each image is
downloaded to ``<name>.part``, checked against the inventory's mandatory sha256, and only then
moved into place; a mismatch deletes the part file and fails with the two hashes. A systemd unit
serves the folder with ``python3 -m http.server`` bound to the address the BMC can reach; the
served URL must answer ``HTTP 200`` with the file's size before the image is recorded as verified
in the controller's record (``deploys/iso_record.py``), which the BMC phases require.

Runs on hosts in the inventory group ``iso_servers`` (a hosts-file entry with
``groups = ["iso_servers"]``; ``"@local"`` makes the controller the server).

Host data ``isos`` (merged over :data:`DEFAULTS`): ``dir`` (served folder), ``images`` (list of
``name``, ``url``, ``sha256`` — the publisher's SHA256SUMS value, mandatory), ``http.bind`` (the
address the BMC reaches; mandatory), ``http.port``, ``http.unit``.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import Sha256File
from pyinfra.facts.server import Command
from pyinfra.operations import files, server, systemd

from deploys import iso_record
from deploys.checks.context import CheckContext
from deploys.controller import controller_check
from deploys.settings import settings

TEMPLATES = Path(__file__).with_name("templates") / "phase0"
DEFAULTS: dict[str, Any] = {
    "dir": "/srv/omni-iso",
    "images": [
        {
            "name": "ubuntu-24.04.3-live-server-amd64.iso",
            "url": "https://releases.ubuntu.com/24.04.3/ubuntu-24.04.3-live-server-amd64.iso",
            "sha256": None,
        },
        {"name": "windows11.iso", "url": None, "sha256": None},
    ],
    "http": {"bind": None, "port": 8081, "unit": "omni-iso-http"},
}
_SHA = re.compile(r"^[0-9a-fA-F]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9._-]+\.iso$")


class IsoConfigError(ValueError):
    """An ISO entry that cannot be staged safely; the message names the key to set."""


def iso_settings(data: Any) -> dict[str, Any]:
    """Validated settings: every image has a file name, an http(s) URL and a 64-hex sha256."""
    cfg = settings(DEFAULTS, data, "isos")
    for i, image in enumerate(cfg["images"]):
        where = f"isos.images[{i}] ({image.get('name')})"
        if not _NAME.match(str(image.get("name") or "")):
            raise IsoConfigError(f"{where}: name must be a plain *.iso file name")
        if not re.match(r"^https?://", str(image.get("url") or "")):
            raise IsoConfigError(f"{where}: set url to the image's download URL")
        if not _SHA.match(str(image.get("sha256") or "")):
            raise IsoConfigError(f"{where}: set sha256 to the publisher's SHA256SUMS value (mandatory)")
        image["sha256"] = image["sha256"].lower()
    if not cfg["http"].get("bind"):
        raise IsoConfigError("isos.http.bind is not set: give the ISO host's address that the BMC can reach")
    return cfg


def served_url(cfg: dict[str, Any], name: str) -> str:
    return f"http://{cfg['http']['bind']}:{cfg['http']['port']}/{name}"


def download_command(directory: str, image: dict[str, Any]) -> str:
    """Download to ``.part``, verify, then move; a mismatch removes the part file and fails."""
    final = f"{directory}/{image['name']}"
    part, url, sha = shlex.quote(final + ".part"), shlex.quote(image["url"]), image["sha256"]
    return (
        f"rm -f {part}; (curl -fL --retry 3 -o {part} {url} || wget -q -O {part} {url}) && "
        f"actual=$(sha256sum {part} | cut -d' ' -f1) && if [ \"$actual\" != {sha} ]; then rm -f {part}; "
        f'echo "sha256 mismatch for {image["name"]}: expected {sha}, got $actual" >&2; exit 1; fi && '
        f"chmod 644 {part} && mv {part} {shlex.quote(final)}"
    )


def _verify_served(cfg: dict[str, Any]) -> list[str]:
    """Each image answers HTTP 200 with its size and hashes right; then it is recorded verified."""
    ctx = CheckContext(host=host, data={})
    problems = []
    for image in cfg["images"]:
        path = f"{cfg['dir']}/{image['name']}"
        size = ctx.run(f"stat -c %s {shlex.quote(path)}").stdout.strip()
        sha = host.get_fact(Sha256File, path=path)
        answer = ctx.http(served_url(cfg, image["name"]), method="HEAD", timeout=10)
        length = {k.lower(): v for k, v in answer.headers.items()}.get("content-length")
        if sha != image["sha256"]:
            problems.append(f"{path}: sha256 {sha} is not {image['sha256']}")
        elif answer.status != 200 or length != size:
            problems.append(
                f"{served_url(cfg, image['name'])}: HTTP {answer.status}, Content-Length {length}, "
                f"file {size} bytes {answer.error}".strip()
            )
        else:
            iso_record.record_verified(
                {
                    "name": image["name"],
                    "url": image["url"],
                    "served_url": served_url(cfg, image["name"]),
                    "sha256": sha,
                    "size_bytes": int(size),
                    "host": host.name,
                    "path": path,
                }
            )
    return problems


@deploy("Stage and serve the ISO images for the BMC")
def stage_isos(cfg: dict[str, Any]) -> None:
    directory = cfg["dir"]
    files.directory(name=f"Create {directory}", path=directory, mode="755")
    for image in cfg["images"]:
        path = f"{directory}/{image['name']}"
        if host.get_fact(Sha256File, path=path) == image["sha256"]:
            host.noop(f"{path} already verified")
            continue
        server.shell(
            name=f"Download and verify {image['name']}", commands=[download_command(directory, image)]
        )
    http = cfg["http"]
    python = host.get_fact(Command, command="command -v python3 || true") or "/usr/bin/python3"
    unit = files.template(
        name=f"Install the {http['unit']} unit",
        src=str(TEMPLATES / "omni-iso-http.service.j2"),
        dest=f"/etc/systemd/system/{http['unit']}.service",
        bind=http["bind"],
        port=http["port"],
        directory=directory,
        python=python,
    )
    systemd.daemon_reload(name="Reload systemd units", _if=unit.did_change)
    systemd.service(name=f"Run {http['unit']}", service=f"{http['unit']}.service", running=True, enabled=True)
    systemd.service(
        name=f"Restart {http['unit']} after a change",
        service=f"{http['unit']}.service",
        restarted=True,
        _if=unit.did_change,
    )
    controller_check(_verify_served, cfg, name="Check the served ISOs and record them as verified")
