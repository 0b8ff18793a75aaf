"""Example sweep specs (package data: `demo.toml` is the zero-config sweep)."""
