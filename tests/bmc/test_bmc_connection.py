"""Connecting: credentials, unreachable BMCs, TLS verification, and one-line failures."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from emulator_harness import PASSWORD, running_emulator


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _one_line(text: str) -> bool:
    return text.strip().count("\n") == 0 and "Traceback" not in text


def test_wrong_password_is_one_line_and_never_echoed(emulator, run_cli):
    result = run_cli(emulator, "status", "--json", env={"OMNI_BMC_PASSWORD": "not-the-password"})
    assert result.rc == 1
    assert _one_line(result.err)
    assert "rejected user 'omni-admin' (HTTP 401)" in result.err and "$OMNI_BMC_PASSWORD" in result.err
    assert result.json["ok"] is False and result.json["error"] == "auth"
    assert "not-the-password" not in result.out + result.err
    assert PASSWORD not in result.out + result.err


def test_unreachable_bmc_fails_fast(run_cli):
    url = f"http://127.0.0.1:{_closed_port()}"
    start = time.monotonic()
    result = run_cli(None, "status", "--url", url, env={"OMNI_BMC_USERNAME": "u", "OMNI_BMC_PASSWORD": "p"})
    elapsed = time.monotonic() - start
    assert result.rc == 1
    assert elapsed < 3, f"took {elapsed:.1f} s (sushy's defaults take ~27 s)"
    assert _one_line(result.err)
    assert (
        f"cannot reach the BMC at {url} (connection refused)" in result.err and "OMNI_BMC_URL" in result.err
    )


@pytest.fixture
def black_hole():
    """A loopback listener with a full accept queue: new connects hang, like a BMC whose network is gone."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = [socket.socket() for _ in range(4)]
    for filler in fillers:
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
    time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    for sock in [listener, *fillers]:
        sock.close()


def test_silent_bmc_fails_after_the_connect_timeout(black_hole, run_cli):
    start = time.monotonic()
    result = run_cli(
        None,
        "status",
        "--url",
        black_hole,
        "--connect-timeout",
        "0.5",
        env={"OMNI_BMC_USERNAME": "u", "OMNI_BMC_PASSWORD": "p"},
    )
    elapsed = time.monotonic() - start
    assert result.rc == 1 and _one_line(result.err)
    assert f"the BMC at {black_hole} did not accept a connection within 0.5 s" in result.err
    assert 0.9 < elapsed < 3, f"{elapsed:.1f} s: one connect retry expected"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "no BMC URL configured: set OMNI_BMC_URL"),
        (
            {"OMNI_BMC_URL": "http://127.0.0.1:9", "OMNI_BMC_PASSWORD": "p"},
            "BMC username missing: export OMNI_BMC_USERNAME",
        ),
        ({"OMNI_BMC_URL": "http://127.0.0.1:9", "OMNI_BMC_USERNAME": "u"}, "BMC password missing"),
        (
            {"OMNI_BMC_URL": "192.0.2.10", "OMNI_BMC_USERNAME": "u", "OMNI_BMC_PASSWORD": "p"},
            "has no http:// or https://",
        ),
        (
            {
                "OMNI_BMC_URL": "http://127.0.0.1:9",
                "OMNI_BMC_USERNAME": "u",
                "OMNI_BMC_PASSWORD_FILE": "/nonexistent/pw",
            },
            "password file /nonexistent/pw does not exist",
        ),
    ],
)
def test_configuration_errors_exit_2_before_any_traffic(run_cli, env, expected):
    result = run_cli(None, "power", "on", env=env)
    assert result.rc == 2
    assert _one_line(result.err) and expected in result.err


def test_password_file_is_read(emulator, run_cli, tmp_path):
    secret = tmp_path / "bmc-password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    env = {"OMNI_BMC_PASSWORD": "", "OMNI_BMC_PASSWORD_FILE": str(secret)}
    assert run_cli(emulator, "status", env=env).rc == 0


def test_credentials_are_not_accepted_as_flags(emulator, run_cli):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(emulator, "status", "--password", PASSWORD)
    assert exit_info.value.code == 2


def test_unknown_system_id_lists_the_ones_there(emulator, run_cli):
    result = run_cli(emulator, "status", "--system", "Self")
    assert result.rc == 1 and _one_line(result.err)
    assert "system 'Self' not found" in result.err and "27946b59" in result.err and "--system" in result.err


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, server.pem, server.key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def build(subject, issuer, key, signer, ca):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "omni test CA")])
    ca = build(ca_name, ca_name, ca_key, ca_key, True)
    leaf = build(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), ca_name, key, ca_key, False
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


def test_tls_is_verified_by_default(tmp_path, run_cli):
    ca, cert, key = _certificates(tmp_path)
    with running_emulator(tmp_path / "tls-emulator", tls=(cert, key)) as emu:
        assert emu.url.startswith("https://")
        refused = run_cli(emu, "status")
        assert refused.rc == 1 and _one_line(refused.err)
        assert "TLS verification of" in refused.err and "--ca-file" in refused.err
        assert run_cli(emu, "status", "--ca-file", str(ca)).rc == 0
        assert run_cli(emu, "status", "--insecure").rc == 0
        assert run_cli(emu, "status", env={"OMNI_BMC_CA_FILE": str(ca)}).rc == 0


def test_python_dash_m_bmc_is_the_entry_point(emulator):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")} | emulator.env
    run = subprocess.run(
        [sys.executable, "-m", "bmc", "status", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["power_state"] == "Off"
    bad = subprocess.run(
        [sys.executable, "-m", "bmc", "power", "sideways"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
