"""The shell phase 4 runs on hosts, run for real here: gpg, sha256sum, sh and the facts' commands.

The fingerprint check runs against a key gpg generates on the spot; the verification commands run
with ``nvidia-smi``/``docker``/``k3s`` stand-ins on PATH that print what the real tools print (the
GPU list is the H200 machine's), because this machine has no GPU: what is tested is our counting
and our messages, the real runs are on the GPU box.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from deploys.runtime.apt import fingerprint_check_command
from deploys.runtime.gpu_smoke import docker_gpus_command, gpu_pod_command
from deploys.runtime.k3s import script_check_command
from deploys.runtime.settings import K3sSettings
from facts.runtime import JsonFile, K3sVersions, KeyringFingerprints, SystemdBooted
from tests.sysdeps import ensure_binary

ROOT = Path(__file__).resolve().parents[3]
H200_UUID = "GPU-9b26f152-d3b2-bb66-7015-e67aeeeb525b"  # tests/fixtures/hw/h200-nvidia-smi-query-gpu-csv.txt


def sh(command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def keyring(tmp_path_factory) -> tuple[Path, str]:
    """A real OpenPGP public keyring with one fresh ed25519 key, and its fingerprint."""
    gpg = ensure_binary("gpg", "gnupg")
    home = tmp_path_factory.mktemp("gnupg")
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run([gpg, "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key",
                    "Phase4 Test <phase4@example.invalid>", "ed25519", "sign", "never"],
                   env=env, check=True, capture_output=True, timeout=60)
    listing = subprocess.run([gpg, "--with-colons", "--list-keys"], env=env, check=True, capture_output=True,
                             text=True).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    path = home / "vendor.gpg"
    path.write_bytes(subprocess.run([gpg, "--export"], env=env, check=True, capture_output=True).stdout)
    return path, fingerprint


def test_keyring_fingerprints_fact_on_a_real_keyring(keyring, tmp_path):
    path, fingerprint = keyring
    output = sh(KeyringFingerprints().command(str(path))).stdout.splitlines()
    assert KeyringFingerprints().process(output) == [fingerprint]
    missing = sh(KeyringFingerprints().command(str(tmp_path / "absent.gpg")))
    assert missing.returncode == 0 and KeyringFingerprints().process(missing.stdout.splitlines()) is None


def test_fingerprint_check_keeps_the_pinned_key_and_deletes_any_other(keyring, tmp_path):
    path, fingerprint = keyring
    ok = sh(fingerprint_check_command(str(path), [fingerprint], "Vendor"))
    assert ok.returncode == 0 and path.exists()
    copy = tmp_path / "copy.gpg"
    copy.write_bytes(path.read_bytes())
    wrong = sh(fingerprint_check_command(str(copy), ["9DC858229FC7DD38854AE2D88D81803C0EBFCD88"], "Docker"))
    assert wrong.returncode == 1 and not copy.exists()
    assert wrong.stderr.strip() == (f"Docker signing key fingerprint mismatch: got {fingerprint}, want "
                                    "9DC858229FC7DD38854AE2D88D81803C0EBFCD88; check the key URL and the "
                                    "pinned key_fingerprints")


def test_install_script_check_with_and_without_a_pin(tmp_path):
    script = tmp_path / "install.sh"
    script.write_text("#!/bin/sh\necho k3s\n")
    digest = hashlib.sha256(script.read_bytes()).hexdigest()

    def settings(sha: str | None) -> K3sSettings:
        base = {"version": "v1.35.6+k3s1", "install_script_url": "https://example.invalid/{version}/install.sh",
                "install_script_sha256": sha, "exec": None, "config": {}, "agent_config": {},
                "server_url": None}
        return K3sSettings.model_validate(base)

    def run(cfg: K3sSettings) -> subprocess.CompletedProcess:
        return sh(script_check_command(cfg).replace(cfg.script_path, str(script)))

    assert run(settings(digest)).returncode == 0
    unpinned = run(settings(None))
    assert unpinned.returncode == 1 and f"set k3s.install_script_sha256 = {digest}" in unpinned.stderr
    assert len(unpinned.stderr.strip().splitlines()) == 1 and script.exists()
    wrong = run(settings("a" * 64))
    assert wrong.returncode == 1 and f"sha256 {digest} is not the pinned {'a' * 64}" in wrong.stderr
    assert not script.exists()  # the next run downloads it again


def test_fact_commands_run_in_a_real_shell(tmp_path):
    daemon = tmp_path / "daemon.json"
    daemon.write_text((Path(__file__).parent / "fixtures/daemon-json-after-nvidia-ctk.json").read_text())
    value = JsonFile().process(sh(JsonFile().command(str(daemon))).stdout.splitlines())
    assert value["runtimes"]["nvidia"]["path"] == "nvidia-container-runtime"
    versions = sh(K3sVersions().command(), env={"PATH": "/usr/bin:/bin"})  # no k3s here
    assert versions.returncode == 0 and K3sVersions().process(versions.stdout.splitlines()) == {
        "binary": None, "running": None}
    booted = sh(SystemdBooted().command())
    assert SystemdBooted().process(booted.stdout.splitlines()) is Path("/run/systemd/system").is_dir()


def _stand_ins(tmp_path: Path, gpus_in_container: int, pod_phase: str = "Succeeded") -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    gpu_list = "\n".join(f"GPU {i}: NVIDIA H200 (UUID: {H200_UUID[:-1]}{i})" for i in range(2))
    in_container = "\n".join(gpu_list.splitlines()[:gpus_in_container])
    scripts = {
        "nvidia-smi": f"#!/bin/sh\nprintf '%s\\n' '{gpu_list}'\n",
        "docker": f"#!/bin/sh\nprintf '%s\\n' '{in_container}'\n",
        "k3s": ("#!/bin/sh\n"
                f"case \"$*\" in *'get pod'*) echo {pod_phase};; *logs*) printf '%s\\n' '{in_container}';; "
                "*apply*) cat > \"$(dirname \"$0\")/applied.yaml\";; esac\n"),
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin"}


def test_docker_gpu_check_counts_every_gpu(tmp_path):
    image = "nvidia/cuda:12.8.0-base-ubuntu24.04"
    assert sh(docker_gpus_command(image), env=_stand_ins(tmp_path, 2)).returncode == 0
    short = sh(docker_gpus_command(image), env=_stand_ins(tmp_path / "one", 1))
    assert short.returncode == 1
    assert short.stderr.strip().startswith(f"docker run --gpus all {image} sees 1 of 2 GPUs")


def test_gpu_pod_check_applies_the_pod_and_counts_gpus(tmp_path):
    env = _stand_ins(tmp_path, 2)
    ok = sh(gpu_pod_command("nvidia/cuda:12.8.0-base-ubuntu24.04", 4), env=env)
    assert ok.returncode == 0, ok.stderr
    applied = (tmp_path / "bin" / "applied.yaml").read_text()
    assert "runtimeClassName: nvidia" in applied and "nvidia/cuda:12.8.0-base-ubuntu24.04" in applied
    failed = sh(gpu_pod_command("nvidia/cuda:12.8.0-base-ubuntu24.04", 4),
                env=_stand_ins(tmp_path / "failed", 2, pod_phase="Failed"))
    assert failed.returncode == 1 and "phase Failed" in failed.stderr
