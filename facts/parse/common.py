"""Shared bits of the pure parsers: the error type and value conversions."""

from __future__ import annotations

import re

#: PCIe transfer rate per lane (GT/s) -> generation.
GTS_TO_GEN = {2.5: 1, 5.0: 2, 8.0: 3, 16.0: 4, 32.0: 5, 64.0: 6}

_UNKNOWN = {"", "n/a", "[n/a]", "unknown", "not specified", "not provided", "none", "<out of spec>",
            "[not supported]", "not supported", "not available", "[unknown error]"}


class ParseError(ValueError):
    """The text is not the output the parser was asked to read; the message is one line."""


def is_unknown(value: str | None) -> bool:
    """``[N/A]``, ``Unknown``, ``<OUT OF SPEC>``... mean "no value"."""
    if value is None:
        return True
    text = value.strip().lower()
    return text in _UNKNOWN or (text.startswith("[") and text.endswith("]"))


def clean(value: str | None) -> str | None:
    """The stripped text, or None when the tool says it does not know."""
    return None if is_unknown(value) else value.strip()  # type: ignore[union-attr]


def number(value: float) -> int | float:
    """16.0 -> 16, 2.5 -> 2.5: JSON shows integral rates as integers."""
    return int(value) if float(value).is_integer() else value


def first_int(value: str | None) -> int | None:
    """The first integer in ``value`` (``'16x'`` -> 16, ``'143771 MiB'`` -> 143771)."""
    if value is None or is_unknown(value):
        return None
    match = re.search(r"-?\d+", value)
    return int(match.group()) if match else None


def gts_to_gen(gts: float | None) -> int | None:
    return None if gts is None else GTS_TO_GEN.get(float(gts))


def pci_address(address: str) -> str:
    """Normalise ``c1:00.0`` / ``00000000:C1:00.0`` to ``0000:c1:00.0`` to join facts."""
    parts = address.strip().lower().split(":")
    if len(parts) == 2:
        parts.insert(0, "0000")
    return f"{int(parts[0], 16):04x}:{parts[1]}:{parts[2]}"


def expand_cpulist(text: str) -> list[int]:
    """``0-3,8,10-11`` -> [0, 1, 2, 3, 8, 10, 11]."""
    cpus: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if "-" in part:
            low, high = part.split("-", 1)
            cpus.extend(range(int(low), int(high) + 1))
        else:
            cpus.append(int(part))
    return cpus
