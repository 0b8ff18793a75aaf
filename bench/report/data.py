"""Read a sweep directory (spec, results.csv, per-run JSON, facts) into plain data for the page.

Why separate: this is the only module that knows file names and column names (from
`bench.schema`); everything after it works on the frames it returns. Every column is optional:
a missing one reads as unknown, so a report of an older or partial sweep still renders.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.report.hostfacts import HostFacts, from_facts, unflatten
from bench.report.options import ReportError, ReportOptions, load_options, resolve_headroom
from bench.schema import (
    AXIS_PREFIX,
    HOST_PREFIX,
    NUMERIC_COLUMNS,
    OK_STATUSES,
    TEXT_COLUMNS,
    VERSION_PREFIX,
)
from bench.spec import redact_spec

_GPU_PEAK = re.compile(r"gpu(\d+)_mem_peak_bytes")
FACT_FILES = ("facts.json", "host_facts.json", "host.json", "hardware.json")
NUMERIC = NUMERIC_COLUMNS  # every registered metric and the workload numbers (bench.schema)
TEXT = TEXT_COLUMNS


@dataclass
class Sweep:
    """Everything one report is made of."""

    path: Path
    spec: dict[str, Any]
    spec_text: str
    rows: pd.DataFrame
    host: HostFacts
    versions: dict[str, list[str]]
    options: ReportOptions
    meta: dict[str, Any] = field(default_factory=dict)  # sweep.json: id, status, dates, model
    notes: list[str] = field(default_factory=list)
    threshold_source: str = ""  # which rule set the headroom goal (options.resolve_headroom)
    bandwidth: dict[str, Any] = field(default_factory=dict)  # bandwidth.json: measured at sweep start
    given: dict[str, Any] = field(default_factory=dict)  # the command-line options (non-None overrides)
    option_sources: dict[str, str] = field(default_factory=dict)  # key -> "default", "spec [report]", ...

    @property
    def ok_rows(self) -> pd.DataFrame:
        return self.rows[self.rows["status"].isin(OK_STATUSES)]

    def gpu_indices(self) -> list[int]:
        found = {int(m.group(1)) for c in self.rows.columns if (m := _GPU_PEAK.fullmatch(str(c)))}
        return sorted(found | {g.index for g in self.host.gpus})


def _read_rows(path: Path) -> pd.DataFrame:
    csv = path / "results.csv"
    if not csv.is_file():
        raise ReportError(f"{path}: no results.csv; run `python -m bench sweep` first, or give a sweep dir")
    try:
        rows = pd.read_csv(csv, dtype={c: "string" for c in TEXT}, keep_default_na=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        why = str(err).splitlines()[0]
        raise ReportError(f"{csv} is not a readable CSV ({why}); rerun the sweep") from None
    except pd.errors.EmptyDataError:
        rows = pd.DataFrame()
    for name in TEXT:
        rows[name] = rows[name].fillna("").astype(str) if name in rows else ""
    for name in NUMERIC:
        rows[name] = pd.to_numeric(rows[name], errors="coerce") if name in rows else float("nan")
    for name in rows.columns:
        if name.startswith("gpu") and name.endswith("_bytes"):
            rows[name] = pd.to_numeric(rows[name], errors="coerce")
    if (rows["config_label"] == "").any():
        rows.loc[rows["config_label"] == "", "config_label"] = rows["config_id"]
    return rows


def _read_spec(path: Path) -> tuple[dict[str, Any], str]:
    spec_file = next((p for p in (path / "spec.toml", *sorted(path.glob("*.toml"))) if p.is_file()
                      and p.name != "report.toml"), None)
    if spec_file is None:
        return {}, ""
    text = redact_spec(spec_file.read_text(errors="replace"))  # the page shows it: no secret values
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError:
        return {}, text  # shown verbatim; the report does not need to understand it


def _read_host(path: Path, rows: pd.DataFrame) -> HostFacts:
    for name in FACT_FILES:
        if (path / name).is_file():
            try:
                return from_facts(json.loads((path / name).read_text()))
            except ValueError:
                continue
    if len(rows):
        flat = {k: v for k, v in rows.iloc[0].items() if str(k).startswith(HOST_PREFIX) and pd.notna(v)}
        facts = from_facts(unflatten(flat, HOST_PREFIX))
        hostname = rows["hostname"].iloc[0] or facts.hostname
        return HostFacts(**{**facts.__dict__, "hostname": hostname})
    return HostFacts()


def _versions(rows: pd.DataFrame) -> dict[str, list[str]]:
    out = {}
    for col in rows.columns:
        if str(col).startswith(VERSION_PREFIX):
            values = sorted({str(v) for v in rows[col].dropna() if str(v) != ""})
            if values:
                out[str(col)[len(VERSION_PREFIX):]] = values
    return out


def load_sweep(path: str | Path, overrides: dict[str, Any] | None = None) -> Sweep:
    path = Path(path)
    if not path.is_dir():
        raise ReportError(f"{path}: not a directory; give the sweep dir (reports/<sweep-id>)")
    rows = _read_rows(path)
    spec, spec_text = _read_spec(path)
    options, notes, sources = load_options(spec, path, overrides)
    meta = _read_meta(path)
    versions = _versions(rows)
    for key, value in (meta.get("versions") or {}).items():
        versions.setdefault(str(key).removeprefix(VERSION_PREFIX), [str(value)])
    host = _read_host(path, rows)
    total = pd.to_numeric(rows["host_mem_total_bytes"], errors="coerce").max() if len(rows) else None
    total = total if total == total and total else host.mem_total_bytes
    options, source = resolve_headroom(options, total)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    return Sweep(path, spec, spec_text, rows, host, versions, options, meta, notes, source,
                 _read_json(path / "bandwidth.json"), given, sources)


def _read_json(file: Path) -> dict[str, Any]:
    try:
        doc = json.loads(file.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads((path / "sweep.json").read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def axis_columns(rows: pd.DataFrame) -> list[str]:
    return [c for c in rows.columns if str(c).startswith(AXIS_PREFIX)]


def read_run(sweep: Sweep, rel: str) -> dict[str, Any] | None:
    """One per-run JSON (RunRecord), or None when it is missing or unreadable."""
    if not rel:
        return None
    file = (sweep.path / rel).resolve()
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return None


def launch_series(sweep: Sweep, rel: str) -> list[dict[str, Any]]:
    """Every memory sample of the launch that produced run `rel`: loading, then each cell.

    Samples carry seconds since the launch started, so the launch record's load samples and each
    run file's samples of that launch (`runs/<config>/r<k>/*.json`) line up on one time axis.
    """
    if not rel:
        return []
    folder = (sweep.path / rel).parent
    samples: list[dict[str, Any]] = []
    for file in sorted(folder.glob("*.json")):
        try:
            doc = json.loads(file.read_text())
        except (OSError, ValueError):
            continue
        found = doc.get("load_samples") if file.name == "launch.json" else doc.get("memory")
        samples += [s for s in found or [] if isinstance(s, dict) and "t" in s]
    return sorted(samples, key=lambda s: s["t"])


def read_tail(sweep: Sweep, rel: str, lines: int = 25) -> str:
    if not rel:
        return ""
    try:
        text = (sweep.path / rel).read_text(errors="replace")
    except OSError:
        return f"(log {rel} not found)"
    return "\n".join(text.splitlines()[-lines:])


def json_list(text: str) -> list[str]:
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def json_dict(text: str) -> dict[str, str]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
