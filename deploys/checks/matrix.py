"""The Verification Matrix engine behind ``deploys/verify.py``: collect rows, print, save, judge.

Why separate from the deploy file: pyinfra executes ``verify.py`` once per host (in parallel
greenlets), so the aggregation across hosts and the report writing live in an importable module
that tests can call directly.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import deploys.checks as checks_pkg
from deploys.checks import Row, Status, Weight
from deploys.checks.context import CheckContext, unknown
from omni.files import atomic_write_json
from omni.settings import SettingsError

REPORTS_ENV = "OMNI_REPORTS_DIR"
NOT_CHECKS = ("context", "matrix")  # the modules of deploys.checks that contribute no rows
_STYLE = {Status.PASS: "green", Status.FAIL: "bold red", Status.UNKNOWN: "yellow"}
_runs: dict[int, dict[str, Any]] = {}


def check_modules() -> list[str]:
    """Every ``deploys.checks`` module that contributes rows, in ``ORDER`` then name order."""
    names = [m.name for m in pkgutil.iter_modules(checks_pkg.__path__)
             if m.name not in NOT_CHECKS and not m.name.startswith("_")]
    modules = [importlib.import_module(f"deploys.checks.{name}") for name in names]
    modules.sort(key=lambda m: (getattr(m, "ORDER", 50), m.__name__))
    return [m.__name__ for m in modules]


def collect_rows(ctx: CheckContext) -> list[Row]:
    """Rows of every check module; a module that crashes yields one UNKNOWN row naming the error."""
    rows: list[Row] = []
    for module_name in check_modules():
        short = module_name.rsplit(".", 1)[-1]
        try:
            module = importlib.import_module(module_name)
            produced = module.rows(ctx)
        except Exception as exc:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            rows.append(unknown(f"{short} checks", "module runs", Weight.MEDIUM,
                                f"check module crashed: {type(exc).__name__}: {exc} "
                                f"({Path(where.filename).name}:{where.lineno})"))
            continue
        rows.extend(produced)
    return rows


def render(host_name: str, rows: list[Row], console: Console | None = None) -> None:
    table = Table(title=f"Verification Matrix: {host_name}", show_lines=False)
    for column in ("row", "target", "measured", "status", "weight", "reason"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row.name, row.target, row.measured, f"[{_STYLE[row.status]}]{row.status}[/]",
                      row.weight, row.reason)
    (console or Console(width=200 if not sys.stdout.isatty() else None)).print(table)


def critical_failures(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.weight == Weight.CRITICAL and r.status == Status.FAIL]


def write_report(host_name: str, rows: list[Row], ctx: CheckContext | None, started: datetime,
                 reports_dir: str | os.PathLike[str] | None = None) -> Path:
    """``reports/verify-<host>-<UTC timestamp>.json`` with rows, summary and the facts behind them."""
    folder = Path(reports_dir or os.environ.get(REPORTS_ENV) or "reports")
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", host_name).strip("_") or "host"
    path = folder / f"verify-{safe}-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    counts = {status.value: sum(r.status == status for r in rows) for status in Status}
    facts: dict[str, Any] = {}
    if ctx is not None:
        facts = {getattr(k[0], "__name__", str(k[0])): v for k, v in ctx._facts.items()}
    document = {
        "host": host_name,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
        "python": sys.version.split()[0],
        "pyinfra": _version("pyinfra"),
        "summary": dict(counts, critical_failed=[r.name for r in critical_failures(rows)]),
        "rows": [r.as_dict() for r in rows],
        "facts": facts,
        "fact_errors": dict(ctx.errors) if ctx else {},
    }
    return atomic_write_json(path, document, default=str)


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def verify_host(host: Any, state: Any = None) -> tuple[list[Row], Path]:
    """Run every check on ``host``, print the table, write the report; return rows and report path.

    With ``state`` given (the pyinfra run), the last host to finish raises one ``DeployError``
    naming every host whose CRITICAL rows failed, so the CLI exits non-zero after all reports exist.
    """
    started = datetime.now(UTC)
    ctx = CheckContext.for_host(host)
    try:  # the verify table and every table a check module reads, checked once before any row runs
        ctx.verify  # noqa: B018
        for module_name in check_modules():
            for reader in getattr(importlib.import_module(module_name), "SETTINGS", ()):
                reader(ctx.data)
    except SettingsError as error:
        from pyinfra.api.exceptions import DeployError

        raise DeployError(f"{host.name}: {error}") from None
    rows = collect_rows(ctx)
    render(host.name, rows)
    path = write_report(host.name, rows, ctx, started)
    failed = critical_failures(rows)
    summary = ", ".join(f"{s}={sum(r.status == s for r in rows)}" for s in Status)
    print(f"{host.name}: {summary}; report {path}")
    if state is not None:
        run = _runs.setdefault(id(state), {"done": set(), "failed": {}})
        run["done"].add(host.name)
        if failed:
            run["failed"][host.name] = [r.name for r in failed]
        active = {h.name for h in state.inventory.get_active_hosts()}
        if active <= run["done"]:
            _runs.pop(id(state), None)
            if run["failed"]:
                from pyinfra.api.exceptions import DeployError

                detail = "; ".join(f"{h}: {', '.join(names)}" for h, names in sorted(run["failed"].items()))
                raise DeployError(f"CRITICAL verification rows failed ({detail}): see the reports above")
    return rows, path
