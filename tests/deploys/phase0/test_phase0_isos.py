"""Phase 0 ISOs: the verified download, and the real nginx serving them with Range (checked, recorded)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.request

from deploys.bmc.isos import download_command
from deploys.core.pyinfra_run import plan
from tests.deploys.phase0.phase0_env import (
    ISO_CHECK,
    SHA,
    env,
    iso_check_data,
)
from tests.sysdeps import ensure_binary


def test_download_verifies_before_moving_into_place(tmp_path, upstream):
    ensure_binary("curl", "curl")
    served, port = upstream
    payload = os.urandom(200_000)
    (served / "upstream.iso").write_bytes(payload)
    target = tmp_path / "iso"
    target.mkdir()
    image = {
        "name": "ubuntu.iso",
        "url": f"http://127.0.0.1:{port}/upstream.iso",
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    bad = subprocess.run(
        ["sh", "-c", download_command(str(target), {**image, "sha256": SHA})], capture_output=True, text=True
    )
    assert bad.returncode != 0 and f"sha256 mismatch for ubuntu.iso: expected {SHA}, got" in bad.stderr
    assert list(target.iterdir()) == []  # neither the image nor the part file is left behind
    good = subprocess.run(["sh", "-c", download_command(str(target), image)], capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    assert (target / "ubuntu.iso").read_bytes() == payload and not (target / "ubuntu.iso.part").exists()


def test_nginx_answers_range_requests_with_the_files_bytes(nginx_iso_server):
    served, port = nginx_iso_server
    payload = os.urandom(300_000)
    (served / "ubuntu.iso").write_bytes(payload)
    (served / "ubuntu.iso").chmod(0o644)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/ubuntu.iso", headers={"Range": "bytes=1000-1999"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 206
        assert answer.headers["Content-Range"] == f"bytes 1000-1999/{len(payload)}"
        assert answer.read() == payload[1000:2000]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ubuntu.iso", timeout=10) as whole:
        assert hashlib.sha256(whole.read()).hexdigest() == hashlib.sha256(payload).hexdigest()


def test_served_iso_is_checked_then_recorded_for_the_bmc(tmp_path, nginx_iso_server):
    served, port = nginx_iso_server
    payload = os.urandom(100_000)
    (served / "ubuntu.iso").write_bytes(payload)
    (served / "ubuntu.iso").chmod(0o644)
    sha = hashlib.sha256(payload).hexdigest()
    data = iso_check_data(served, port, sha)
    isos = data["isos"]
    result = plan(ISO_CHECK, [("@local", data)], execute=True, env=env(tmp_path))
    assert all(o.success for o in result.ops), result.output[-2000:]
    record = json.loads((tmp_path / "backups" / "iso-verified.json").read_text())["isos"]["ubuntu.iso"]
    assert record["sha256"] == sha and record["size_bytes"] == len(payload)
    assert record["served_url"] == f"http://127.0.0.1:{port}/ubuntu.iso"

    isos["images"][0]["sha256"] = SHA
    failed = plan(ISO_CHECK, [("@local", data)], execute=True, env=env(tmp_path / "other"))
    assert [o.success for o in failed.ops] == [False]
    assert f"ubuntu.iso: sha256 {sha} is not {SHA}" in failed.output
    assert not (tmp_path / "other" / "backups" / "iso-verified.json").exists()


def test_a_server_that_ignores_range_is_not_recorded(tmp_path, upstream):
    """Python's http.server (what phase 0 used to run) answers 200 to a Range request: refused."""
    served, port = upstream
    payload = os.urandom(100_000)
    (served / "ubuntu.iso").write_bytes(payload)
    data = iso_check_data(served, port, hashlib.sha256(payload).hexdigest())
    failed = plan(ISO_CHECK, [("@local", data)], execute=True, env=env(tmp_path))
    assert [o.success for o in failed.ops] == [False]
    assert "HTTP 200, Content-Range None (want 206, bytes 50000-99999/100000)" in failed.output
    assert "the server ignores Range requests" in failed.output
    assert not (tmp_path / "backups" / "iso-verified.json").exists()


# ---------------------------------------------------------- Ubuntu autoinstall (deploys/bmc/autoinstall.py)
