"""Phase 0 backups and restore: a real pull, verify, ready marker and restore round trip on @local."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from deploys.core.pyinfra_run import plan
from tests.deploys.phase0.phase0_env import (
    PHASE0,
    RESTORE,
    env,
)


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
