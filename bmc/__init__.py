"""Redfish control of the box's BMC through sushy: power, virtual media, boot override, BIOS.

Library: ``Bmc(settings_from_data(host_data))`` then ``bmc.power``, ``bmc.media``, ``bmc.boot``,
``bmc.bios``; every failure is a one-line ``bmc.errors.BmcError``. CLI: ``python -m bmc --help``.
"""
