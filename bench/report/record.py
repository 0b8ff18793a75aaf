"""How the page was made: the report options it used, where each came from, and the command.

Why: `python -m bench report DIR --min-decode-tps 30 --objective throughput@4` changes what the
page judges and recommends, and the flags are not part of the sweep. Every render records them in
`report-options.json` beside `sweep.json` (atomically, as `bench.store` writes sweep.json) and
shows them under Provenance, so whoever opens the folder or the page later can tell how it was made;
a render with no flags says so and names the spec, report.toml and default values it used.

Why a file of its own, not a key of sweep.json: a report may be rendered while the sweep is still
running, and the sweep rewrites sweep.json; two writers of one file would lose each other's update.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from bench.report.data import Sweep
from bench.report.options import DEFAULT_SOURCE, FIELDS
from omni.files import atomic_write_text

OPTIONS_FILE = "report-options.json"


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def command(sweep: Sweep) -> str:
    """`python -m bench report DIR FLAGS...` as given (repeated flags for a list)."""
    argv = ["python", "-m", "bench", "report", str(sweep.path)]
    for key in FIELDS:
        value = sweep.given.get(key)
        for v in value if isinstance(value, list | tuple) else [] if value is None else [value]:
            argv += [_flag(key), f"{v:g}" if isinstance(v, float) else str(v)]
    return shlex.join(argv)


UNSET = {  # what an unset key means on the page (docs/report.md, Settings)
    "target_mem_gb": "unset: the sweep host's MemTotal",
    "host_bandwidth_gbps": "unset: measured at sweep start, else from the DIMM facts",
    "gpu_bandwidth_gbps": "unset: measured at sweep start, else from the facts or a datasheet",
    "memory_channels": "unset: one per populated DIMM",
    "vram_budget_gib": "unset: placements judged against free GPU memory only",
}


def _shown(key: str, value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(f"{v:g}" for v in value) or UNSET.get(key, "unset")
    if value is None:
        return UNSET.get(key, "unset")
    return f"{value:g}" if isinstance(value, float) else str(value)


def option_rows(sweep: Sweep) -> list[tuple[str, str, str]]:
    """(key, value the page used, where it came from) for every report option."""
    used = sweep.options.model_dump()
    rows = []
    for key in FIELDS:
        source = sweep.option_sources.get(key, DEFAULT_SOURCE)
        if key == "min_headroom_gb" and source == DEFAULT_SOURCE and sweep.threshold_source:
            source = f"{DEFAULT_SOURCE}: {sweep.threshold_source}"
        rows.append((key, _shown(key, used.get(key)), source))
    return rows


def document(sweep: Sweep, generated_at: str) -> dict[str, Any]:
    """What report-options.json holds; `generated_at` is the page's own "generated" time."""
    return {
        "generated_at": generated_at, "page": "index.html",
        "command": command(sweep),
        "command_line": sweep.given,  # {} when rendered with no flags (the sweep's own render too)
        "options": sweep.options.model_dump(),
        "sources": {key: sweep.option_sources.get(key, DEFAULT_SOURCE) for key in FIELDS},
        "threshold_source": sweep.threshold_source,
    }


def write_record(sweep: Sweep, generated_at: str) -> Path:
    doc = document(sweep, generated_at)
    return atomic_write_text(sweep.path / OPTIONS_FILE, json.dumps(doc, indent=1, default=str) + "\n")
