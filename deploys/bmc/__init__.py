"""The BMC parts of the phases: BIOS targets, ISOs staged and served, installers booted from virtual media.

The Redfish client itself is the top-level ``bmc`` package; these are the pyinfra deploys around it.
"""
