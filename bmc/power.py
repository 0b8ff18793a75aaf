"""Power actions: one POST per action, then (optionally) watch the BMC until the state lands.

Why the waiting is careful: a BMC acknowledges a reset long before the host changes state, a
graceful restart can leave ``PowerState`` at ``On`` for a minute while the OS shuts down, and a
warm reset may never show ``Off`` at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sushy import ResetType

from bmc.connection import Bmc
from bmc.errors import BmcError

#: verb -> (Redfish ResetType, the power state the verb ends in)
ACTIONS: dict[str, tuple[str, str]] = {
    "on": ("On", "On"),
    "off": ("GracefulShutdown", "Off"),
    "force-off": ("ForceOff", "Off"),
    "restart": ("GracefulRestart", "On"),
    "force-restart": ("ForceRestart", "On"),
    "cycle": ("PowerCycle", "On"),
}
RESTARTS = {"restart", "force-restart", "cycle"}
#: How long a restart may keep reporting On before we stop waiting to see it go down.
DOWN_GRACE_S = 30.0


def power_state(bmc: Bmc) -> str:
    """The current PowerState as Redfish spells it ("On", "Off", "PoweringOn"...)."""
    system = bmc.system(refresh=True)
    state = system.power_state
    return state.value if state is not None else "Unknown"


def _allowed(bmc: Bmc) -> set[str]:
    with bmc.errors("GET the allowed reset types"):
        return {v.value for v in bmc.system().get_allowed_reset_system_values()}


def _send(bmc: Bmc, reset_type: str) -> None:
    with bmc.errors(f"POST ComputerSystem.Reset {reset_type}"):
        bmc.system().reset_system(ResetType(reset_type))


def wait_for(
    bmc: Bmc, accept: Callable[[str], bool], label: str, timeout: float, poll: float, start: float
) -> str:
    """Poll PowerState until ``accept(state)``; a BmcError naming the last state on timeout."""
    state = power_state(bmc)
    while not accept(state):
        if time.monotonic() - start > timeout:
            raise BmcError(
                f"the system did not reach {label} within {timeout:g} s (BMC reports {state})",
                "look at the BMC event log or remote console; raise --timeout if the OS is slow to stop",
                "timeout",
            )
        time.sleep(poll)
        state = power_state(bmc)
    return state


def power(
    bmc: Bmc, verb: str, wait: bool = False, timeout: float = 300.0, poll: float = 2.0
) -> dict[str, Any]:
    """Run one power verb; with ``wait``, return only once the system is in the verb's end state."""
    if verb not in ACTIONS:
        raise BmcError(f"unknown power action {verb!r}", f"use one of: {', '.join(ACTIONS)}", "invalid")
    reset_type, target = ACTIONS[verb]
    before = power_state(bmc)
    result: dict[str, Any] = {"action": verb, "from": before, "target": target, "changed": False}
    if verb in ("on", "off", "force-off") and before == target:
        return result | {"state": before, "elapsed_s": 0.0, "message": f"already {before}; nothing sent"}
    if verb in ("restart", "force-restart") and before == "Off":
        raise BmcError(
            f"the system is Off; {verb} needs it On", "use `python -m bmc power on` instead", "invalid"
        )
    if verb == "cycle" and before == "Off":
        reset_type = "On"  # a cycle of a system that is off is a power-on
    allowed = _allowed(bmc)
    steps = [reset_type]
    if reset_type not in allowed:
        if verb != "cycle":
            raise BmcError(
                f"this BMC does not offer ResetType {reset_type} (it offers {', '.join(sorted(allowed))})",
                "use another power action",
                "unsupported",
            )
        steps = ["ForceOff", "On"]  # PowerCycle emulated: off, wait until Off, on
    start = time.monotonic()
    for index, step in enumerate(steps):
        _send(bmc, step)
        if index + 1 < len(steps):
            wait_for(bmc, lambda s: s == "Off", "Off", timeout, poll, start)
    result |= {"changed": True, "reset_types": steps}
    if not wait:
        return result | {
            "state": power_state(bmc),
            "elapsed_s": round(time.monotonic() - start, 1),
            "message": f"sent {' then '.join(steps)}; not waiting (--wait waits for {target})",
        }
    seen_down = True
    if verb in RESTARTS and len(steps) == 1 and reset_type != "On":
        try:
            wait_for(
                bmc, lambda s: s != "On", "a restart", min(timeout, DOWN_GRACE_S), poll, time.monotonic()
            )
        except BmcError:
            seen_down = False  # warm resets can keep PowerState On throughout
    state = wait_for(bmc, lambda s: s == target, target, timeout, poll, start)
    elapsed = round(time.monotonic() - start, 1)
    note = "" if seen_down else " (the BMC never reported it down)"
    return result | {"state": state, "elapsed_s": elapsed, "message": f"{state} after {elapsed:g} s{note}"}
