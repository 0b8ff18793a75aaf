"""Phase 0 and restore: @fake plans, a real backup/restore round trip on @local, real ISO checks."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import jinja2
import pytest

from bench.server import free_port
from deploys.bmc.isos import NGINX, TEMPLATES, download_command
from deploys.core.pyinfra_run import plan
from tests.sysdeps import ensure_binary, extract_from_deb

ROOT = Path(__file__).resolve().parents[3]
PHASE0, RESTORE = ROOT / "deploys/phase0.py", ROOT / "deploys/restore.py"
ISO_CHECK = Path(__file__).with_name("iso_check_deploy.py")
SHA = "a" * 64
GROUPS = {"workstations": ["@fake"], "iso_servers": ["@fake"]}


def iso_data(**http) -> dict:
    return {
        "http": {"bind": "127.0.0.1", **http},
        "images": [{"name": "ubuntu.iso", "url": "https://example.invalid/ubuntu.iso", "sha256": SHA}],
    }


def fake(**data) -> tuple[str, dict]:
    responses = {
        "test -e": [
            "present /var/lib/letta",
            "absent /etc/pve",
            "absent /var/lib/pve-cluster/config.db",
            "present /etc/network/interfaces",
            "absent /root/manifests",
        ]
    }
    responses["test -d /run/systemd/system"] = "booted"
    return "@fake", {"isos": iso_data(), "iso_http_port": 8080, "fake_responses": responses, **data}


def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "OMNI_BACKUP_DIR": str(tmp_path / "backups"),
        "OMNI_ISO_RECORD": str(tmp_path / "backups" / "iso-verified.json"),
    }


def test_fresh_plan_backs_up_present_paths_stages_isos_and_checks(tmp_path):
    result = plan(PHASE0, [fake()], groups=GROUPS, env=env(tmp_path))
    assert result.error is None, result.error
    names = [o.short for o in result.ops]
    assert "Archive /var/lib/letta" in names and "Archive /etc/network/interfaces" in names  # runbook 0.1
    assert result.op("Archive /var/lib/letta").commands[0].startswith("umask 077 && tar -C / -czf")
    private = next(i for i, n in enumerate(names) if n.endswith("on the controller (mode 0700)"))
    assert private < names.index("Pull letta.tar.gz")  # the private folder comes first
    assert not any("/etc/pve" in n or "manifests" in n for n in names)  # missing: reported, not fatal
    assert "backup source proxmox-etc=/etc/pve does not exist" in result.output
    download = result.op("Download and verify ubuntu.iso").commands[0]
    assert ".part" in download and f'if [ "$actual" != {SHA} ]; then rm -f' in download
    assert download.endswith("mv /srv/omni-iso/ubuntu.iso.part /srv/omni-iso/ubuntu.iso")
    unit = result.op("Install the omni-iso-http unit")
    assert unit.will_change and names[-1] == "Write the phase-0 ready marker when every check passed"
    assert result.op("Restart omni-iso-http").conditional
    # served by nginx (HTTP Range), on the host data's one ISO port
    assert "nginx" in " ".join(result.op("Install nginx").commands)
    assert result.op("Install the omni-iso-http nginx configuration").will_change


MODEL = {"phase0_steps": "model", "model_download": {"include": "Q4/*"},
         "model": {"path": "/nvme/m.gguf", "size_bytes": 400 * 10**9}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {
                "isos": {
                    **iso_data(),
                    "images": [{"name": "u.iso", "url": "https://example.invalid/u.iso", "sha256": None}],
                }
            },
            "isos.images[0] (u.iso): set sha256 to the publisher's SHA256SUMS value (mandatory)",
        ),
        ({"isos": iso_data(bind=None)}, "isos.http.bind is not set"),
        ({"isos": iso_data(port=8081)}, "isos.http.port is no longer read: set the host data's iso_http_p"),
        ({"iso_http_port": "8080"}, "iso_http_port='8080' is not a TCP port"),
        ({"phase0_steps": "backups,bios"}, "phase0_steps: unknown step(s) bios"),
        ({"fake_responses": {"test -d /run/systemd/system": "not-booted"}},
         "the ISO server runs nginx as a systemd unit and this host has no running systemd"),
        ({"phase0_steps": "model"}, "model_download.include is not set"),
        # an inventory file or OMNI_* override carries text: one line, not float()'s ValueError
        ({**MODEL, "model_download": {"include": "Q4/*", "margin": "5%"}},
         "model_download.margin is '5%': give a non-negative number of a fraction below 1"),
        ({**MODEL, "model_download": {"include": "Q4/*", "size_tolerance": 2}},
         "model_download.size_tolerance is 2.0: give a fraction below 1"),
        ({**MODEL, "model": {"path": "/nvme/m.gguf", "size_bytes": "404 GB"}},
         "model.size_bytes is '404 GB': give a non-negative number of bytes"),
    ],
)
def test_bad_configuration_is_refused_in_one_line(tmp_path, data, message):
    result = plan(PHASE0, [fake(**data)], groups=GROUPS, env=env(tmp_path))
    assert result.ops == [] and message in result.error and "\n" not in result.error


def test_model_step_refuses_without_space_or_cli(tmp_path):
    data = {
        "phase0_steps": "model",
        "model_download": {"include": "Q4/*"},
        "model": {
            "path": "/nvme/models/m-00001-of-00002.gguf",
            "size_bytes": 400 * 10**9,
            "architecture": "deepseek2",
        },
    }
    no_space = fake(**data)
    no_space[1]["fake_responses"]["df -B1"] = ["free=100000000000", "hf=/usr/local/bin/hf"]
    error = plan(PHASE0, [no_space], groups=GROUPS, env=env(tmp_path)).error
    assert (
        "needs 420.0 GB free (model 400.0 GB + 5% margin, 0.0 GB already there), only 100.0 GB free" in error
    )
    resumed = fake(**data)  # shard 1 of 2 already downloaded: the probe sums what is there
    resumed[1]["fake_responses"]["df -B1"] = ["free=300000000000", "hf=/usr/local/bin/hf"]
    resumed[1]["fake_responses"]["re:present_shards\\(path\\)"] = json.dumps(
        {"exists": True, "files": ["/nvme/models/m-00001-of-00002.gguf"], "total_bytes": 250 * 10**9,
         "missing": ["/nvme/models/m-00002-of-00002.gguf"], "architecture": "deepseek2",
         "error": "1 of 2 shards present"})
    assert plan(PHASE0, [resumed], groups=GROUPS, env=env(tmp_path)).error is None
    resumed[1]["fake_responses"]["df -B1"] = ["free=100000000000", "hf=/usr/local/bin/hf"]
    assert ("needs 170.0 GB free (model 400.0 GB + 5% margin, 250.0 GB already there), only 100.0 GB free"
            in plan(PHASE0, [resumed], groups=GROUPS, env=env(tmp_path)).error)
    no_cli = fake(**data)
    no_cli[1]["fake_responses"]["df -B1"] = ["free=900000000000", "hf="]
    assert (
        "the Hugging Face CLI `hf` is not on the host's PATH"
        in plan(PHASE0, [no_cli], groups=GROUPS, env=env(tmp_path)).error
    )
    enough = fake(**data)
    enough[1]["fake_responses"]["df -B1"] = ["free=900000000000", "hf=/usr/local/bin/hf"]
    result = plan(PHASE0, [enough], groups=GROUPS, env=env(tmp_path))
    assert result.op("Download unsloth/DeepSeek-R1-GGUF").commands == [
        "hf download unsloth/DeepSeek-R1-GGUF --include 'Q4/*' --local-dir /nvme/models"
    ]


def tree_sums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_backup_pull_verify_marker_then_restore_round_trip(tmp_path):
    source = tmp_path / "host" / "letta"
    (source / "db").mkdir(parents=True)
    (source / "db" / "agents.sqlite").write_bytes(os.urandom(4096))
    (source / "config.yaml").write_text("model: r1\n")
    pve = tmp_path / "host" / "pve"  # stands in for /etc/pve (restore_staged_sources below)
    (pve / "qemu-server").mkdir(parents=True)
    (pve / "qemu-server" / "100.conf").write_text("memory: 300000\n")
    gone = str(tmp_path / "host" / "nope")
    data = {
        "phase0_steps": "backups",
        "backups": {
            "paths": {"letta": str(source), "pve": str(pve), "gone": gone},
            "remote_dir": str(tmp_path / "staging"),
        },
    }
    hosts = {"groups": {"workstations": ["@local"]}, "execute": True, "env": env(tmp_path)}
    first = plan(PHASE0, [("@local", data)], **hosts)
    # the backups verify, but a missing source keeps the ready marker back, in one line
    failed = [o.short for o in first.ops if not o.success]
    assert failed == ["Write the phase-0 ready marker when every check passed"]
    assert (
        f"backup sources missing on @local: gone={gone}: fix backups.paths, or accept the loss with "
        "backups.allow_missing = ['gone']" in first.output
    )
    assert not (tmp_path / "backups" / "phase0-ready-local.json").exists()
    folder = next((tmp_path / "backups").glob("local-*"))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["missing_sources"] == {"gone": gone}
    entry = manifest["archives"]["letta"]
    assert entry["sha256"] == hashlib.sha256((folder / "letta.tar.gz").read_bytes()).hexdigest()
    # secrets: the folder is 0700 and every file in it 0600
    assert folder.stat().st_mode & 0o777 == 0o700
    assert {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()} == {
        name: 0o600 for name in ("letta.tar.gz", "letta.tar.gz.sha256", "pve.tar.gz", "pve.tar.gz.sha256",
                                 "manifest.json")
    }

    accepted = {**data, "backups": {**data["backups"], "allow_missing": ["gone"]}}
    again = plan(PHASE0, [("@local", accepted)], **hosts)
    assert again.changed_ops() == [] and all(o.success for o in again.ops), again.output[-2000:]
    marker = json.loads((tmp_path / "backups" / "phase0-ready-local.json").read_text())
    assert marker["ready"] is True and marker["checks"]["backups"] == str(folder)

    restore = {**data, "restore_root": str(tmp_path / "restored"),
               "restore_staging": str(tmp_path / "staged"), "restore_staged_sources": [str(pve)]}
    done = plan(RESTORE, [("@local", restore)], execute=True, env=env(tmp_path))
    assert done.error is None and all(o.success for o in done.ops), done.output[-2000:]
    assert tree_sums(tmp_path / "restored" / source.relative_to("/")) == tree_sums(source)
    # pmxcfs is never untarred in place: its archive lands in the 0700 staging folder
    assert not (tmp_path / "restored" / pve.relative_to("/")).exists()
    assert tree_sums(tmp_path / "staged" / "pve" / pve.relative_to("/")) == tree_sums(pve)
    assert (tmp_path / "staged").stat().st_mode & 0o777 == 0o700
    assert "(pmxcfs: staged, see docs/deploys.md)" in done.op("Restore " + str(pve)).short
    assert plan(RESTORE, [("@local", restore)], execute=True, env=env(tmp_path)).changed_ops() == []

    good = (folder / "manifest.json").read_text()
    for damaged, problem in [
        ({"archives": {"letta": {"file": "../../etc/shadow", "sha256": "0", "size_bytes": 1}}},
         "archive 'letta' lacks a plain file name, sha256 or size_bytes"),
        ({"archives": {"letta": {"file": "letta.tar.gz"}}}, "archive 'letta' lacks a plain file name"),
        ({"archived": {}}, "has no 'archives' table: it is damaged or not ours"),
        ([1, 2], "has no 'archives' table"),
    ]:
        (folder / "manifest.json").write_text(json.dumps(damaged))
        refused = plan(RESTORE, [("@local", restore)], execute=True, env=env(tmp_path))
        assert refused.ops == [] and problem in refused.error and "\n" not in refused.error, refused.error
    (folder / "manifest.json").write_text(good)
    (folder / "letta.tar.gz").write_bytes(b"tampered")
    refused = plan(RESTORE, [("@local", restore)], execute=True, env=env(tmp_path))
    assert refused.ops == [] and "letta.tar.gz does not match its recorded sha256/size" in refused.error


def test_every_source_missing_is_one_line_not_a_traceback(tmp_path):
    data = {
        "phase0_steps": "backups",
        "backups": {"paths": {"a": str(tmp_path / "no-a"), "b": str(tmp_path / "no-b")},
                    "remote_dir": str(tmp_path / "staging")},
    }
    result = plan(PHASE0, [("@local", data)], groups={"workstations": ["@local"]}, execute=True,
                  env=env(tmp_path))
    assert "Traceback" not in result.output and "internal exception" not in result.output
    assert "backup sources missing on @local: a=" in result.output
    assert not (tmp_path / "backups" / "phase0-ready-local.json").exists()


@pytest.fixture
def upstream(tmp_path):
    """A loopback HTTP server standing in for the ISO's publisher (Python's http.server: no Range)."""
    served = tmp_path / "upstream"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def nginx_iso_server(tmp_path):
    """The ISO host's server as phase 0 deploys it: our nginx.conf template, run unprivileged."""
    nginx = extract_from_deb("nginx", NGINX)[NGINX]
    root = Path(tempfile.mkdtemp(prefix="omni-iso-", dir="/tmp"))
    served, runtime = root / "srv", root / "run"
    served.mkdir()
    runtime.mkdir()
    root.chmod(0o755)
    served.chmod(0o755)
    os.chown(runtime, 65534, 65534)
    port = free_port()
    conf = root / "nginx.conf"
    template = jinja2.Template((TEMPLATES / "omni-iso-nginx.conf.j2").read_text())
    conf.write_text(template.render(bind="127.0.0.1", port=port, directory=served, runtime=runtime))
    log = (root / "nginx.log").open("wb")
    proc = subprocess.Popen(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         str(nginx), "-e", "stderr", "-c", str(conf), "-g", "daemon off;"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, (root / "nginx.log").read_text()
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield served, port
    proc.terminate()
    proc.wait(timeout=10)
    log.close()
    shutil.rmtree(root)


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


def iso_check_data(served: Path, port: int, sha: str) -> dict:
    return {
        "iso_http_port": port,
        "isos": {
            "dir": str(served),
            "http": {"bind": "127.0.0.1"},
            "images": [{"name": "ubuntu.iso", "url": "https://example.invalid/ubuntu.iso", "sha256": sha}],
        },
    }


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

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKu0omniTestKeyOnly0000000000000000000000000 owner@mac"
AUTOINSTALL = {"password_hash": "$6$saltsalt$" + "x" * 86, "ssh_authorized_keys": [KEY]}
WS_DISKS = [
    {"role": "ubuntu", "model": "CT4000T705SSD3", "serial": "2413E8A1B2C3"},
    {"role": "windows", "model": "WD_BLACK SN8100 4000GB", "serial": "25123A800001"},
]
GRUB_CFG = """set timeout=30
loadfont unicode
menuentry "Try or Install Ubuntu Server" {
\tset gfxpayload=keep
\tlinux\t/casper/vmlinuz  ---
\tinitrd\t/casper/initrd
}
menuentry "Ubuntu Server with the HWE kernel" {
\tlinux\t/casper/hwe-vmlinuz  ---
\tinitrd\t/casper/hwe-initrd
}
"""


def test_autoinstall_settings_refuse_in_one_line():
    from deploys.bmc.autoinstall import AutoinstallConfigError, autoinstall_settings

    cases = [
        ({"autoinstall": {**AUTOINSTALL, "password_hash": "hunter2"}, "disks": WS_DISKS},
         "box1.lan: autoinstall.password_hash is not set: give a crypt hash (`openssl passwd -6`)"),
        ({"autoinstall": {**AUTOINSTALL, "ssh_authorized_keys": []}, "disks": WS_DISKS},
         "box1.lan: autoinstall.ssh_authorized_keys must list your SSH public keys"),
        ({"autoinstall": AUTOINSTALL, "disks": [{**WS_DISKS[0], "serial": None}, WS_DISKS[1]]},
         "set OMNI_DISK_UBUNTU_SERIAL"),
    ]
    for data, message in cases:
        with pytest.raises(AutoinstallConfigError) as error:
            autoinstall_settings(data, "box1.lan")
        assert message in str(error.value) and "\n" not in str(error.value)


def test_user_data_targets_the_ubuntu_disk_by_model_and_serial_with_the_runbook_layout():
    import yaml

    from deploys.bmc.autoinstall import autoinstall_settings, user_data

    text = user_data(autoinstall_settings({"autoinstall": AUTOINSTALL, "disks": WS_DISKS}, "box1.lan"))
    assert text.startswith("#cloud-config\n")
    auto = yaml.safe_load(text)["autoinstall"]  # what cloud-init/subiquity parse
    assert auto["version"] == 1 and auto["identity"]["hostname"] == "box1"
    assert auto["ssh"] == {"install-server": True, "allow-pw": False, "authorized-keys": [KEY]}
    assert auto["kernel"] == {"package": "linux-generic-hwe-24.04"}
    config = auto["storage"]["config"]
    (disk,) = [c for c in config if c["type"] == "disk"]
    assert disk["match"] == {"serial": "*2413E8A1B2C3", "model": "CT4000T705SSD3"}
    assert "25123A800001" not in text and "SN8100" not in text  # the Windows disk is never named
    sizes = {c["id"]: c["size"] for c in config if c["type"] == "partition"}
    assert sizes == {"esp": "512M", "root": "500G", "home": "500G"}  # the rest stays free for /nvme
    mounts = {c["path"] for c in config if c["type"] == "mount"}
    assert mounts == {"/", "/home", "/boot/efi"}


def make_iso(folder: Path, grub_cfg: str) -> Path:
    xorriso = ensure_binary("xorriso", "xorriso")
    tree = folder / "tree"
    (tree / "boot" / "grub").mkdir(parents=True)
    (tree / "boot" / "grub" / "grub.cfg").write_text(grub_cfg)
    (tree / "casper").mkdir()
    (tree / "casper" / "vmlinuz").write_text(os.urandom(4096).hex())
    iso = folder / "ubuntu.iso"
    subprocess.run([xorriso, "-as", "mkisofs", "-quiet", "-V", "Ubuntu-Server 24.04.3 LTS amd64", "-o",
                    str(iso), str(tree)], check=True, capture_output=True)
    return iso


def read_from_iso(iso: Path, member: str, dest: Path) -> str:
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", member, str(dest)],
                   check=True, capture_output=True)
    return dest.read_text()


