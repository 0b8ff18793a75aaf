"""Phase 0 ISO staging on the ISO-serving host: download, verify sha256, serve over HTTP, record.

Why not ``files.download``: it leaves a file that failed verification in place. Each image is
downloaded to ``<name>.part``, checked against the inventory's mandatory sha256, and only then
moved into place; a mismatch deletes the part file and fails with the two hashes. A systemd unit
runs a standalone, unprivileged nginx (from apt) bound to the address the BMC can reach, because
BMC virtual media reads the image with HTTP ``Range`` requests, which ``python3 -m http.server``
ignores. Before an image is recorded as verified in the controller's record
(``deploys/bmc/iso_record.py``, which the BMC phases require), the ISO host itself fetches two
``Range: bytes=`` slices (each must be ``206`` with the right ``Content-Range`` and the file's
bytes) and the whole served body, whose sha256 must be the inventory's.

Runs on hosts in the inventory group ``iso_servers`` (a hosts-file entry with
``groups = ["iso_servers"]``; ``"@local"`` makes the controller the server).

Host data ``isos`` (merged over :data:`DEFAULTS`): ``dir`` (served folder), ``images`` (list of
``name``, ``url``, ``sha256`` — the publisher's SHA256SUMS value, mandatory), ``http.bind`` (the
address the BMC reaches; mandatory), ``http.unit``. The port is the host data's one
``iso_http_port`` (the runbook's 8080; ``OMNI_ISO_HTTP_PORT``), which the served URLs and so the
BMC use.
"""

from __future__ import annotations

import json
import re
import shlex
from io import StringIO
from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import FileContents, Sha256File
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from deploys.bmc import autoinstall, iso_record
from deploys.checks.context import CheckContext
from deploys.core.controller import controller_check
from facts.runtime import SystemdBooted
from omni.settings import settings

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "phase0"
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
    "http": {"bind": None, "unit": "omni-iso-http"},
}
NGINX = "/usr/sbin/nginx"
#: Two slices every served image must return as 206 Partial Content: the middle and the tail.
_VERIFY_SNIPPET = """
import hashlib, json, os, sys, urllib.request, urllib.error
a = json.loads(sys.argv[1]); url, path = a["url"], a["path"]; out = {"problems": [], "sha256": None}
size = os.path.getsize(path)
def get(headers):
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)
    except urllib.error.HTTPError as e:
        return e
try:
    with open(path, "rb") as f:
        for start, end in ((size // 2, min(size - 1, size // 2 + 65535)), (max(0, size - 4096), size - 1)):
            with get({"Range": f"bytes={start}-{end}"}) as r:
                body, want = r.read(), f"bytes {start}-{end}/{size}"
                f.seek(start); expected = f.read(end - start + 1)
                got = r.headers.get("Content-Range")
                if r.status != 206 or got != want:
                    out["problems"].append(f"Range bytes={start}-{end}: HTTP {r.status}, Content-Range {got}"
                                           f" (want 206, {want}): the server ignores Range requests")
                elif body != expected:
                    out["problems"].append(f"Range bytes={start}-{end}: served bytes differ from the file")
    with get({}) as r:
        digest, total = hashlib.sha256(), 0
        while chunk := r.read(1 << 20):
            digest.update(chunk); total += len(chunk)
        if r.status != 200 or total != size:
            out["problems"].append(f"GET: HTTP {r.status}, {total} bytes served, file {size} bytes")
        out["sha256"], out["size"] = digest.hexdigest(), total
except Exception as e:
    out["problems"].append(f"{type(e).__name__}: {e}")
print(json.dumps(out))
"""
_SHA = re.compile(r"^[0-9a-fA-F]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9._-]+\.iso$")


class IsoConfigError(ValueError):
    """An ISO entry that cannot be staged safely; the message names the key to set."""


def iso_settings(data: Any) -> dict[str, Any]:
    """Validated settings: every image has a file name, an http(s) URL and a 64-hex sha256."""
    cfg = settings(DEFAULTS, data, "isos")
    if "port" in cfg["http"]:
        raise IsoConfigError("isos.http.port is no longer read: set the host data's iso_http_port")
    port = data.get("iso_http_port") if hasattr(data, "get") else None
    if not isinstance(port, int) or not 0 < port < 65536:
        raise IsoConfigError(f"iso_http_port={port!r} is not a TCP port: set it (the runbook's 8080)")
    cfg["http"]["port"] = port
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


def check_served(ctx: CheckContext, url: str, path: str, timeout: float = 3600) -> dict[str, Any]:
    """Range slices and the whole body, fetched on the ISO host: ``{"problems": [...], "sha256": ...}``."""
    args = json.dumps({"url": url, "path": path})
    probe = ctx.run(f"python3 -c {shlex.quote(_VERIFY_SNIPPET)} {shlex.quote(args)}", timeout=timeout)
    try:
        return json.loads(probe.lines[-1])
    except (IndexError, ValueError):
        return {"problems": [f"{url}: check did not run ({probe.stderr.strip()[-200:] or 'no python3'})"]}


