"""Suite-wide guards."""

from __future__ import annotations

import sys
import time

import pytest

# fixture name -> the tests.llama_builds builder behind it
BUILDS = {"llama_server_binary": "mainline_llama_server", "ik_llama_server_binary": "ik_llama_server"}


def pytest_collection_finish(session: pytest.Session) -> None:
    _refuse_gevent()
    _prebuild(session)


def _prebuild(session: pytest.Session) -> None:
    """Build the CPU llama.cpp-family servers the collected tests need before the first test starts.

    Why here: a cold build takes minutes (longer on a busy box), and inside a fixture it counted
    against the first test's 600 s pytest-timeout, so a slow build read as a dozen test errors. A
    failed build is left to the fixtures, which report it on each test that needs it."""
    wanted = {name for item in session.items for name in getattr(item, "fixturenames", ())} & BUILDS.keys()
    if not wanted or session.config.option.collectonly:
        return
    from tests import llama_builds

    report = session.config.pluginmanager.get_plugin("terminalreporter")
    for fixture in sorted(wanted):
        builder = BUILDS[fixture]
        started = time.monotonic()
        if report is not None:
            report.write_line(f"{builder}: building or reusing the cached CPU build (minutes when cold)")
        try:
            exe = getattr(llama_builds, builder)()
        except pytest.fail.Exception as err:
            if report is not None:
                report.write_line(f"{builder}: build failed, its tests will say why: {str(err)[:200]}")
            continue
        if report is not None:
            report.write_line(f"{builder}: {exe} ready after {time.monotonic() - started:.0f} s")


def _refuse_gevent() -> None:
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
