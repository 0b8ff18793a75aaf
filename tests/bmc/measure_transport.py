"""Measure sushy's default transport against ours: time to fail on a dead BMC, POSTs per power action.

    .venv/bin/python tests/bmc/measure_transport.py

Prints one line per measurement. Everything runs on loopback: a refused port, a listening socket
whose accept queue is full (SYNs are dropped, like a BMC whose network is gone), and the emulator
stalling its answer to a reset POST for 3 s while the client's read timeout is 1 s.
"""

from __future__ import annotations

import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import sushy
from emulator_harness import PASSWORD, USERNAME, running_emulator
from sushy import exceptions as sushy_exc

from bmc.connection import Bmc, BmcSettings
from bmc.errors import BmcError

RESET = "/Actions/ComputerSystem.Reset"


def _timed(call) -> tuple[float, str]:
    start = time.monotonic()
    try:
        call()
        outcome = "succeeded"
    except (BmcError, sushy_exc.SushyError) as exc:
        outcome = type(exc).__name__
    return time.monotonic() - start, outcome


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _black_hole() -> tuple[socket.socket, list[socket.socket], int]:
    """A listener with a full accept queue: further connects hang until the client's timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.2)
    return listener, fillers, port


def main() -> None:
    for label, port_factory in (("refused port", _closed_port), ("black hole", None)):
        holder = None
        if port_factory is None:
            holder = _black_hole()
            port = holder[2]
        else:
            port = port_factory()
        url = f"http://127.0.0.1:{port}"
        ours = BmcSettings(url, "u", "p")
        seconds, outcome = _timed(lambda: Bmc(ours))  # noqa: B023
        print(
            f"{label}: ours (connect {ours.connect_timeout:g} s, 1 retry) "
            f"failed after {seconds:.1f} s ({outcome})"
        )
        if label == "refused port":
            seconds, outcome = _timed(lambda: sushy.Sushy(url, username="u", password="p"))  # noqa: B023
            print(f"{label}: sushy defaults failed after {seconds:.1f} s ({outcome})")
        else:
            kwargs = {"username": "u", "password": "p", "connect_timeout": 5}
            seconds, outcome = _timed(lambda: sushy.Sushy(url, **kwargs))  # noqa: B023
            print(f"{label}: sushy with connect_timeout=5 failed after {seconds:.1f} s ({outcome})")
        if holder:
            holder[0].close()
            for filler in holder[1]:
                filler.close()

    with tempfile.TemporaryDirectory() as tmp, running_emulator(Path(tmp), stall_reset_s=3.0) as emu:
        default = sushy.Sushy(emu.url, auth=sushy.auth.BasicAuth(USERNAME, PASSWORD), read_timeout=1)
        system = default.get_system(emu.system_path())
        seconds, outcome = _timed(lambda: system.reset_system(sushy.ResetType.ON))
        time.sleep(3.5)
        sent = emu.count("POST", RESET)
        print(
            f"read timeout 1 s, BMC answers after 3 s: sushy defaults sent {sent} reset POSTs "
            f"in {seconds:.1f} s ({outcome})"
        )
        with Bmc(BmcSettings(emu.url, USERNAME, PASSWORD, read_timeout=1)) as bmc:
            seconds, outcome = _timed(lambda: bmc.system().reset_system(sushy.ResetType.FORCE_OFF))
        time.sleep(3.5)
        print(
            f"read timeout 1 s, BMC answers after 3 s: ours sent {emu.count('POST', RESET) - sent} "
            f"reset POST in {seconds:.1f} s ({outcome})"
        )


if __name__ == "__main__":
    main()
