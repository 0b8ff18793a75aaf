"""Phase 1 through the BMC: stage the BIOS targets as pending settings, reboot only when told to,
then judge the result with the hardware facts.

Why this shape: a BIOS change is the one step that can cost the box (and, on a shared NIC, the
BMC) its network. So the BMC must answer before anything is sent, the old values go to a rollback
file on the controller first, nothing reboots without ``--data confirm_reboot=yes``, and after the
reboot the BMC must answer again before we look at the host. Plan-time reads decide what to do,
so ``--dry`` shows it and a second run against a converged box makes no change.

Runs on the controller (the BMC calls) and reads hardware facts from the pyinfra host after the
reboot, so target the box itself: ``pyinfra inventory.py deploys/phase1.py``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.operations import python

from bmc import bios, power
from bmc.connection import Bmc, settings_from_data
from bmc.errors import BmcError
from bmc.rollback import default_dir
from bmc.targets import DEFAULTS as TARGET_DEFAULTS
from bmc.targets import attribute_map_from, resolve_against_registry, targets_from, wanted_attributes
from deploys.core.flags import BiosFlags, run_flags

#: the targets and, from :class:`BiosFlags` (their one home), confirm_reboot and the timeouts
DEFAULTS: dict[str, Any] = {**TARGET_DEFAULTS, **BiosFlags().model_dump()}
#: Verification Matrix rows (deploys/checks/hardware.py) that judge what phase 1 changes.
HARDWARE_ROWS = ("GPUs visible", "PCIe link", "DIMM configured speed", "NUMA nodes")


def _names(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def _connect(data: Any) -> Bmc:
    return Bmc(settings_from_data(data, os.environ))


def _fail(host_: Any, exc: BmcError) -> bool:
    host_.log_styled(str(exc), fg="red", log_func=logger.error)
    return False


def _stage(state: Any, host: Any, data: dict[str, Any], values: dict[str, Any]) -> bool:
    """pyinfra callback: write the rollback file, PATCH the pending settings, read them back."""
    try:
        with _connect(data) as bmc:
            result = bios.set_attributes(bmc, values, data["bmc_rollback_dir"], reason="phase1 BIOS targets")
    except BmcError as exc:
        return _fail(host, exc)
    host.log(result["message"], log_func=logger.info)
    return True


def _bmc_answers(data: dict[str, Any], within: float, poll: float) -> dict[str, Any]:
    """Current BIOS attributes once the BMC answers again (it may be busy right after a reset)."""
    start = time.monotonic()
    while True:
        try:
            with _connect(data) as bmc:
                return bios.current(bmc)
        except BmcError as exc:
            if exc.kind in ("auth", "config", "tls") or time.monotonic() - start > within:
                folder = data["bmc_rollback_dir"] or default_dir()
                raise BmcError(
                    f"the BMC stopped answering after the BIOS change ({exc.cause})",
                    f"check it from the local console; the old values are in {folder} "
                    "(`python -m bmc bios rollback FILE`)",
                    "unreachable",
                ) from None
            time.sleep(poll)


def _wait_for_host(host: Any, within: float, poll: float) -> bool:
    host.disconnect()
    start = time.monotonic()
    while time.monotonic() - start < within:
        host.connect(show_errors=False)
        if host.connected:
            return True
        time.sleep(poll)
    return False


def report_hardware(host: Any) -> list[Any]:
    """Judge PCIe generation, DIMM speed and NUMA nodes with the Verification Matrix rows; log them."""
    from deploys.checks import Status
    from deploys.checks.context import CheckContext
    from deploys.checks.hardware import gpu_rows, memory_rows, numa_cpu_rows

    ctx = CheckContext.for_host(host)
    rows = [
        r for r in gpu_rows(ctx) + memory_rows(ctx) + numa_cpu_rows(ctx) if r.name.startswith(HARDWARE_ROWS)
    ]
    for row in rows:
        line = f"{row.status}: {row.name}: target {row.target}, measured {row.measured}"
        if row.status is Status.PASS:
            host.log(line, log_func=logger.info)
        else:
            host.log_styled(
                f"still differs: {line}" + (f" ({row.reason})" if row.reason else ""),
                fg="yellow",
                log_func=logger.warning,
            )
    return rows


def cold_cycle(bmc: Bmc, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Power off fully, then on: the runbook's cold reboot for BIOS changes (a warm restart can hang).

    The OS first gets ``bmc_shutdown_timeout`` seconds of GracefulShutdown; a box still On after
    that is switched off with ForceOff. Returns the reset types sent and the power-on result.
    """
    poll, steps = float(data["bmc_poll_s"]), []
    if power.power_state(bmc) != "Off":
        grace = float(data["bmc_shutdown_timeout"])
        forced = grace <= 0
        if not forced:
            steps.append("GracefulShutdown")
            try:
                power.power(bmc, "off", wait=True, timeout=grace, poll=poll)
            except BmcError as exc:
                if exc.kind != "timeout":
                    raise
                forced = True
        if forced:
            steps.append("ForceOff")
            power.power(bmc, "force-off", wait=True, timeout=float(data["bmc_reboot_timeout"]), poll=poll)
    steps.append("On")
    return steps, power.power(bmc, "on", wait=True, timeout=float(data["bmc_reboot_timeout"]), poll=poll)


