"""Phase 3, BMC half: boot the workstation's Ubuntu autoinstall ISO once, then wait for its SSH.

    OMNI_HOST=@local OMNI_BMC_URL=https://<bmc> pyinfra -y inventory.py deploys/phase3_install.py \\
        --data install_for=<workstation> --data install_ssh_host=<its address>

POINT OF NO RETURN: the autoinstall (``deploys/bmc/autoinstall.py``, built and served by phase 0)
erases the disk whose model and serial are the ``ubuntu`` role's. So this refuses without phase 0's
ready marker for the workstation (backups verified), and without ``--data confirm_install=yes``.
Then, from the controller: the workstation's remastered ISO (``ubuntu-autoinstall-<host>.iso``,
recorded as verified by phase 0) as virtual CD, boot once from CD in UEFI mode, power cycle; the
installer runs unattended and reboots into the installed system (the override was "once", and
GRUB's install puts ``ubuntu`` first in the UEFI boot order); this run waits until the new
system's SSH identifies itself (``install_ssh_timeout``, default 3600 s). Then run
``deploys/phase3.py`` against the workstation (its SSH host key is new: ``ssh-keygen -R``).
"""

from pyinfra import host
from pyinfra.api.exceptions import DeployError
from pyinfra.operations import python

from deploys.bmc.autoinstall import iso_name
from deploys.bmc.media import _wait_for_ssh, install_os_from_iso
from deploys.core import markers
from deploys.core.flags import InstallFlags, run_flags

opts = run_flags(InstallFlags)  # every --data flag checked before anything is touched
target, address = opts.install_for, opts.address
if not target:
    raise DeployError(
        f"{host.name}: name the workstation to install: --data install_for=<its inventory name> "
        "(and --data install_ssh_host=<address> when the name is not its address)"
    )
if markers.read_phase0_marker(target) is None:
    raise DeployError(
        f"{target}: phase 0 has not completed ({markers.phase0_marker_path(target)} missing): the install "
        "erases the Ubuntu disk, so the backups must be verified first: run deploys/phase0.py"
    )
if not opts.confirm_install:
    raise DeployError(
        f"{target}: the autoinstall ERASES the ubuntu-role disk (model+serial from the inventory): "
        "re-run with --data confirm_install=yes"
    )

install_os_from_iso(role="ubuntu", image=iso_name(target))
python.call(
    name=f"Wait for the installed system's SSH on {address}",
    function=_wait_for_ssh,
    address=address,
    port=opts.port,
    within=opts.install_ssh_timeout,
    poll=opts.bmc_poll_s,
)
