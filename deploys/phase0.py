"""Phase 0: pre-flight before the point of no return — backups, ISOs, model, then the ready marker.

    pyinfra inventory.py deploys/phase0.py --dry            # preview
    pyinfra inventory.py deploys/phase0.py                  # backups + ISOs, then the marker
    pyinfra inventory.py deploys/phase0.py --data phase0_steps=model   # the model, once /nvme exists

Steps (``--data phase0_steps=backups,isos,model``; default ``backups,isos``):

* backups — on each workstation: tarballs of the configured paths pulled to
  ``backups/<host>-<date>/`` and verified (``deploys/backup/archives.py``);
* isos — on hosts in group ``iso_servers``: download, verify, serve, record (``deploys/bmc/isos.py``);
* model — on each workstation: ``hf download`` with space and GGUF checks
  (``deploys/host/model_download.py``).

The ready marker (``backups/phase0-ready-<host>.json``, which phase 3 requires) is written for a
workstation only when its backups verify on the controller, every configured ISO is recorded as
verified with the inventory's sha256, and the model checks pass when the model step ran.
Phase 0 runs on whatever the box runs before the reinstall (Proxmox/Debian), so it does not
require Ubuntu.
"""

from pyinfra import host, logger, state
from pyinfra.api.exceptions import DeployError

from deploys.backup.archives import (
    backup_paths,
    backup_settings,
    latest_backup,
    missing_sources,
    not_private,
    verify_manifest,
)
from deploys.bmc import iso_record
from deploys.bmc.autoinstall import AutoinstallConfigError, autoinstall_settings
from deploys.bmc.isos import IsoConfigError, iso_settings, stage_isos
from deploys.core import markers
from deploys.core.controller import controller_check
from deploys.core.flags import Phase0Flags, run_flags
from deploys.host.model_download import ModelConfigError, _check_model, download_model, model_settings

steps = run_flags(Phase0Flags).phase0_steps
workstation = "workstations" in host.groups
iso_server = "iso_servers" in host.groups

try:
    isos = iso_settings(host.data) if "isos" in steps and (iso_server or workstation) else None
    model = model_settings(host.data) if "model" in steps and workstation else None
    backups_cfg = backup_settings(host.data)
    # the autoinstall seed and ISO of every workstation that describes one (deploys/bmc/autoinstall.py)
    seeds = [
        (ws.name, autoinstall_settings(ws.data, ws.name))
        for ws in state.inventory.get_group("workstations", default=[])
        if ws.data.get("autoinstall")
    ] if iso_server and isos is not None else []
except (IsoConfigError, ModelConfigError, AutoinstallConfigError, ValueError) as error:
    raise DeployError(f"{host.name}: {error}") from None

if workstation and "backups" in steps:
    backup_paths()
if iso_server and isos is not None:
    for ws in state.inventory.get_group("workstations", default=[]):
        if not ws.data.get("autoinstall"):
            logger.warning(f"{host.print_prefix}no autoinstall table for {ws.name}: its Ubuntu installer "
                           "will wait at the console (docs/deploys.md, 'Ubuntu autoinstall')")
    try:
        stage_isos(isos, seeds)
    except IsoConfigError as error:
        raise DeployError(f"{host.name}: {error}") from None
if model is not None:
    try:
        download_model(model)
    except ModelConfigError as error:
        raise DeployError(f"{host.name}: {error}") from None


def ready_checks(host_name: str, isos_cfg, model_cfg, backups_cfg) -> list[str]:
    """Everything the marker vouches for, re-checked on the controller; writes it when clean."""
    problems, checks = [], {}
    folder = latest_backup(host_name)
    backup_problems = (
        verify_manifest(folder) if folder else [f"no backups for {host_name} under {markers.backup_root()}"]
    )
    if folder and not backup_problems:
        backup_problems += not_private(folder)
        lost = missing_sources(folder, backups_cfg["allow_missing"])
        if lost:
            names = ", ".join(f"{n}={p}" for n, p in lost.items())
            backup_problems.append(
                f"backup sources missing on {host_name}: {names}: fix backups.paths, or accept the loss "
                f"with backups.allow_missing = [{', '.join(repr(n) for n in lost)}]"
            )
    problems += backup_problems
    checks["backups"] = str(folder) if not backup_problems else None
    for image in (isos_cfg or {}).get("images", []):
        try:
            entry = iso_record.require_verified(image["name"], image["sha256"])
            checks[f"iso:{image['name']}"] = entry["sha256"]
        except iso_record.IsoRecordError as error:
            problems.append(str(error))
    if model_cfg is not None:
        model_problems = _check_model(model_cfg)
        problems += model_problems
        checks["model"] = model_cfg["model"]["path"] if not model_problems else None
    if not problems:
        markers.write_phase0_marker(host_name, checks)
    return problems


if workstation:
    controller_check(
        ready_checks, host.name, isos, model, backups_cfg,
        name="Write the phase-0 ready marker when every check passed",
    )
