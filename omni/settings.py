"""Deploy defaults merged with host data: ``settings(DEFAULTS, host_data, "storage")``.

Why: hostdata.py describes the machine; each deploy module owns its own knobs (paths, URLs,
layouts) as ``DEFAULTS`` and lets a hosts-file table of the same name override any of them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def settings(defaults: Mapping[str, Any], data: Mapping[str, Any] | Any, key: str) -> dict[str, Any]:
    """``defaults`` overridden by ``data[key]`` (a dict, or pyinfra ``HostData``)."""
    override = data.get(key) if hasattr(data, "get") else None
    return deep_merge(copy.deepcopy(dict(defaults)), override or {})
