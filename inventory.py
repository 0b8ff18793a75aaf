"""pyinfra inventory for Protocol OMNI: ``pyinfra inventory.py deploys/phase4.py``.

Hosts come from the environment, never from this file, so no address or secret is committed:

    OMNI_HOST=192.0.2.10 OMNI_SSH_USER=omni pyinfra inventory.py deploys/verify.py
    OMNI_HOSTS=box1,box2 ...            several workstations sharing the defaults
    OMNI_HOSTS_FILE=hosts.toml ...      per-host data and groups (see omni/hostdata.py)
    OMNI_K3S_AGENTS=node2 ...           extra hosts that join the K3s server (group k3s_agents)
    OMNI_HOST=@local ...                this machine, on purpose

Each host's data is the reference box (omni/hostdata.py) with environment overrides applied.
With nothing configured the run stops with one line saying what to set.
"""

import sys

from omni.hostdata import InventoryError, inventory_groups

try:
    globals().update(inventory_groups())
except InventoryError as _error:
    sys.exit(f"inventory.py: {_error}")