def _reboot_and_verify(state: Any, host: Any, data: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """pyinfra callback: cold-cycle through the BMC; once it answers, check BIOS and hardware."""
    poll = float(data["bmc_poll_s"])
    try:
        with _connect(data) as bmc:
            steps, result = cold_cycle(bmc, data)
        host.log(f"cold power cycle through the BMC ({', '.join(steps)}): {result['message']}",
                 log_func=logger.info)
        now = _bmc_answers(data, float(data["bmc_answer_timeout"]), poll)
    except BmcError as exc:
        return _fail(host, exc)
    host.log("the BMC answers after the reboot", log_func=logger.info)
    for name, value in wanted.items():
        if now.get(name) != value:
            host.log_styled(
                f"still differs: BIOS attribute {name} is {now.get(name)!r}, wanted {value!r}",
                fg="yellow",
                log_func=logger.warning,
            )
    if not _wait_for_host(host, float(data["host_reconnect_timeout"]), poll):
        host.log_styled(
            "the host did not come back over SSH; hardware not checked: check its console",
            fg="yellow",
            log_func=logger.warning,
        )
        return True
    report_hardware(host)
    return True


@deploy("Apply the BIOS targets through the BMC", data_defaults=DEFAULTS)
def apply_bios_targets() -> None:
    data = host.data.dict()
    for key, value in DEFAULTS.items():
        data.setdefault(key, value)
    data |= run_flags(BiosFlags).model_dump()  # checked before the BMC is asked anything
    try:
        wanted = wanted_attributes(targets_from(data), attribute_map_from(data))
        with _connect(data) as bmc:  # the BMC must answer before anything is changed
            wanted = resolve_against_registry(wanted, bios.registry(bmc))
            plan = bios.plan_changes(bmc, wanted)
    except BmcError as exc:
        raise DeployError(f"{host.name}: {exc}") from None
    if plan["send"]:
        python.call(
            name="Stage the BIOS targets as pending settings through the BMC",
            function=_stage,
            data=data,
            values=plan["typed"],
        )
    if not plan["apply"]:
        host.log(f"BIOS targets already in effect: {_names(plan['typed'])}", log_func=logger.info)
        report_hardware(host)
    elif data["confirm_reboot"]:
        python.call(
            name="Cold power cycle through the BMC so the pending BIOS settings apply",
            function=_reboot_and_verify,
            data=data,
            wanted=plan["typed"],
        )
    else:
        host.log_styled(
            f"BIOS changes wait for the next boot ({_names(plan['apply'])}); not rebooting without "
            "confirmation: re-run with --data confirm_reboot=yes (or reboot the box yourself)",
            fg="yellow",
            log_func=logger.warning,
        )
