"""UEFI Secure Boot state: ``mokutil --sb-state``, or the SecureBoot EFI variable without mokutil.

Why it matters: with Secure Boot on, a DKMS-built NVIDIA module is refused by the kernel until a
Machine Owner Key is enrolled at the console, which a remote box cannot do; phase 3 then installs
Canonical's signed prebuilt modules instead.
"""

from __future__ import annotations

from .common import ParseError
from .noise import strip_noise

_MOKUTIL = {
    "secureboot enabled": True,
    "secureboot disabled": False,
    "this system doesn't support secure boot": False,
    "efi variables are not supported on this system": False,  # legacy BIOS boot: no Secure Boot
}


def parse_mokutil_sb_state(output) -> dict:
    """``mokutil --sb-state``: ``{"secure_boot": bool, "detail": "<mokutil's line>"}``."""
    for line in strip_noise(output):
        text = line.strip().rstrip(".")
        if text.lower() in _MOKUTIL:
            return {"secure_boot": _MOKUTIL[text.lower()], "detail": text}
    raise ParseError("no 'SecureBoot enabled/disabled' line: is this mokutil --sb-state output?")


def parse_efivar_sb(output) -> dict:
    """``od -An -t u1`` of ``SecureBoot-8be4df61-...``: 4 attribute bytes, then the state byte."""
    numbers = [int(n) for line in strip_noise(output) for n in line.split() if n.isdigit()]
    if len(numbers) != 5:
        raise ParseError(f"SecureBoot EFI variable has {len(numbers)} bytes, expected 5")
    enabled = numbers[-1] == 1
    return {"secure_boot": enabled, "detail": f"SecureBoot EFI variable = {numbers[-1]}"}
