"""Strip what surrounds a capture: our own header, shell prompts, sudo prompts, section markers.

Why one helper: captures come from files written by scripts/capture_hw.sh (``# source:`` and
``# expect:`` headers), from pasted terminal sessions (``$ user@host:~$ sudo lspci ...`` and
``[sudo] password for ...``), and from our fact commands (``##omni:NAME`` section markers).
Every parser must see only the tool's own output.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MARKER = "##omni:"

_NOISE = (
    re.compile(r"^# (source|expect):"),
    re.compile(r"^\$ "),  # a pasted shell prompt line
    re.compile(r"^\[sudo\] password for "),
)
_DMIDECODE_COMMENT = re.compile(r"^# (dmidecode|No SMBIOS|SMBIOS)")


def to_lines(output: str | Iterable[str]) -> list[str]:
    """Accept a whole text or pyinfra's list of stdout lines."""
    if isinstance(output, str):
        return output.splitlines()
    return [line.rstrip("\n") for line in output]


def strip_noise(output: str | Iterable[str]) -> list[str]:
    """The tool's output lines only: capture headers, prompts and leading comments removed."""
    lines = [line for line in to_lines(output) if not any(p.match(line) for p in _NOISE)]
    start = 0
    # Comments before the output (``# captured on ...``) are not part of it.
    while start < len(lines) and (not lines[start].strip() or lines[start].startswith("# ")):
        if _DMIDECODE_COMMENT.match(lines[start]):  # dmidecode's own output: keep
            break
        start += 1
    return lines[start:]


def split_sections(output: str | Iterable[str]) -> dict[str, list[str]]:
    """Split fact output on ``##omni:NAME`` marker lines into ``{NAME: lines}``.

    Lines before the first marker land in the ``""`` section.
    """
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for line in to_lines(output):
        if line.startswith(MARKER):
            current = line[len(MARKER):].strip()
            sections.setdefault(current, [])
        else:
            sections[current].append(line)
    return sections
