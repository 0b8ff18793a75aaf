"""A per-run memo so each pyinfra fact is gathered once per host (phase 4 installs it).

Why a memo: pyinfra 3 keeps no fact cache, so every ``apt.packages`` call runs ``dpkg -l`` again and
every ``apt.key`` lists the keyrings again. The memo answers a repeated fact from the first answer
until the host changes: any command or upload that is not itself fact gathering clears it, so
an operation that depends on an earlier change still sees the new state.
"""

from __future__ import annotations

from typing import Any


def _fact_key(cls: type, args: tuple, kwargs: dict[str, Any]) -> str:
    return repr((cls.__module__, cls.__qualname__, args, sorted(kwargs.items())))


def _command_key(args: tuple, kwargs: dict[str, Any]) -> str:
    command = args[0] if args else kwargs.get("command")
    text = command.get_raw_value() if hasattr(command, "get_raw_value") else str(command)
    options = sorted((k, repr(v)) for k, v in kwargs.items()
                     if k not in ("command", "print_output", "print_input"))
    return repr((text, options))


def gather_facts_once(host_obj: Any) -> None:
    """Memoize facts (and fact commands: ``File`` and ``Directory`` run the same ``stat``) per host
    until the host changes (see the module docstring). Idempotent."""
    if getattr(host_obj, "_omni_fact_memo", None) is not None:
        return
    memo: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    depth = [0]
    real_get_fact = host_obj.get_fact
    real_run = host_obj.run_shell_command
    real_put = host_obj.put_file

    def forget() -> None:
        memo.clear()
        outputs.clear()

    def get_fact(cls: type, *args: Any, **kwargs: Any) -> Any:
        key = _fact_key(cls, args, kwargs)
        if key not in memo:
            depth[0] += 1
            try:
                memo[key] = real_get_fact(cls, *args, **kwargs)
            finally:
                depth[0] -= 1
        return memo[key]

    def run_shell_command(*args: Any, **kwargs: Any) -> Any:
        if not depth[0]:
            forget()
            return real_run(*args, **kwargs)
        key = _command_key(args, kwargs)
        if key not in outputs:
            outputs[key] = real_run(*args, **kwargs)
        return outputs[key]

    def put_file(*args: Any, **kwargs: Any) -> Any:
        forget()
        return real_put(*args, **kwargs)

    host_obj._omni_fact_memo = memo
    host_obj.get_fact = get_fact
    host_obj.run_shell_command = run_shell_command
    host_obj.put_file = put_file