def test_remaster_puts_the_seed_on_every_kernel_line_and_keeps_the_rest(tmp_path):
    from deploys.bmc.autoinstall import remaster_command

    iso = make_iso(tmp_path, GRUB_CFG)
    url = "http://192.0.2.5:8080/autoinstall/box1/"
    run = subprocess.run(["sh", "-c", remaster_command(str(tmp_path), iso.name, "auto.iso", url)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    grub = read_from_iso(tmp_path / "auto.iso", "/boot/grub/grub.cfg", tmp_path / "grub.cfg")
    assert f"linux\t/casper/vmlinuz autoinstall 'ds=nocloud;s={url}'  ---" in grub
    assert "linux\t/casper/hwe-vmlinuz" in grub and grub.count("ds=nocloud") == 1  # only /casper/vmlinuz
    assert grub.startswith("set timeout=5\n")
    kernel = read_from_iso(tmp_path / "auto.iso", "/casper/vmlinuz", tmp_path / "k")
    assert kernel == read_from_iso(iso, "/casper/vmlinuz", tmp_path / "k0")  # the rest is the base's
    sha = hashlib.sha256((tmp_path / "auto.iso").read_bytes()).hexdigest()
    assert (tmp_path / "auto.iso.sha256").read_text().strip() == sha
    assert (tmp_path / "auto.iso.inputs").read_text().splitlines() == [
        url, hashlib.sha256(iso.read_bytes()).hexdigest()]
    # not an Ubuntu live-server ISO: refused, nothing left behind
    other = make_iso(tmp_path / "other", GRUB_CFG.replace("/casper/vmlinuz", "/boot/vmlinuz"))
    bad = subprocess.run(["sh", "-c", remaster_command(str(other.parent), other.name, "auto.iso", url)],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "not an Ubuntu live-server ISO" in bad.stderr
    assert not (other.parent / "auto.iso").exists()


def test_phase0_plans_the_seed_and_the_remastered_iso_for_a_workstation(tmp_path):
    name, data = fake()
    data.update(autoinstall={**AUTOINSTALL, "base_iso": "ubuntu.iso"}, disks=WS_DISKS)
    result = plan(PHASE0, [(name, data)], groups=GROUPS, env=env(tmp_path))
    assert result.error is None, result.error
    user_data = result.op("Write the autoinstall user-data of @fake")
    assert user_data.will_change
    assert "/srv/omni-iso/autoinstall/fake/user-data" in " ".join(user_data.commands)
    remaster = result.op("Remaster ubuntu.iso into ubuntu-autoinstall-fake.iso").commands[0]
    assert "ds=nocloud;s=http://127.0.0.1:8080/autoinstall/fake/" in remaster
    assert "-boot_image any replay" in remaster
    missing = {**data, "autoinstall": {**AUTOINSTALL, "base_iso": "nope.iso"}}
    refused = plan(PHASE0, [(name, missing)], groups=GROUPS, env=env(tmp_path))
    assert "autoinstall.base_iso 'nope.iso' of @fake is not in isos.images" in refused.error


def test_the_seed_and_the_remastered_iso_are_served_and_recorded(tmp_path, nginx_iso_server):
    import yaml

    from deploys.bmc.autoinstall import autoinstall_settings, remaster_command, user_data

    served, port = nginx_iso_server
    base = make_iso(tmp_path / "base", GRUB_CFG)
    shutil.copy(base, served / "ubuntu.iso")
    url = f"http://127.0.0.1:{port}/autoinstall/box1/"
    build = remaster_command(str(served), "ubuntu.iso", "ubuntu-autoinstall-box1.iso", url)
    subprocess.run(["sh", "-c", build], check=True, capture_output=True)
    (served / "autoinstall" / "box1").mkdir(parents=True)
    text = user_data(autoinstall_settings({"autoinstall": AUTOINSTALL, "disks": WS_DISKS}, "box1"))
    (served / "autoinstall" / "box1" / "user-data").write_text(text)
    for path in [served / "autoinstall", served / "autoinstall" / "box1"]:
        path.chmod(0o755)
    for path in served.rglob("*"):
        if path.is_file():
            path.chmod(0o644)
    with urllib.request.urlopen(url + "user-data", timeout=10) as answer:  # what the installer fetches
        disk = yaml.safe_load(answer.read())["autoinstall"]["storage"]["config"][0]
    assert disk["match"]["model"] == "CT4000T705SSD3"
    data = iso_check_data(served, port, hashlib.sha256(base.read_bytes()).hexdigest())
    data["isos"]["derived"] = [{"name": "ubuntu-autoinstall-box1.iso", "url": "remastered from ubuntu.iso",
                                "derived_from": "ubuntu.iso"}]
    result = plan(ISO_CHECK, [("@local", data)], execute=True, env=env(tmp_path))
    assert all(o.success for o in result.ops), result.output[-2000:]
    record = json.loads((tmp_path / "backups" / "iso-verified.json").read_text())["isos"]
    derived = record["ubuntu-autoinstall-box1.iso"]
    assert derived["derived_from"] == "ubuntu.iso"
    remastered = (served / "ubuntu-autoinstall-box1.iso").read_bytes()
    assert derived["sha256"] == hashlib.sha256(remastered).hexdigest()
