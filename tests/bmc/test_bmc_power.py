"""power verbs against the real emulator: end states, waiting, and never sending an action twice."""

from __future__ import annotations

import time

import pytest

RESET = "/Actions/ComputerSystem.Reset"


def test_power_on_waits_and_reports_elapsed(emulator, run_cli):
    assert run_cli(emulator, "status", "--json").json["power_state"] == "Off"
    result = run_cli(emulator, "power", "on", "--wait", "--poll", "0.1", "--json")
    assert result.rc == 0, result.err
    assert result.json["state"] == "On" and result.json["changed"] is True
    assert 0.3 <= result.json["elapsed_s"] < 10  # the emulator lands power changes after 0.5 s
    assert result.json["reset_types"] == ["On"]


def test_power_on_when_on_sends_nothing(emulator, run_cli):
    assert run_cli(emulator, "power", "on", "--wait", "--poll", "0.1").rc == 0
    again = run_cli(emulator, "power", "on", "--json")
    assert again.rc == 0 and again.json["changed"] is False
    assert emulator.count("POST", RESET) == 1


@pytest.mark.parametrize(
    ("verb", "reset_types"), [("off", ["GracefulShutdown"]), ("force-off", ["ForceOff"])]
)
def test_power_off_verbs_reach_off(emulator, run_cli, verb, reset_types):
    assert run_cli(emulator, "power", "on", "--wait", "--poll", "0.1").rc == 0
    result = run_cli(emulator, "power", verb, "--wait", "--poll", "0.1", "--json")
    assert result.rc == 0, result.err
    assert result.json["state"] == "Off" and result.json["reset_types"] == reset_types


@pytest.mark.parametrize(
    ("verb", "reset_types"),
    [
        ("restart", ["GracefulRestart"]),
        ("force-restart", ["ForceRestart"]),
        ("cycle", ["ForceOff", "On"]),  # the plain emulator offers no PowerCycle: off, wait for Off, on
    ],
)
def test_restart_verbs_come_back_on(emulator, run_cli, verb, reset_types):
    assert run_cli(emulator, "power", "on", "--wait", "--poll", "0.1").rc == 0
    result = run_cli(emulator, "power", verb, "--wait", "--poll", "0.1", "--json")
    assert result.rc == 0, result.err
    assert result.json["state"] == "On" and result.json["reset_types"] == reset_types
    assert emulator.count("POST", RESET) == 1 + len(reset_types)


def test_cycle_uses_power_cycle_where_offered(ami, run_cli):
    assert run_cli(ami, "power", "on", "--wait", "--poll", "0.1").rc == 0
    result = run_cli(ami, "power", "cycle", "--wait", "--poll", "0.1", "--json")
    assert result.rc == 0, result.err
    assert result.json["reset_types"] == ["PowerCycle"] and result.json["state"] == "On"


def test_restart_of_a_system_that_is_off_is_refused(emulator, run_cli):
    result = run_cli(emulator, "power", "restart")
    assert result.rc == 1
    assert result.err.strip().count("\n") == 0
    assert "Off" in result.err and "power on" in result.err
    assert emulator.count("POST", RESET) == 0


def test_wait_timeout_names_the_state(emulator, run_cli):
    result = run_cli(emulator, "power", "on", "--wait", "--timeout", "0.1", "--poll", "0.05")
    assert result.rc == 1
    assert "did not reach On within 0.1 s" in result.err and "--timeout" in result.err


@pytest.mark.parametrize("emulator", [{"stall_reset_s": 3.0}], indirect=True)
def test_power_action_is_never_sent_twice_on_a_read_timeout(emulator, run_cli):
    """The BMC applies the reset but answers late: we report it once, and do not re-send it."""
    start = time.monotonic()
    result = run_cli(emulator, "power", "on", "--read-timeout", "1")
    assert result.rc == 1
    assert time.monotonic() - start < 2.5
    assert "did not answer POST ComputerSystem.Reset On within 1 s" in result.err
    assert "not re-sent" in result.err and "python -m bmc status" in result.err
    assert result.err.strip().count("\n") == 0 and "Traceback" not in result.err
    time.sleep(2.5)  # let the stalled request finish on the emulator side
    assert emulator.count("POST", RESET) == 1
    assert run_cli(emulator, "status", "--json").json["power_state"] == "On"  # it did happen, once


@pytest.mark.parametrize("emulator", [{"stall_first_get_s": 2.0}], indirect=True)
def test_a_get_that_times_out_is_retried_once(emulator, run_cli):
    """Reads may be repeated safely: one slow answer costs a retry, not the command."""
    result = run_cli(emulator, "status", "--read-timeout", "1", "--json")
    assert result.rc == 0, result.err
    assert emulator.count("GET", "/redfish/v1/Systems") == 2
