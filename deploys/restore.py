"""Rollback: put phase 0's backups back on a host, verifying every sha256 before touching it.

    pyinfra inventory.py deploys/restore.py --dry
    pyinfra inventory.py deploys/restore.py --data restore_from=backups/box1-20261129 \\
        --data restore_names=letta,manifests

Refuses when any archive of the chosen backup (default: the newest ``backups/<host>-<date>/``)
fails its recorded sha256 or size on the controller; each archive's sha256 is checked again on the
host after the upload, before ``tar`` extracts it under ``restore_root`` (default ``/``). A restored
archive leaves ``<remote_dir>/<name>.restored-<sha256>`` so a rerun changes nothing. The full
rollback plan (BIOS, boot order, reinstalling Proxmox) is in docs/deploys.md.

Proxmox's ``/etc/pve`` is never extracted in place: it is pmxcfs, a FUSE view of the database
``/var/lib/pve-cluster/config.db``, which rejects or mangles a wholesale untar (ownership, modes,
its own symlinks, a live cluster's keys). Archives of ``/etc/pve`` and ``/var/lib/pve-cluster`` are
extracted into ``restore_staging`` (default ``/root/omni-restore``, mode 0700) instead; the
pmxcfs-safe steps to bring them back are in docs/deploys.md ("Restoring Proxmox's /etc/pve").
"""

import json
import shlex

from pyinfra import host
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.files import File
from pyinfra.operations import files, server

from deploys.backup.archives import backup_settings, latest_backup, verify_manifest
from deploys.core.flags import RestoreFlags, run_flags

opts = run_flags(RestoreFlags)  # every --data flag checked before anything is read or touched
folder = opts.restore_from or latest_backup(host.name)
if folder is None:
    raise DeployError(f"{host.name}: no backups found for this host: pass --data restore_from=<folder>")
problems = verify_manifest(folder)
if problems:
    raise DeployError(f"{host.name}: refusing to restore from {folder}: {'; '.join(problems)}")
archives = json.loads((folder / "manifest.json").read_text())["archives"]
wanted = opts.restore_names or list(archives)
unknown = [n for n in wanted if n not in archives]
if unknown:
    raise DeployError(
        f"{host.name}: {folder} has no archive named {', '.join(unknown)}: choose from {', '.join(archives)}"
    )
root, staging = opts.restore_root, opts.restore_staging
try:
    remote = backup_settings(host.data)["remote_dir"]
except ValueError as error:  # a bad backups table: the same one line phase 0 gives
    raise DeployError(f"{host.name}: {error}") from None
#: pmxcfs (FUSE over /var/lib/pve-cluster/config.db) by default: never untarred in place
staged_sources = tuple(opts.restore_staged_sources)

files.directory(name=f"Create {remote}", path=remote, mode="700")
for name in wanted:
    entry = archives[name]
    done = f"{remote}/{name}.restored-{entry['sha256']}"
    if host.get_fact(File, path=done):
        host.noop(f"{name} ({entry['sha256'][:12]}) already restored")
        continue
    archive = f"{remote}/{entry['file']}"
    pmxcfs = str(entry["source"]).startswith(staged_sources)
    target = f"{staging}/{name}" if pmxcfs else root
    files.put(name=f"Upload {entry['file']}", src=str(folder / entry["file"]), dest=archive, mode="600")
    server.shell(
        name=f"Restore {entry['source']} from {entry['file']}"
        + (f" into {target} (pmxcfs: staged, see docs/deploys.md)" if pmxcfs else ""),
        commands=[
            f"echo {shlex.quote(entry['sha256'] + '  ' + archive)} | sha256sum -c --quiet - && "
            + (f"mkdir -p -m 700 {shlex.quote(staging)} && " if pmxcfs else "")
            + f"mkdir -p {shlex.quote(target)} && "
            f"tar -C {shlex.quote(target)} -xzf {shlex.quote(archive)} && touch {shlex.quote(done)}"
        ],
    )
