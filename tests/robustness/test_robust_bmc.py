"""Issue 19, classes 8 and 11 (bmc): credentials never in a URL, output or rollback file; a password
file others can read is refused; a missing CA file, a bad timeout and a BMC that accepts but never
answers each give one line, in bounded time, with the GET sent once. Real sushy-tools emulator and
real sockets on loopback."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

import pytest

from bmc.rollback import save
from tests.bmc.emulator_harness import PASSWORD, USERNAME

pytestmark = pytest.mark.slow


def _one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1 and "Traceback" not in text


def test_credentials_in_the_url_are_refused_and_never_echoed(emulator, run_cli):
    url = emulator.url.replace("://", f"://{USERNAME}:{PASSWORD}@")
    result = run_cli(emulator, "status", "--json", env={"OMNI_BMC_URL": url})
    assert result.rc == 2 and _one_line(result.err)
    assert "OMNI_BMC_PASSWORD_FILE" in result.err
    assert PASSWORD not in result.out + result.err and f"{USERNAME}:" not in result.out + result.err


def test_the_output_boundary_blanks_the_password_whatever_carries_it(emulator, run_cli, tmp_path):
    """A BMC error that echoes our password back (here: as the system id we asked for)."""
    result = run_cli(emulator, "status", "--system", PASSWORD, "--json")
    assert result.rc != 0 and PASSWORD not in result.out + result.err and "***" in result.err


def test_rollback_file_never_holds_url_credentials(tmp_path: Path):
    path = save(tmp_path, bmc_url=f"https://{USERNAME}:{PASSWORD}@192.0.2.10:8443", system_id="1",
                attributes={"A": 1}, pending_before={}, reason="test")
    assert PASSWORD not in path.name and PASSWORD not in path.read_text() and USERNAME not in path.name


def test_password_file_readable_by_others_is_refused(emulator, run_cli, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o644)
    env = {"OMNI_BMC_PASSWORD": "", "OMNI_BMC_PASSWORD_FILE": str(secret)}
    result = run_cli(emulator, "status", env=env)
    assert result.rc == 2 and _one_line(result.err) and "chmod 600" in result.err
    secret.chmod(0o600)
    assert run_cli(emulator, "status", env=env).rc == 0


@pytest.mark.parametrize("args,needle", [
    (["--ca-file", "/nonexistent/ca.pem"], "CA file /nonexistent/ca.pem"),
    (["--connect-timeout", "-1"], "connect timeout -1"), (["--read-timeout", "0"], "read timeout 0"),
    (["--read-timeout", "nan"], "read timeout nan")])
def test_bad_connection_options_are_one_line(emulator, run_cli, args, needle):
    result = run_cli(emulator, "status", *args)
    assert result.rc == 2 and _one_line(result.err) and needle in result.err


def test_a_bmc_that_never_answers_costs_one_read_timeout_and_one_get(run_cli):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    requests_seen: list[bytes] = []
    held: list[socket.socket] = []

    def accept() -> None:
        listener.settimeout(0.2)
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)  # read the request, never answer
            conn.settimeout(2)
            with contextlib.suppress(OSError):
                requests_seen.append(conn.recv(4096))

    done = threading.Event()
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        result = run_cli(None, "status", "--url", f"http://127.0.0.1:{port}", "--read-timeout", "1",
                         env={"OMNI_BMC_USERNAME": "u", "OMNI_BMC_PASSWORD": "p"})
    finally:
        elapsed = time.monotonic() - started
        done.set()
        thread.join(5)
        for conn in [listener, *held]:
            conn.close()
    assert result.rc == 1 and _one_line(result.err)
    assert len([r for r in requests_seen if r.startswith(b"GET ")]) == 1, requests_seen
    assert elapsed < 5, f"{elapsed:.1f} s"
