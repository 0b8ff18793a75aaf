"""The NUMA policy vocabulary, one accepted set for the bench spec and the phase-5 stack.

Why one module: a policy a user sweeps in ``bench`` must mean the same thing when phase 5 serves
it. A policy is one of

- ``none``: no prefix, the kernel's default placement;
- ``numactl`` options, with or without the leading ``numactl`` and ``--``: ``interleave=all``,
  ``cpunodebind=0 membind=0``, ``numactl --interleave=0,1``, ``preferred=1``, ``localalloc``;
- llama.cpp's own flag: ``--numa distribute`` (or ``isolate``, ``numactl``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: ``numactl`` options the vocabulary accepts, and whether each takes a node/CPU list.
NUMACTL_OPTIONS: dict[str, bool] = {
    "interleave": True,
    "cpunodebind": True,
    "membind": True,
    "physcpubind": True,
    "preferred": True,
    "localalloc": False,
}
#: Modes of llama.cpp's ``--numa`` flag.
ENGINE_NUMA_MODES = ("distribute", "isolate", "numactl")

_NODES = re.compile(r"^(all|[\d,\-]+)$")
_EXAMPLES = 'use "none", "interleave=all", "cpunodebind=N membind=N" or "--numa distribute"'


@dataclass(frozen=True)
class NumaPolicy:
    """A parsed policy: ``numactl`` options for the launch prefix and flags for the server itself."""

    text: str
    numactl_options: tuple[str, ...] = ()  # e.g. ("--cpunodebind=0", "--membind=0")
    engine_flags: tuple[str, ...] = ()  # e.g. ("--numa", "distribute")

    @property
    def prefix(self) -> list[str]:
        """The ``numactl`` argv prefix (empty when the policy needs none)."""
        return ["numactl", *self.numactl_options] if self.numactl_options else []


def parse_numa(policy: str) -> NumaPolicy:
    """Parse a policy; ``ValueError`` with one line naming the problem and the accepted words."""
    words = str(policy).split()
    if words in ([], ["none"]):
        return NumaPolicy(str(policy))
    if words[0] == "--numa":
        if len(words) != 2 or words[1] not in ENGINE_NUMA_MODES:
            raise ValueError(f"numa {policy!r}: use --numa with one of {', '.join(ENGINE_NUMA_MODES)}")
        return NumaPolicy(str(policy), engine_flags=tuple(words))
    if words[0] == "numactl":
        words = words[1:]
    options: list[str] = []
    for word in words or [""]:
        key, sep, value = word.removeprefix("--").partition("=")
        takes_value = NUMACTL_OPTIONS.get(key)
        if takes_value is None or takes_value != bool(sep) or (takes_value and not _NODES.match(value)):
            raise ValueError(f"numa {policy!r} is not understood: {_EXAMPLES}")
        options.append(f"--{key}={value}" if sep else f"--{key}")
    return NumaPolicy(str(policy), numactl_options=tuple(options))


def check_numa(policy: str) -> str:
    """``policy`` unchanged when it is in the vocabulary (a pydantic field validator's shape)."""
    parse_numa(policy)
    return policy
