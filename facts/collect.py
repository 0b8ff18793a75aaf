"""Gather every hardware fact from one host through pyinfra's API, as one JSON-able dict.

``collect_local()`` is what the bench stores with every result row: it runs on this machine
through pyinfra's ``@local`` connector, takes well under a few seconds and never prompts
(dmidecode tries ``sudo -n`` only). ``collect_host(name)`` does the same over SSH for a host
of the inventory (``omni.hostdata``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pyinfra.api import Config, Host, Inventory, State
from pyinfra.api.exceptions import ConnectError, PyinfraError
from pyinfra.facts.server import Hostname, KernelVersion

from .hardware import ALL_FACTS


class CollectError(RuntimeError):
    """Could not reach or read the host; the message is one line with the fix."""


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


@contextmanager
def _quiet() -> Iterator[None]:
    """No pyinfra log lines or spinner: callers print JSON or their own one-line errors."""
    logger = logging.getLogger("pyinfra")
    saved_level, saved_progress = logger.level, os.environ.get("PYINFRA_PROGRESS")
    logger.setLevel(logging.CRITICAL)
    os.environ["PYINFRA_PROGRESS"] = "off"
    try:
        yield
    finally:
        logger.setLevel(saved_level)
        if saved_progress is None:
            os.environ.pop("PYINFRA_PROGRESS", None)
        else:
            os.environ["PYINFRA_PROGRESS"] = saved_progress


@contextmanager
def connected_host(name: str, data: dict[str, Any]) -> Iterator[Host]:
    """A connected pyinfra host (``@local`` or an SSH address) for ``host.get_fact(...)``."""
    # pyinfra's connectors type-check their data: an unset value (None) must be absent.
    data = {key: value for key, value in data.items() if value is not None}
    with _quiet():
        try:
            inventory = Inventory(([(name, data)], {}))
            state = State(inventory, Config())
            host = inventory.get_host(name)
            host.connect(show_errors=False, raise_exceptions=True)
        except (ConnectError, PyinfraError) as error:
            reason = str(error.args[0] if error.args else error).splitlines()[0]
            raise CollectError(f"cannot connect to {name}: {reason} (check OMNI_SSH_* settings)") from None
        state.activate_host(host)
        try:
            yield host
        except PyinfraError as error:
            raise CollectError(f"reading facts from {name} failed: {error}") from None
        finally:
            host.disconnect()


def _collect(name: str, data: dict[str, Any]) -> dict:
    with connected_host(name, data) as host:
        facts = {key: host.get_fact(fact) for key, fact in ALL_FACTS.items()}
        system = {"hostname": host.get_fact(Hostname), "kernel": host.get_fact(KernelVersion)}
    return {
        "host": name,
        "collected_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "collector": {"protocol_omni": _version("protocol-omni"), "pyinfra": _version("pyinfra")},
        "system": system,
        "facts": facts,
    }


def collect_local() -> dict:
    """Every fact of this machine (``@local``)."""
    return _collect("@local", {})


def collect_host(name: str, env: dict[str, str] | None = None) -> dict:
    """Every fact of inventory host ``name`` over SSH, with its host data (user, port, key)."""
    from omni.hostdata import InventoryError, inventory_groups

    try:
        groups = inventory_groups(os.environ if env is None else env)
    except InventoryError as error:
        raise CollectError(str(error)) from None
    hosts = {host: data for members in groups.values() for host, data in members}
    if name not in hosts:
        known = ", ".join(sorted(hosts)) or "none"
        raise CollectError(f"host {name!r} is not in the inventory (hosts: {known}): set OMNI_HOST={name}")
    return _collect(name, hosts[name])
