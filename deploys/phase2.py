"""Phase 2: boot the Windows 11 installer from its phase-0-verified ISO through the BMC.

    OMNI_HOST=@local OMNI_BMC_URL=https://<bmc> pyinfra -y inventory.py deploys/phase2.py

Inserts ``install_isos.windows.url`` as virtual CD, sets boot-once CD in UEFI mode, power-cycles
and waits until the box is On; the installer itself is interactive (or driven by an unattend file
on the ISO). Runs on the controller once per host; refuses an ISO phase 0 did not verify.
"""

from deploys.bmc.media import install_os_from_iso

install_os_from_iso(role="windows")
