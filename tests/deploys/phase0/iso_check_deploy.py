"""The ISO serving check alone (the systemd unit is out of reach in CI): verify and record."""

from pyinfra import host

from deploys.bmc.isos import _verify_served, iso_settings
from deploys.core.controller import controller_check

controller_check(
    _verify_served, iso_settings(host.data), name="Check the served ISOs and record them as verified"
)
