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
    (["status", "--ca-file", "/nonexistent/ca.pem"], "CA file /nonexistent/ca.pem"),
    (["status", "--connect-timeout", "-1"], "'-1' is not a number of seconds"),
    (["status", "--read-timeout", "0"], "'0' is not a number of seconds"),
    (["status", "--read-timeout", "nan"], "'nan' is not a number of seconds"),
    (["power", "on", "--wait", "--timeout", "-5"], "'-5' is not a number of seconds"),
    (["media", "insert", "http://127.0.0.1/x.iso", "--timeout", "inf"], "'inf' is not a number of seconds"),
])
def test_bad_connection_options_are_one_line(emulator, run_cli, capsys, args, needle):
    try:
        result = run_cli(emulator, *args)
        rc, err = result.rc, result.err
    except SystemExit as exit_:  # argparse's refusal (one line, see bmc.cli._Parser)
        rc, err = exit_.code, capsys.readouterr().err
    assert rc == 2 and _one_line(err) and needle in err, err


def test_bad_timeouts_in_host_data_are_one_line(emulator, run_cli, tmp_path):
    hosts = tmp_path / "hosts.toml"
    hosts.write_text(f'[hosts.box]\nbmc_url = "{emulator.url}"\nbmc_read_timeout = -3\n')
    result = run_cli(emulator, "status", "--host", "box", env={"OMNI_HOSTS_FILE": str(hosts)})
    assert result.rc == 2 and _one_line(result.err) and "bmc_read_timeout -3" in result.err


def test_a_bmc_that_never_answers_is_asked_twice_says_so_and_stops_in_bounded_time(run_cli):
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
    assert "within 1 s (asked twice, 2 s in all)" in result.err, result.err
    assert len([r for r in requests_seen if r.startswith(b"GET ")]) == 2, requests_seen
    assert elapsed < 6, f"{elapsed:.1f} s"
