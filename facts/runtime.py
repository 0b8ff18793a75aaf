"""Facts phase 4 (the container runtime) reads: systemd, JSON config files, keyrings, K3s versions.

Each answers "absent" as data instead of failing, so a fresh host plans instead of aborting.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pyinfra.api import FactBase


class SystemdBooted(FactBase):
    """Whether systemd is PID 1 (``sd_booted()``'s test); containers and chroots answer False.

    Why not ``SystemdStatus``: ``systemctl show`` fails outright without a running systemd, which
    would abort the plan instead of describing it.
    """

    def command(self) -> str:
        return "test -d /run/systemd/system && echo booted || echo not-booted"

    def process(self, output: list[str]) -> bool:
        return bool(output) and output[-1].strip() == "booted"


class AptHolds(FactBase):
    """Packages on hold (``apt-mark showhold``): a list of names."""

    def command(self) -> str:
        return "apt-mark showhold 2>/dev/null || true"

    def process(self, output: list[str]) -> list[str]:
        return sorted(line.strip() for line in output if line.strip())


class UserAccount(FactBase):
    """One account: ``{"home", "group", "groups"}`` or None when it does not exist.

    Why not pyinfra's ``Users``: it reads every password hash from /etc/shadow into the run.
    """

    def command(self, user: str) -> str:
        quoted = "'" + user.replace("'", "") + "'"
        return (f"getent passwd {quoted} | cut -d: -f6 && id -gn {quoted} && id -Gn {quoted} || "
                "echo absent")

    def process(self, output: list[str]) -> dict[str, Any] | None:
        lines = [line.strip() for line in output]
        if not lines or lines[-1] == "absent" or len(lines) < 3:
            return None
        return {"home": lines[0], "group": lines[1], "groups": lines[2].split()}


class JsonFile(FactBase):
    """A JSON file as data: ``None`` when absent, ``{"__invalid__": text}`` when not valid JSON.

    Example ``/etc/docker/daemon.json`` after ``nvidia-ctk runtime configure --runtime=docker``::

        {"runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}}
    """

    def command(self, path: str) -> str:
        return f"cat {path} 2>/dev/null || true"

    def process(self, output: list[str]) -> dict[str, Any] | None:
        text = "\n".join(output)
        if not text.strip():
            return None
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested past Python's limit
            return {"__invalid__": text}
        return value if isinstance(value, dict) else {"__invalid__": text}


_PRIMARY_FINGERPRINTS = "awk -F: '$1==\"pub\"{p=1;next} $1==\"fpr\"&&p{print $10;p=0}'"


def primary_fingerprints_command(path: str) -> str:
    """Shell that prints the primary key fingerprints of an OpenPGP keyring, one per line."""
    return f"gpg --show-keys --with-colons {path} 2>/dev/null | {_PRIMARY_FINGERPRINTS}"


class KeyringFingerprints(FactBase):
    """Primary key fingerprints in a keyring file: ``None`` when the file is absent.

    Why not pyinfra's ``GpgKeyrings``: it lists a whole directory and fails when the directory does
    not exist yet; this reads one file and answers "absent" as data. Output read (``gpg --show-keys
    --with-colons``, ``fpr`` records right after a ``pub`` record)::

        present
        9DC858229FC7DD38854AE2D88D81803C0EBFCD88
    """

    def command(self, path: str) -> str:
        return f"if [ -e {path} ]; then echo present; {primary_fingerprints_command(path)}; fi"

    def process(self, output: list[str]) -> list[str] | None:
        if not output or output[0].strip() != "present":
            return None
        return sorted(line.strip().upper() for line in output[1:] if line.strip())


class K3sVersions(FactBase):
    """The installed ``k3s`` binary's release and the release the running API server reports.

    Output read::

        binary=k3s version v1.35.6+k3s1 (c1c4ed5e)
        running:
        {"major": "1", "minor": "35", "gitVersion": "v1.35.6+k3s1", ...}

    ``running`` is ``None`` when no server answers (stopped, not installed, or an agent node).
    """

    def command(self) -> str:
        return ('echo "binary=$(k3s --version 2>/dev/null | head -n 1)"; echo "running:"; '
                "k3s kubectl get --raw /version --request-timeout=5s 2>/dev/null || true")

    def default(self) -> dict[str, str | None]:
        return {"binary": None, "running": None}

    def process(self, output: list[str]) -> dict[str, str | None]:
        result = self.default()
        rest: list[str] = []
        for i, line in enumerate(output):
            if line.startswith("binary="):
                found = re.search(r"\bv\d+\.\d+\.\d+\+k3s\d+", line)
                result["binary"] = found.group(0) if found else None
            elif line.strip() == "running:":
                rest = output[i + 1:]
                break
        try:
            answer = json.loads("\n".join(rest))
        except (ValueError, RecursionError):
            answer = None
        version = answer.get("gitVersion") if isinstance(answer, dict) else None
        result["running"] = version if isinstance(version, str) and version else None
        return result
