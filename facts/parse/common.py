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


#: Digits a hardware quantity can have (bytes of 16 EiB: 20); more is a corrupt capture. It also keeps
#: ``int()`` far below Python's 4300-digit limit, whose ValueError would escape as a traceback.
MAX_DIGITS = 20

#: The most CPUs a Linux host can have (x86-64 CONFIG_NR_CPUS tops out at 8192): a CPU list naming
#: more, such as ``0-4294967295``, is corrupt and must not be expanded into a list of that length.
MAX_CPUS = 8192


def to_int(text: str, what: str = "number") -> int:
    """``int(text)`` for a string of digits, or ParseError naming ``what`` (never a bare ValueError)."""
    digits = text.strip()
    if not re.fullmatch(rf"[-+]?\d{{1,{MAX_DIGITS}}}", digits):
        raise ParseError(f"{what} {digits[:40]!r} is not an integer of at most {MAX_DIGITS} digits")
    return int(digits)


def to_float(text: str | None) -> float | None:
    """A finite decimal (``'2.5'``, ``'16'``), else None: ``'.'``, ``''``, ``'1e999'`` and NaN are unknown."""
    if text is None or not re.fullmatch(rf"\d{{1,{MAX_DIGITS}}}(?:\.\d{{1,12}})?|\.\d{{1,12}}", text.strip()):
        return None
    return float(text)


def first_int(value: str | None) -> int | None:
    """The first integer in ``value`` (``'16x'`` -> 16, ``'143771 MiB'`` -> 143771); None if absurdly long."""
    if value is None or is_unknown(value):
        return None
    match = re.search(r"-?\d+", value)
    if not match or len(match.group().lstrip("-")) > MAX_DIGITS:
        return None
    return int(match.group())


def gts_to_gen(gts: float | None) -> int | None:
    return None if gts is None else GTS_TO_GEN.get(float(gts))


_PCI_ADDRESS = re.compile(r"(?:([0-9a-f]{1,8}):)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])")


def pci_address(address: str) -> str:
    """Normalise ``c1:00.0`` / ``00000000:C1:00.0`` to ``0000:c1:00.0`` to join facts."""
    match = _PCI_ADDRESS.fullmatch(address.strip().lower())
    if not match:
        raise ParseError(f"{address.strip()[:40]!r} is not a PCI address (DDDD:BB:DD.F)")
    domain, bus, device, function = match.groups()
    return f"{int(domain or '0', 16):04x}:{bus}:{device}.{function}"


def expand_cpulist(text: str, limit: int = MAX_CPUS) -> list[int]:
    """``0-3,8,10-11`` (sysfs) or ``0 1 2 3`` (numactl) -> [0, 1, 2, 3, 8, 10, 11].

    Bounded: a CPU number at or above ``limit`` (what a host can have) is a ParseError before any
    range is expanded, so ``0-4294967295`` costs nothing.
    """
    cpus: list[int] = []
    for part in re.split(r"[\s,]+", text.strip()):
        if not part:
            continue
        low, dash, high = part.partition("-")
        first = to_int(low, "CPU number")
        last = to_int(high, "CPU number") if dash else first
        if not 0 <= first <= last < limit:
            raise ParseError(f"CPU list entry {part[:40]!r} is not a range within 0-{limit - 1}")
        if len(cpus) + last - first >= limit:
            raise ParseError(f"CPU list {text.strip()[:40]!r} names more than {limit} CPUs")
        cpus.extend(range(first, last + 1))
    return cpus
