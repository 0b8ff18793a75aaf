"""Run a deploy file through pyinfra's API and report each operation and its commands, as JSON.

Why: plan tests need more than ``pyinfra --dry`` prints — the exact shell commands each operation
would run on an ``@fake`` host with scripted fact outputs, and whether a converged host yields no
change. Also used on a real host (``@local``) with ``--execute`` for a real apply. It runs in its
own process (``plan()``), because pyinfra needs gevent's monkey-patching, which must not leak into
the caller (a pytest session running other suites).

    python -m deploys.core.pyinfra_run [--execute] DEPLOY_FILE HOSTS_JSON   # prints the RunResult as JSON

``HOSTS_JSON`` is ``{"hosts": [[name, data], ...], "groups": {group: [names]}}``; a
``fake_responses`` key written ``"re:PATTERN"`` becomes a compiled regular expression.
"""

from __future__ import annotations

if __name__ == "__main__":
    from gevent import monkey

    monkey.patch_all()

import json
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyinfra
from pyinfra.api import Config, Inventory, State
from pyinfra.api.command import StringCommand
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.operations import run_ops
from pyinfra.api.state import StateStage
from pyinfra.context import ctx_host, ctx_state


@dataclass
class OpResult:
    host: str
    name: str
    will_change: bool | None
    commands: list[str]
    changed: bool | None = None
    success: bool | None = None
    conditional: bool = False  # has ``_if``: runs only when the ops it watches changed

    @property
    def short(self) -> str:
        return self.name.rsplit(" | ", 1)[-1]


@dataclass
class RunResult:
    ops: list[OpResult] = field(default_factory=list)
    error: str | None = None

    def changed_ops(self) -> list[str]:
        """Operations (without their deploy prefix) that did change (execute) or would change (plan).

        In a plan, operations guarded by ``_if`` are left out: they run only when a watched operation
        changes, so a plan whose other operations change nothing runs none of them.
        """
        return [
            o.short
            for o in self.ops
            if (o.changed if o.changed is not None else (o.will_change and not o.conditional))
        ]

    def commands(self) -> list[str]:
        return [c for o in self.ops for c in o.commands]

    def op(self, name_part: str) -> OpResult:
        hits = [o for o in self.ops if name_part in o.short]
        if len(hits) != 1:
            raise KeyError(f"{len(hits)} operations match {name_part!r}: {[o.name for o in self.ops]}")
        return hits[0]


def _text(command: Any) -> str:
    if isinstance(command, StringCommand):
        return command.get_masked_value()
    return repr(command)


def run_deploy(
    deploy_file: str | Path,
    hosts: list[tuple[str, dict[str, Any]]],
    execute: bool = False,
    groups: dict[str, list[str]] | None = None,
) -> RunResult:
    """Prepare (and with ``execute`` run) ``deploy_file`` against ``hosts``; never prints a traceback.

    A ``PyinfraError`` raised while preparing (a refusal such as ``DeployError``) is returned in
    ``error`` with no operations, like the CLI's one-line "pyinfra error".
    """
    from pyinfra_cli.util import load_deploy_file  # imports gevent's monkey-patching: subprocess only

    pyinfra.is_cli = True  # deploy files expect CLI-style stage checks
    group_args = {g: ([n for n in names], {}) for g, names in (groups or {}).items()}
    inventory = Inventory((hosts, {}), **group_args)
    state = State(inventory=inventory, config=Config(), check_for_changes=True)
    result = RunResult()
    with ctx_state.use(state):
        state.set_stage(StateStage.Connect)
        connect_all(state)
        try:
            state.set_stage(StateStage.Prepare)
            try:
                load_deploy_file(state, str(deploy_file))
            except PyinfraError as error:
                result.error = str(error)
                return result
            for op_hash in state.get_op_order():
                for host in state.inventory.iter_activated_hosts():
                    if op_hash not in state.ops[host]:
                        continue
                    data = state.ops[host][op_hash]
                    with ctx_host.use(host):
                        commands = [_text(c) for c in data.command_generator()]
                    name = ", ".join(sorted(state.op_meta[op_hash].names))
                    result.ops.append(
                        OpResult(
                            host.name,
                            name,
                            data.operation_meta._maybe_is_change,
                            commands,
                            conditional=bool(data.global_arguments.get("_if")),
                        )
                    )
            if execute:
                state.set_stage(StateStage.Execute)
                try:
                    run_ops(state)
                except PyinfraError as error:  # e.g. "No hosts remaining!" after a failed operation
                    result.error = str(error)
                index = 0
                for op_hash in state.get_op_order():
                    for host in state.inventory.iter_activated_hosts():
                        if op_hash not in state.ops[host]:
                            continue
                        meta = state.ops[host][op_hash].operation_meta
                        op = result.ops[index]
                        op.success = meta.did_succeed(_raise_if_not_complete=False)
                        op.changed = meta.did_change() if op.success else None
                        index += 1
        finally:
            state.set_stage(StateStage.Disconnect)
            disconnect_all(state)
    return result


def _decode_hosts(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    hosts = []
    for name, data in document["hosts"]:
        responses = data.get("fake_responses")
        if responses:
            data["fake_responses"] = {
                re.compile(k[3:]) if k.startswith("re:") else k: v for k, v in responses.items()
            }
        data.setdefault("fake_delay", 0)
        data.setdefault("fake_delay_jitter", 0)
        hosts.append((name, data))
    return hosts


def plan(
    deploy_file: str | Path,
    hosts: list[tuple[str, dict[str, Any]]],
    execute: bool = False,
    groups: dict[str, list[str]] | None = None,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 120,
) -> RunResult:
    """:func:`run_deploy` in a child process; ``fake_responses`` keys may be ``re.Pattern``."""
    encoded = []
    for name, data in hosts:
        data = dict(data)
        if "fake_responses" in data:
            data["fake_responses"] = {
                (f"re:{k.pattern}" if isinstance(k, re.Pattern) else k): v
                for k, v in data["fake_responses"].items()
            }
        encoded.append([name, data])
    args = [
        sys.executable,
        "-m",
        "deploys.core.pyinfra_run",
        *(["--execute"] if execute else []),
        str(deploy_file),
        json.dumps({"hosts": encoded, "groups": groups or {}}),
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    lines = [line for line in proc.stdout.splitlines() if line.startswith('{"ops"')]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"deploys.core.pyinfra_run failed (exit {proc.returncode}): {proc.stderr[-3000:]}")
    document = json.loads(lines[-1])
    result = RunResult([OpResult(**op) for op in document["ops"]], document["error"])
    result.output = proc.stdout + proc.stderr  # type: ignore[attr-defined]
    return result


def main(argv: list[str]) -> int:
    execute = "--execute" in argv
    args = [a for a in argv if a != "--execute"]
    if len(args) != 2:
        print("usage: python -m deploys.core.pyinfra_run [--execute] DEPLOY_FILE HOSTS_JSON", file=sys.stderr)
        return 2
    document = json.loads(args[1])
    result = run_deploy(args[0], _decode_hosts(document), execute=execute, groups=document.get("groups"))
    print(json.dumps({"ops": [asdict(o) for o in result.ops], "error": result.error}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
