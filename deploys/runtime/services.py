"""Service state for phase 4 that still plans on a host without a running systemd.

Why: ``systemd.service`` reads ``systemctl show``, which fails outright in a container or chroot
and would abort ``--dry`` there. Without systemd the plan shows the ``systemctl`` commands a booted
host needs, and phase 4 refuses to apply before changing anything (see ``refuse_without_systemd``).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from pyinfra import host, logger
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.systemd import SystemdStatus
from pyinfra.operations import server, systemd
from pyinfra.operations.util import any_changed

from facts.runtime import SystemdBooted

NO_SYSTEMD = ("phase 4 needs systemd running as PID 1 (docker and k3s are systemd services): "
              "boot the host normally; --dry still shows the plan")


def systemd_booted() -> bool:
    return bool(host.get_fact(SystemdBooted))


def refuse_without_systemd() -> None:
    """First op of the phase on a host without systemd: --dry plans, an apply stops before any change."""
    if systemd_booted():
        return
    logger.warning(f"{host.name}: {NO_SYSTEMD}")
    server.shell(name="Refuse to apply phase 4 without systemd",
                 commands=[f"echo {shlex.quote(f'{host.name}: {NO_SYSTEMD}')} >&2; exit 1"])


def running_and_enabled(unit: str, label: str) -> OperationMeta:
    if systemd_booted():
        return systemd.service(name=f"Enable and start {label}", service=unit, running=True, enabled=True)
    return server.shell(name=f"Enable and start {label}", commands=[f"systemctl enable --now {unit}"])


def restart_if(unit: str, label: str, reason: str, changed: Sequence[OperationMeta],
               force: bool = False, only_if_running: bool = True) -> OperationMeta | None:
    """Restart ``unit`` when one of ``changed`` changed something (or ``force``: a known drift).

    ``only_if_running``: a unit that is not running now gets started by ``running_and_enabled``
    with the new state anyway, so restarting it would only start it twice.
    """
    changed = [op for op in changed if op.will_change]  # plan-time: nothing will change, no restart op
    if not changed and not force:
        return None
    if only_if_running and systemd_booted() and not host.get_fact(SystemdStatus, services=[unit]).get(unit):
        return None
    name = f"Restart {label} ({reason})"
    condition = {} if force or not changed else {"_if": any_changed(*changed)}
    if systemd_booted():
        return systemd.service(name=name, service=unit, running=True, restarted=True, **condition)
    return server.shell(name=name, commands=[f"systemctl restart {unit}"], **condition)
