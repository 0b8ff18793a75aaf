"""Phase 3: Ubuntu 24.04 post-install — HWE kernel, NVIDIA 580 open driver, GRUB, dual boot, /nvme.

    pyinfra inventory.py deploys/phase3.py --dry --diff     # preview
    pyinfra inventory.py deploys/phase3.py                  # apply (asks first; -y to skip)
    pyinfra inventory.py deploys/phase3.py --data confirm_reboot=yes   # and reboot when needed

Refuses without phase 0's ready marker on the controller (``--data phase0_waived=yes`` takes the
responsibility for the backups yourself). ``--data storage_skip=yes`` leaves the data disk alone.
A reboot is needed after a kernel, driver or GRUB change; it happens only with confirm_reboot.
"""

import json
from io import StringIO

from pyinfra import host, logger
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.files import File
from pyinfra.operations import files, python, server
from pyinfra.operations.util import any_changed

from deploys.core import markers
from deploys.core.flags import Phase3Flags, check_tables, run_flags
from deploys.core.guards import require_ubuntu_2404
from deploys.host.grub import configure_grub, grub_settings
from deploys.host.nvidia_driver import host_packages, nvidia_settings, persistence_daemon, wanted_packages
from deploys.host.storage import storage_settings
from deploys.host.storage.deploy import data_disk
from facts.hardware import SecureBoot

opts = run_flags(Phase3Flags)
check_tables(grub_settings, storage_settings, nvidia_settings, wanted_packages)  # before any change
require_ubuntu_2404("phase 3")
if markers.read_phase0_marker(host.name) is None and not opts.phase0_waived:
    raise DeployError(
        f"{host.name}: phase 0 has not completed ({markers.phase0_marker_path(host.name)} missing): run "
        "`pyinfra inventory.py deploys/phase0.py` first (or --data phase0_waived=yes: the backups are yours)"
    )

packages = host_packages()
persistence_daemon()
grub_changes = configure_grub()
if opts.storage_skip:
    logger.warning(f"{host.print_prefix}storage_skip set: the data disk is left alone")
else:
    data_disk()

summary = {
    "phase": 3,
    "packages": wanted_packages(host.data, host.get_fact(SecureBoot)),
    "grub": grub_settings(host.data)["cmdline"],
    "storage": None if opts.storage_skip else storage_settings(host.data)["mountpoint"],
}
files.directory(
    name=f"Create {markers.host_marker_path('x').rsplit('/', 1)[0]}",
    path=markers.host_marker_path("x").rsplit("/", 1)[0],
)
files.put(
    name="Record that phase 3 completed",
    src=StringIO(json.dumps(summary, indent=2) + "\n"),
    dest=markers.host_marker_path("phase3"),
)

changed = any_changed(packages, *grub_changes)
if opts.confirm_reboot:
    server.reboot(
        name="Reboot into the new kernel, driver and GRUB settings", reboot_timeout=900, _if=changed
    )
else:
    if host.get_fact(File, path="/var/run/reboot-required"):
        logger.warning(f"{host.print_prefix}a reboot is already pending (/var/run/reboot-required)")
    python.call(
        name="Say that a reboot is needed",
        function=lambda: logger.warning(
            f"{host.print_prefix}REBOOT NEEDED for the kernel/driver/GRUB change: rerun with "
            "--data confirm_reboot=yes or reboot by hand, then run deploys/verify.py"
        ),
        _if=changed,
    )
