"""One line for a pydantic ``ValidationError``: where (``a.b[0].c``), what, and the fix.

Why here: every input we validate with pydantic (bench specs, report options, strategies, phase-4
settings, the phase-5 stack, eval cases) must fail with one line, never pydantic's multi-line dump.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

_PREFIXES = ("Value error, ", "Assertion failed, ")


def error_location(error: ErrorDetails, root: Sequence[str] = ()) -> str:
    """``root.a.b[0].c`` from pydantic's ``loc``, without its internal union and validator tags."""
    parts: list[str] = [str(p) for p in root]
    for item in error["loc"]:
        if isinstance(item, int):
            if parts:
                parts[-1] += f"[{item}]"
            else:
                parts.append(f"[{item}]")
        elif not (item.startswith("function-") or item[:1].isupper()):
            parts.append(item)
    return ".".join(parts)


def error_message(error: ErrorDetails) -> str:
    """pydantic's message without the "Value error, " it puts in front of our own ValueErrors."""
    message = error["msg"]
    for prefix in _PREFIXES:
        message = message.removeprefix(prefix)
    return message


def one_line(exc: ValidationError, *, root: Sequence[str] = (), fix: str = "", show_input: bool = False,
             where: str = "") -> str:
    """``where: message (got input): fix`` for the first error.

    ``root`` prefixes the location (e.g. ``["stack"]``); ``where`` replaces an empty location;
    ``show_input`` adds the offending value for type errors (never for our own ValueErrors, whose
    message already names it).
    """
    error = exc.errors()[0]
    location, message = error_location(error, root), error_message(error)
    if location in message:  # our own ValueError already names it
        location = ""
    location = location or where
    text = f"{location}: {message}" if location else message
    if show_input and error["type"] != "value_error":
        text += f" (got {_input(error)!r})"
    return f"{text}: {fix}" if fix else text


def _input(error: ErrorDetails) -> Any:
    return error.get("input")
