"""Verification rows shared by ``deploys/verify.py`` and every module that contributes checks.

Each module in this package exposes ``rows(ctx) -> list[Row]``; verify.py runs them all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    UNKNOWN = "UNKNOWN"


class Weight(StrEnum):
    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"


@dataclass(frozen=True)
class Row:
    """One line of the Verification Matrix: what was expected, what was measured, the verdict."""

    name: str
    target: str
    measured: str
    status: Status
    weight: Weight
    reason: str = ""

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}
