"""A check that runs on the controller at execution time and fails its operation in one line.

Why not ``python.call``: a callback that raises prints a traceback. Here the function returns
the problems it found; the operation then fails with one line on stderr, and changes nothing on
the host when there are none. While planning (``--dry``) nothing runs.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from pyinfra import state
from pyinfra.api import StringCommand, operation


@operation(is_idempotent=False)
def controller_check(function: Callable[..., list[str]], *args: Any):
    """Run ``function(*args)`` at execution; any returned problem fails this operation."""
    if not state.is_executing:
        return
    problems = function(*args)
    if problems:
        yield StringCommand(f"echo {shlex.quote('; '.join(problems))} >&2; exit 1")
