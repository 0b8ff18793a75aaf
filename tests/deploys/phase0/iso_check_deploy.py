"""The ISO serving check alone (the systemd unit is out of reach in CI): verify and record."""

from pyinfra import host

from deploys.controller import controller_check
from deploys.isos import _verify_served, iso_settings

controller_check(
    _verify_served, iso_settings(host.data), name="Check the served ISOs and record them as verified"
)
