"""Suite-wide guards."""

from __future__ import annotations

import sys

import pytest


def pytest_collection_finish(session: pytest.Session) -> None:
    """Fail fast if a test module imported ``pyinfra_cli`` (gevent's monkey.patch_all on import).

    Patched threads and sockets would silently change what the bench, the Redfish emulator and
    subprocess-driven tests measure; run such code in a subprocess instead (see deploys/core/pyinfra_run.py).
    """
    gevent_monkey = sys.modules.get("gevent.monkey")
    if gevent_monkey is not None and gevent_monkey.is_module_patched("threading"):
        raise pytest.UsageError(
            "gevent monkey-patched the test process (something imported pyinfra_cli): "
            "import it only in a subprocess"
        )
