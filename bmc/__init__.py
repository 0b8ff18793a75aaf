"""bmc package."""
