"""Start and stop one inference server: own process group, env + prefix, health wait, kept log.

Why a process group: engines fork helpers (SGLang schedulers, KTransformers workers, numactl's
exec'd child); SIGTERM then SIGKILL to the group is the only stop that leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from bench.engines.base import Launch
from bench.memory import kill_group
from omni.files import atomic_write_bytes
from omni.secrets import MASK, redact_text

_ERROR = re.compile(r"\b(error|failed|failure|fatal|invalid|unrecognized|unknown (argument|option)|cannot|"
                    r"can't|could not|not found|no such|out of memory|oom|abort(ed)?|exception|"
                    r"denied|refused|illegal|segmentation fault)\b", re.IGNORECASE)
_GENERIC = re.compile(r"exiting due to|^Traceback \(most recent call last\)|^\s*File \"", re.IGNORECASE)


def error_line(log_tail: str, limit: int = 300) -> str:
    """The server's own words for why it failed: the first error-like line of its log tail.

    Why the first: llama.cpp prints the cause (`error loading model: ...`) and then generic lines
    (`exiting due to model loading error`); a Python server's traceback ends in the exception line.
    """
    lines = [ln.strip() for ln in log_tail.splitlines() if ln.strip()]
    if any(ln.startswith("Traceback (most recent call last)") for ln in lines):
        after = lines[max(i for i, ln in enumerate(lines) if ln.startswith("Traceback")):]
        tail = [ln for ln in after if not ln.startswith(("File ", "Traceback", "^", "~"))]
        if tail:
            return tail[-1][:limit]
    hits = [ln for ln in lines if _ERROR.search(ln) and not _GENERIC.search(ln)]
    return (hits[0] if hits else lines[-1] if lines else "")[:limit]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def check_bind_host(host: str) -> None:
    """The server can listen on ``host`` here (a local address); else SpecError before any launch."""
    from bench.spec import SpecError

    try:
        free_port(host)
    except OSError as err:  # gaierror: no such name; EADDRNOTAVAIL: another machine's address
        raise SpecError(f"server.host {host!r} is not an address of this machine "
                        f"({err.strerror or err}): use 127.0.0.1 (the server runs here)") from None


def port_taken(host: str, port: int) -> bool:
    """Something already listens on (host, port): binding it fails."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def listeners(port: int) -> set[int | None]:
    """Pids listening on TCP ``port`` (None: a socket whose owner we may not see, another user's)."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return {None}
    return {c.pid for c in conns if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port}


class PortBusy(OSError):
    """The launch's port answers for another process; strerror is the one-line reason."""


def http_json(url: str, body: dict[str, Any] | None = None, timeout: float = 10) -> tuple[int, Any]:
    """GET (or POST `body`) → (status, parsed JSON or text). Status 0: no connection."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    except (urllib.error.URLError, OSError):
        return 0, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


class ServerProcess:
    """One running server; the log goes to `log_path` (stdout and stderr together)."""

    def __init__(self, launch: Launch, log_path: Path) -> None:
        self.launch = launch
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.pgid = 0
        self.started = 0.0

    @property
    def address(self) -> tuple[str, int]:
        url = urllib.parse.urlsplit(self.launch.base_url)
        return url.hostname or "127.0.0.1", url.port or 80

    def start(self) -> None:
        """Start the server; PortBusy when its port is already taken (we would measure someone else)."""
        host, port = self.address
        if port_taken(host, port):
            raise PortBusy(0, f"port {port} on {host} is already in use by another process: stop it, or "
                              "leave server.port unset so each launch gets a free port")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        if self.launch.secrets:  # the server may echo them until scrub_log: only we read it meanwhile
            os.fchmod(log.fileno(), 0o600)
        log.write(f"# omni: {self.launch.command}\n".encode())
        log.flush()
        env = {**os.environ, **self.launch.env}
        self.started = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                self.launch.prefix + self.launch.argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        finally:
            log.close()
        self.pgid = self.proc.pid  # start_new_session: the child leads its own group

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def exit_code(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def wait_healthy(self, timeout_s: float, abort: Any = None) -> tuple[bool, str]:
        """Poll the health URL until 200; fail fast when the process exits."""
        url = self.launch.base_url + self.launch.health_path
        deadline = self.started + timeout_s
        while time.monotonic() < deadline:
            code = self.exit_code()
            if code is not None:
                return False, f"server exited with code {code} before becoming healthy"
            if abort is not None and abort.is_set():
                return False, "stopped by the OOM guard while loading"
            status, _ = http_json(url, timeout=2)
            if status == 200:
                return self._answered_by_us()
            time.sleep(0.1)
        return False, f"not healthy at {url} within {timeout_s:.0f} s (see the log)"

    def _answered_by_us(self) -> tuple[bool, str]:
        """The process listening on our port is our server (or its child), not one that took it."""
        host, port = self.address
        pids = listeners(port)
        ours = {self.pid}
        with contextlib.suppress(psutil.Error):
            ours |= {child.pid for child in psutil.Process(self.pid).children(recursive=True)}
        if pids and pids <= ours:
            return True, ""
        others = ", ".join(sorted(str(pid) if pid else "a process we cannot see" for pid in pids - ours))
        return False, (f"port {port} on {host} answers for {others or 'no listener we can see'}, not our "
                       f"server (pid {self.pid}): stop the other server or leave server.port unset")

    def stop(self, timeout_s: float) -> str:
        """SIGTERM the group, then SIGKILL after `timeout_s`; the log is scrubbed of secrets. Returns
        how it ended."""
        try:
            return self._stop(timeout_s)
        finally:
            self.scrub_log()

    def scrub_log(self) -> None:
        """Rewrite the server's log with this launch's secret values as ``***`` (a server may echo
        its env or flags); atomic, and only when one is there."""
        secrets = [s.encode() for s in self.launch.secrets if len(s) >= 4]
        try:
            data = self.log_path.read_bytes() if secrets else b""
        except OSError:
            return
        if any(secret in data for secret in secrets):
            for secret in secrets:
                data = data.replace(secret, MASK.encode())
            atomic_write_bytes(self.log_path, data)
        with contextlib.suppress(OSError):
            self.log_path.chmod(0o644)  # holds no secret now

    def _stop(self, timeout_s: float) -> str:
        if not self.proc:
            return "not started"
        if self.proc.poll() is not None:
            kill_group(self.pgid, signal.SIGKILL)  # leftovers of a dead leader
            return f"already exited ({self.proc.returncode})"
        kill_group(self.pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
            how = "terminated"
        except subprocess.TimeoutExpired:
            how = "killed after SIGTERM timeout"
        kill_group(self.pgid, signal.SIGKILL)
        self.proc.wait()
        return how

    def log_tail(self, lines: int = 40) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 64 * 1024))
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return redact_text("\n".join(text.splitlines()[-lines:]), self.launch.secrets)

    def log_text(self, limit: int = 4 * 2**20) -> str:
        try:
            with self.log_path.open("rb") as f:
                return f.read(limit).decode(errors="replace")
        except OSError:
            return ""
