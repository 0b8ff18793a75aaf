"""Install the system programs a test needs (Chromium, xfsprogs, promtool...) from apt, once.

Why here and not by hand: CI runs on a clean clone, so whatever a test needs is installed by the
test setup itself. Without root the test fails with the exact command to run, never skips.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

_LOCK = Path("/tmp/protocol-omni-apt.lock")
_UPDATED = Path("/tmp/protocol-omni-apt.updated")


_APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
_DEBS = Path("/tmp/protocol-omni-debs")


def _apt_update_once() -> None:
    """``apt-get update`` the first time any test needs the package lists (callers hold _LOCK)."""
    if not _UPDATED.exists():
        subprocess.run(["apt-get", "update", "-q"], env=_APT_ENV, check=True, capture_output=True)
        _UPDATED.touch()


def _which(binary: str) -> str | None:
    """PATH first, then the sbin folders a non-login root shell may lack."""
    return shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")


def ensure_binary(binary: str, apt_package: str) -> str:
    """Return the path of ``binary``, installing ``apt_package`` first when it is missing."""
    found = _which(binary)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.fail(f"{binary} is missing: install it with `sudo apt-get install -y {apt_package}`")
    with _LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _which(binary):
            _apt_update_once()
            proc = subprocess.run(
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", apt_package],
                env=_APT_ENV, capture_output=True, text=True,
            )
            if proc.returncode != 0:
                pytest.fail(f"apt-get install {apt_package} failed: {proc.stderr.strip().splitlines()[-1:]}")
    found = _which(binary)
    if not found:
        pytest.fail(f"{apt_package} installed but {binary} is still not on PATH")
    return found


def extract_from_deb(package: str, *members: str) -> dict[str, Path]:
    """Unpack ``members`` (absolute paths) of Debian's ``package`` into /tmp, without installing it.

    Why: some packages start a daemon from their init script when installed (prometheus); a test
    that needs only a static binary from one takes it from the .deb. Root or not; once per machine.
    """
    target = _DEBS / package
    wanted = {m: target / m.lstrip("/") for m in members}
    if all(path.is_file() for path in wanted.values()):
        return wanted
    for tool in ("apt-get", "dpkg-deb"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing: these tests unpack Debian's {package} package with it")
    _DEBS.mkdir(parents=True, exist_ok=True)
    with _LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        download = _DEBS / f"download-{package}"
        download.mkdir(exist_ok=True)
        fetch = ["apt-get", "download", "-q", package]
        proc = subprocess.run(fetch, cwd=download, env=_APT_ENV, capture_output=True, text=True)
        if proc.returncode != 0 and os.geteuid() == 0:
            _apt_update_once()
            proc = subprocess.run(fetch, cwd=download, env=_APT_ENV, capture_output=True, text=True)
        debs = sorted(download.glob(f"{package}_*.deb"))
        if proc.returncode != 0 or not debs:
            pytest.fail(f"apt-get download {package} failed: {proc.stderr.strip()[-300:]}")
        target.mkdir(parents=True, exist_ok=True)
        members_arg = " ".join(f".{m}" for m in members)
        tar = subprocess.run(f"dpkg-deb --fsys-tarfile {debs[-1]} | tar -x -C {target} {members_arg}",
                             shell=True, capture_output=True, text=True, check=False)
        if tar.returncode != 0:
            pytest.fail(f"unpacking {package} failed: {tar.stderr.strip()[-300:]}")
    return wanted
