"""Secure Boot parsers on mokutil's own messages (mokutil.c) and an EFI variable read with od."""

from __future__ import annotations

import pytest

from facts.hardware import SecureBoot
from facts.parse import ParseError
from facts.parse.secureboot import parse_efivar_sb, parse_mokutil_sb_state


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("SecureBoot enabled\n", True),
        ("SecureBoot enabled\nSecureBoot validation is disabled in shim\n", True),
        ("SecureBoot disabled\nPlatform is in Setup Mode\n", False),
        ("This system doesn't support Secure Boot\n", False),
        ("EFI variables are not supported on this system\n", False),
    ],
)
def test_mokutil_states(text, state):
    assert parse_mokutil_sb_state(text)["secure_boot"] is state


def test_unreadable_output_is_a_parse_error_and_the_fact_falls_back_to_the_efi_variable():
    with pytest.raises(ParseError):
        parse_mokutil_sb_state("Failed to read SecureBoot\n")
    assert parse_efivar_sb("   6   0   0   0   1\n") == {
        "secure_boot": True, "detail": "SecureBoot EFI variable = 1"
    }
    fact = SecureBoot()
    value = fact.process(["##omni:mokutil", "mokutil: failed", "##omni:efivar", "   6   0   0   0   0"])
    assert value["available"] and value["secure_boot"] is False and value["source"] == "efivar"
    assert fact.process(["##omni:missing mokutil", "##omni:legacy"])["secure_boot"] is False
    assert fact.process(["##omni:missing mokutil"])["available"] is False
