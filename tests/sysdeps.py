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
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    with _LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _which(binary):
            if not _UPDATED.exists():
                subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True)
                _UPDATED.touch()
            proc = subprocess.run(
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", apt_package],
                env=env, capture_output=True, text=True,
            )
            if proc.returncode != 0:
                pytest.fail(f"apt-get install {apt_package} failed: {proc.stderr.strip().splitlines()[-1:]}")
    found = _which(binary)
    if not found:
        pytest.fail(f"{apt_package} installed but {binary} is still not on PATH")
    return found
