"""pytest helpers: start the extended sushy-emulator (``redfish_emulator.py``) and a loopback ISO server."""

from __future__ import annotations

import contextlib
import copy
import functools
import http.server
import os
import re
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redfish_emulator import ATTRIBUTES

EMULATOR_SCRIPT = Path(__file__).with_name("redfish_emulator.py")

USERNAME = "omni-admin"
PASSWORD = "emulator-only-pw"  # test fixture credential for a loopback emulator


@dataclass
class Emulator:
    url: str
    process: subprocess.Popen
    output: list[str]
    username: str = USERNAME
    password: str = PASSWORD

    @property
    def env(self) -> dict[str, str]:
        """Environment for the CLI/pyinfra: where the BMC is and the credentials (by variable)."""
        return {
            "OMNI_BMC_URL": self.url,
            "OMNI_BMC_USERNAME": self.username,
            "OMNI_BMC_PASSWORD": self.password,
        }

    def get(self, path: str) -> Any:
        import requests

        with (
            warnings.catch_warnings()
        ):  # a test-side peek at a loopback emulator; the code under test verifies TLS
            warnings.simplefilter("ignore")
            reply = requests.get(
                self.url + path, auth=(self.username, self.password), timeout=10, verify=False
            )
        reply.raise_for_status()
        return reply.json()

    def count(self, method: str, suffix: str) -> int:
        counts = self.get("/omni-test/requests")["counts"]
        return sum(n for key, n in counts.items() if key.startswith(method + " ") and key.endswith(suffix))

    def system_path(self) -> str:
        return self.get("/redfish/v1/Systems")["Members"][0]["@odata.id"]


def _htpasswd(path: Path) -> None:
    import bcrypt

    digest = bcrypt.hashpw(
        PASSWORD.encode(), bcrypt.gensalt(rounds=4)
    ).decode()  # cheapest cost bcrypt allows
    path.write_text(f"{USERNAME}:{digest}\n")


@contextlib.contextmanager
def running_emulator(
    workdir: Path, tls: tuple[Path, Path] | None = None, **options: Any
) -> Iterator[Emulator]:
    """Start the emulator (options become OMNI_* config keys, e.g. ami_mode=True) and stop it after.

    ``tls=(cert, key)`` serves HTTPS with that certificate.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    _htpasswd(workdir / "htpasswd")
    (workdir / "tmp").mkdir(exist_ok=True)
    config = {
        "SUSHY_EMULATOR_FAKE_DRIVER": True,
        "SUSHY_EMULATOR_LISTEN_IP": "127.0.0.1",
        "SUSHY_EMULATOR_LISTEN_PORT": 0,
        "SUSHY_EMULATOR_STATE_DIR": str(workdir / "state"),
        "SUSHY_EMULATOR_AUTH_FILE": str(workdir / "htpasswd"),
        "OMNI_POWER_DELAY_S": 0.5,
    } | {f"OMNI_{k.upper()}": v for k, v in options.items()}
    if tls:
        config |= {"SUSHY_EMULATOR_SSL_CERT": str(tls[0]), "SUSHY_EMULATOR_SSL_KEY": str(tls[1])}
    cfg = workdir / "emulator.conf.py"
    cfg.write_text("".join(f"{k} = {v!r}\n" for k, v in config.items()))
    env = dict(os.environ, TMPDIR=str(workdir / "tmp"), PYTHONUNBUFFERED="1")
    env.pop("SUSHY_EMULATOR_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, str(EMULATOR_SCRIPT), "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    output: list[str] = []
    found = threading.Event()
    port: list[str] = []

    def drain() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            output.append(line)
            hit = re.search(r"Running on (https?://127\.0\.0\.1:\d+)", line)
            if hit and not port:
                port.append(hit.group(1))
                found.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        if not found.wait(30):
            raise RuntimeError("sushy-emulator did not start within 30 s:\n" + "".join(output[-30:]))
        yield Emulator(port[0], proc, output)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def serving_directory(directory: Path) -> Iterator[str]:
    """A loopback http.server for ISO files; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_args: Any) -> None:
        pass


def attribute_defaults() -> dict[str, Any]:
    return copy.deepcopy({k: v for k, (_s, v) in ATTRIBUTES.items()})
