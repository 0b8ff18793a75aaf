"""Phase 1: BIOS targets (PCIe Gen5, NPS4, EXPO II) through the BMC, verified with hardware facts.

    pyinfra inventory.py deploys/phase1.py --dry                        # what would be staged
    pyinfra -y inventory.py deploys/phase1.py                           # stage as pending, no reboot
    pyinfra -y inventory.py deploys/phase1.py --data confirm_reboot=yes # stage, reboot, verify

The attribute names are board-specific: map them first (docs/bmc.md, ``bios_attribute_map``).
The BMC is driven from the controller; the hardware facts are read from the box over SSH.
"""

from deploys.bmc.bios import apply_bios_targets

apply_bios_targets()