def _verify_served(cfg: dict[str, Any]) -> list[str]:
    """Each image answers Range requests with its bytes and serves its sha256; then it is recorded.

    A remastered autoinstall ISO is checked against the sha256 its build wrote beside it (its
    base image was checked against the inventory's before the build).
    """
    ctx = CheckContext(host=host, data={})
    problems = []
    for image in [*cfg["images"], *cfg.get("derived", [])]:
        path, url = f"{cfg['dir']}/{image['name']}", served_url(cfg, image["name"])
        sha = host.get_fact(Sha256File, path=path)
        if image.get("derived_from"):
            image = {**image, "sha256": ctx.run(f"cat {shlex.quote(path)}.sha256").stdout.strip()}
        if sha != image["sha256"]:
            problems.append(f"{path}: sha256 {sha} is not {image['sha256']}")
            continue
        served = check_served(ctx, url, path)
        if served["problems"]:
            problems += [f"{url}: {p}" for p in served["problems"]]
        elif served["sha256"] != image["sha256"]:
            problems.append(f"{url}: served body sha256 {served['sha256']} is not {image['sha256']}")
        else:
            iso_record.record_verified(
                {
                    "name": image["name"],
                    "url": image["url"],
                    "served_url": url,
                    "sha256": sha,
                    "size_bytes": int(served["size"]),
                    "host": host.name,
                    "path": path,
                    **({"derived_from": image["derived_from"]} if image.get("derived_from") else {}),
                }
            )
    return problems


def nginx_conf_path(cfg: dict[str, Any]) -> str:
    return f"/etc/{cfg['http']['unit']}/nginx.conf"


def autoinstall_isos(cfg: dict[str, Any], seeds: list[tuple[str, dict[str, Any]]]) -> None:
    """Per workstation: its NoCloud seed under the served folder and the ISO whose GRUB names it."""
    directory = cfg["dir"]
    apt.packages(name="Install xorriso (remasters the Ubuntu ISO's grub.cfg)", packages=["xorriso"])
    cfg.setdefault("derived", [])
    for name, settings_ in seeds:
        base = settings_["base_iso"]
        sha = next((i["sha256"] for i in cfg["images"] if i["name"] == base), None)
        if sha is None:
            raise IsoConfigError(f"autoinstall.base_iso {base!r} of {name} is not in isos.images: add it")
        seed_dir = f"{directory}/{autoinstall.seed_path(name)}"
        url = served_url(cfg, autoinstall.seed_path(name)) + "/"
        files.directory(name=f"Create the autoinstall seed folder of {name}", path=seed_dir, mode="755")
        files.put(name=f"Write the autoinstall user-data of {name}",
                  src=StringIO(autoinstall.user_data(settings_)), dest=f"{seed_dir}/user-data", mode="644")
        files.put(name=f"Write the autoinstall meta-data of {name}",
                  src=StringIO(autoinstall.meta_data(name)), dest=f"{seed_dir}/meta-data", mode="644")
        out = autoinstall.iso_name(name)
        built_from = host.get_fact(FileContents, path=f"{directory}/{out}.inputs") or []
        if built_from == [url, sha]:
            host.noop(f"{out} already built from {base} for {url}")
        else:
            server.shell(name=f"Remaster {base} into {out} (GRUB boots the autoinstall of {name})",
                         commands=[autoinstall.remaster_command(directory, base, out, url)])
        cfg["derived"].append({"name": out, "url": f"remastered from {base}", "derived_from": base})


@deploy("Stage and serve the ISO images for the BMC")
def stage_isos(cfg: dict[str, Any], seeds: list[tuple[str, dict[str, Any]]] | None = None) -> None:
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
    if seeds:
        autoinstall_isos(cfg, seeds)
    if not host.get_fact(SystemdBooted):
        raise IsoConfigError("the ISO server runs nginx as a systemd unit and this host has no running "
                             "systemd (a container?): put a host that boots with systemd in iso_servers")
    http = cfg["http"]
    apt.packages(name="Install nginx (serves HTTP Range requests)", packages=["nginx"], update=True,
                 cache_time=3600)
    conf_path = nginx_conf_path(cfg)
    files.directory(name=f"Create /etc/{http['unit']}", path=f"/etc/{http['unit']}", mode="755")
    conf = files.template(
        name=f"Install the {http['unit']} nginx configuration",
        src=str(TEMPLATES / "omni-iso-nginx.conf.j2"),
        dest=conf_path,
        bind=http["bind"],
        port=http["port"],
        directory=directory,
        runtime=f"/run/{http['unit']}",
    )
    unit = files.template(
        name=f"Install the {http['unit']} unit",
        src=str(TEMPLATES / "omni-iso-http.service.j2"),
        dest=f"/etc/systemd/system/{http['unit']}.service",
        bind=http["bind"],
        port=http["port"],
        directory=directory,
        nginx=NGINX,
        conf=conf_path,
        unit=http["unit"],
    )
    systemd.daemon_reload(name="Reload systemd units", _if=unit.did_change)
    systemd.service(name=f"Run {http['unit']}", service=f"{http['unit']}.service", running=True, enabled=True)
    systemd.service(
        name=f"Restart {http['unit']} after a change",
        service=f"{http['unit']}.service",
        restarted=True,
        _if=any_changed(unit, conf),
    )
    controller_check(_verify_served, cfg, name="Check the served ISOs and record them as verified")
