"""Run a deploy file through pyinfra's real machinery against ``@fake`` hosts, in this process.

Why in-process: the plan tests need each operation's commands and uploaded file contents, which the
CLI does not print. This does what ``pyinfra_cli`` does (inventory, state, connect, load the deploy
file per host, optionally run the ops) with pyinfra's own ``@fake`` connector answering every command
from the host's scripted ``fake_responses``. It does not import ``pyinfra_cli``: that package
monkey-patches the whole interpreter with gevent on import, which other tests in this process must
not inherit.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyinfra
from pyinfra.api import Config, FileUploadCommand, FunctionCommand, Inventory, State, StringCommand
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.operations import run_ops
from pyinfra.api.state import StateStage
from pyinfra.context import ctx_config, ctx_host, ctx_inventory, ctx_state

ROOT = Path(__file__).resolve().parents[3]
PHASE4 = str(ROOT / "deploys" / "phase4.py")


@dataclass
class Op:
    name: str
    commands: list[Any]
    conditional: bool

    @property
    def changes(self) -> bool:
        return bool(self.commands)

    def text(self) -> str:
        return "\n".join(c if isinstance(c, str) else repr(c) for c in self.commands)


@dataclass
class Result:
    ops: dict[str, list[Op]] = field(default_factory=dict)  # host name -> ops in run order
    order: list[tuple[str, str]] = field(default_factory=list)  # (host, op name), the whole run's order
    planned: dict[str, list[str]] = field(default_factory=dict)  # host -> commands run while planning
    executed: dict[str, list[str]] = field(default_factory=dict)  # host -> commands run while executing
    changed: dict[str, list[str]] = field(default_factory=dict)  # host -> op names that changed (execute)
    error: str | None = None

    def op(self, host: str, name_part: str) -> Op:
        found = [op for op in self.ops[host] if name_part in op.name]
        assert len(found) == 1, f"{name_part!r} matches {[op.name for op in found]} on {host}"
        return found[0]

    def names(self, host: str) -> list[str]:
        return [op.name for op in self.ops[host]]

    def changing(self, host: str) -> list[str]:
        return [op.name for op in self.ops[host] if op.changes]

    def uploads(self, host: str) -> dict[str, str]:
        return {c[2]: c[1] for op in self.ops[host] for c in op.commands
                if isinstance(c, tuple) and c[0] == "upload"}

    def fact_commands(self, host: str) -> Counter:
        return Counter(self.planned[host])


def _command(command: Any) -> Any:
    if isinstance(command, StringCommand):
        return command.get_raw_value()
    if isinstance(command, FileUploadCommand):
        src = command.src
        if isinstance(src, io.StringIO | io.BytesIO):
            src.seek(0)
            data = src.read()
            return ("upload", data.decode() if isinstance(data, bytes) else data, str(command.dest))
        return ("upload", Path(src).read_text(), str(command.dest))
    if isinstance(command, FunctionCommand):
        return ("call", command.function.__name__)
    return repr(command)


def _name(meta: Any) -> str:
    """The op's name without its deploy prefix ("K3s | Write ..." -> "Write ...")."""
    return sorted(meta.names)[0].split(" | ")[-1]


def _load_deploy_file(state: State, inventory: Inventory, filename: str) -> None:
    """``pyinfra_cli.util.load_deploy_file``, one host after the other."""
    state.current_deploy_filename = state.current_exec_filename = filename
    code = compile(Path(filename).read_text(), filename, "exec")
    for host in inventory.get_active_hosts():
        with ctx_host.use(host):
            exec(code, {"__file__": filename})


def run_deploy(hosts: list[tuple[str, dict[str, Any], list[str]]], *, execute: bool = False,
               deploy: str = PHASE4) -> Result:
    """``hosts``: (``@fake/<name>``, data, groups). Plans, and runs the ops when ``execute``."""
    groups: dict[str, tuple[list, dict]] = {}
    for name, data, host_groups in hosts:
        for group in host_groups:
            groups.setdefault(group, ([], {}))[0].append((name, {"fake_delay": 0, "fake_delay_jitter": 0,
                                                                   **data}))
    names = [(name, {"fake_delay": 0, "fake_delay_jitter": 0, **data}) for name, data, _ in hosts]
    previous_cli = pyinfra.is_cli
    pyinfra.is_cli = True
    config = Config()
    inventory = Inventory((names, {}), **groups)
    state = State(check_for_changes=True)
    result = Result()
    try:
        with ctx_config.use(config), ctx_inventory.use(inventory), ctx_state.use(state):
            state.init(inventory, config)
            state.set_stage(StateStage.Connect)
            connect_all(state)
            state.set_stage(StateStage.Prepare)
            try:
                _load_deploy_file(state, inventory, deploy)
            except PyinfraError as exc:
                result.error = str(exc)
                return result
            prepared = {h.name: list(h.connector.executed_commands) for h in inventory}
            for host in inventory:
                result.ops[host.name] = []
                with ctx_host.use(host):
                    for op_hash in state.get_op_order():
                        if op_hash not in state.ops[host]:
                            continue
                        op_data = state.get_op_data_for_host(host, op_hash)
                        meta = state.op_meta[op_hash]
                        commands = [_command(c) for c in op_data.command_generator()]
                        result.ops[host.name].append(
                            Op(_name(meta), commands, bool(op_data.global_arguments["_if"])))
            result.planned = prepared
            for op_hash in state.get_op_order():
                for host in inventory:
                    if op_hash in state.ops[host]:
                        result.order.append((host.name, _name(state.op_meta[op_hash])))
            result.executed = {h.name: [] for h in inventory}
            if execute:
                for host in inventory:
                    host.connector.executed_commands.clear()
                state.set_stage(StateStage.Execute)
                run_ops(state)
                result.executed = {h.name: list(h.connector.executed_commands) for h in inventory}
                for host in inventory:
                    result.changed[host.name] = [
                        _name(state.op_meta[op_hash])
                        for op_hash in state.get_op_order() if op_hash in state.ops[host]
                        and state.ops[host][op_hash].operation_meta.is_complete()
                        and state.ops[host][op_hash].operation_meta.did_change()]
                if state.failed_hosts:
                    result.error = f"failed hosts: {sorted(h.name for h in state.failed_hosts)}"
            state.set_stage(StateStage.Disconnect)
            disconnect_all(state)
    finally:
        pyinfra.is_cli = previous_cli
    return result


@contextmanager
def connected_host(name: str, data: dict[str, Any],
                   groups: tuple[str, ...] = ("workstations",)) -> Iterator[Any]:
    """One connected ``@fake`` host inside pyinfra's context, for code that probes a host directly."""
    full = {"fake_delay": 0, "fake_delay_jitter": 0, **data}
    inventory = Inventory(([(name, full)], {}), **{group: ([name], {}) for group in groups})
    config = Config()
    state = State(check_for_changes=True)
    with ctx_config.use(config), ctx_inventory.use(inventory), ctx_state.use(state):
        state.init(inventory, config)
        connect_all(state)
        host = inventory.get_host(name)
        with ctx_host.use(host):
            yield host
        disconnect_all(state)
