"""The sweep directory: spec copy, facts, one JSON per run and per launch, results.csv, atomically.

Layout (reports/<sweep-id>/):
    spec.toml            the spec as run (the demo's resolved text for the zero-config sweep)
    sweep.json           id, spec hash, status, host facts flattened, package versions
    facts.json           the full `facts.collect.collect_local()` document
    runs/<config_id>/r<repeat>/launch.json   LaunchRecord
    runs/<config_id>/r<repeat>/<cell_id>.json  RunRecord (row + per-request records + memory)
    logs/<config_id>-r<repeat>.log (+ .tail.txt when something failed)
    model.json           the GGUF's tensor table and bytes per token (the report reads it)
    results.csv          one flat row per run, appended as each cell finishes
    index.html, report-options.json   the report and the options it was made with (bench.report)

Why appended, and rewritten only at the end: a run file is written with os.replace once its cell
is finished, so `kill -9` loses at most the cell in flight, and results.csv is always derivable
from what is on disk: a resumed sweep rewrites it from the run files (a torn last line is gone)
and a finished one rewrites it once to add the confidence intervals across repeats. It is also
rewritten when a row brings a column the header lacks (the first launch's engine versions).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
import os
import signal
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.metric_registry import CI_METRICS
from bench.objective import PRUNING
from bench.schema import AXIS_PREFIX, FIXED_COLUMNS, HOST_PREFIX, OK_STATUSES, LaunchRecord, Row, RunRecord
from bench.spec import SpecError, secret_values
from bench.stats import ci95
from omni.files import atomic_write_text


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


HASH_BASIS = "toml-without-report"  # sweep.json `spec_hash_basis`; absent: sha256 of the raw text


def _raw_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def spec_hash(text: str) -> str:
    """What decides whether an existing sweep may be resumed with this spec: the parsed TOML minus
    its `[report]` table, canonicalised (sorted keys, no comments or layout). Why without
    `[report]`: report thresholds change how results are shown, never what is measured, so
    changing one must not refuse the resume of a 281 GB-model sweep; any other change does. The one
    exception is `objective` under a race or halving strategy: it decides which launches run
    (`bench.objective`), so it stays in the hash and a changed one is refused like any other."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return _raw_hash(text)  # not a spec load_spec accepts: nothing will match it anyway
    report = data.pop("report", None)
    if data.get("strategy") in PRUNING and isinstance(report, dict) and "objective" in report:
        data["report"] = {"objective": report["objective"]}
    canon = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def spec_mode(spec_text: str) -> int:
    """spec.toml keeps secret env values (a resume needs them): then it is 0600, else 0644."""
    return 0o600 if secret_values(spec_text) else 0o644


class SweepBusy(SpecError):
    """Another live sweep holds the directory's lock; the message is one line."""


class SweepStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._runs: dict[Path, RunRecord] | None = None  # rows without requests/memory, by file
        self._lock_fd: int | None = None

    # -- the lock: one sweep writes a directory at a time ------------------------------------
    @property
    def lock_path(self) -> Path:
        return self.path / ".sweep.lock"

    @contextlib.contextmanager
    def locked(self):
        """Hold an advisory lock (flock) on the directory for the whole run.

        Why: two sweeps into one directory interleave their rows, and the second one's orphan reaper
        would SIGKILL the first one's live server. The kernel drops the lock when the holder exits,
        even by ``kill -9``, so a stale lock never blocks a resume. The file holds the holder's pid.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise SweepBusy(f"{self.path} is being written by another sweep (pid {holder}): wait for it "
                            "to finish, stop it, or give another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd
        try:
            yield self
        finally:
            self._lock_fd = None
            os.close(fd)  # releases the flock

    # -- sweep level -------------------------------------------------------------------------
    @property
    def meta_path(self) -> Path:
        return self.path / "sweep.json"

    def exists(self) -> bool:
        return self.meta_path.is_file()

    def meta(self) -> dict[str, Any]:
        """sweep.json; a sweep recorded before the hash ignored `[report]` (raw-text hash) has its
        hash recomputed from its own spec.toml, so it still resumes with the same spec."""
        if not self.exists():
            return {}
        try:
            doc = json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, OSError) as err:
            doc = err
        if not isinstance(doc, dict):  # torn by hand or by a disk fault: never guess what it said
            raise SpecError(f"{self.meta_path} is corrupt ({str(doc)[:80]}): move it away and rerun "
                            f"`python -m bench sweep SPEC --out {self.path}` with the sweep's spec "
                            f"({self.path / 'spec.toml'}); finished runs in {self.path / 'runs'} are kept")
        if doc.get("spec_hash_basis") != HASH_BASIS and "spec_hash" in doc:
            try:
                text = (self.path / "spec.toml").read_text()
            except OSError:
                return doc
            if _raw_hash(text) == doc["spec_hash"]:
                doc |= {"spec_hash": spec_hash(text), "spec_hash_basis": HASH_BASIS}
        return doc

    def create(self, sweep_id: str, spec_text: str, facts: dict[str, Any], meta: dict[str, Any]) -> None:
        atomic_write_text(self.path / "spec.toml", spec_text, mode=spec_mode(spec_text))
        atomic_write_text(self.path / "facts.json", json.dumps(facts, indent=1, default=str))
        doc = {"sweep_id": sweep_id, "spec_hash": spec_hash(spec_text), "spec_hash_basis": HASH_BASIS,
               "status": "running", "started_at": now(), "finished_at": "", **meta}
        atomic_write_text(self.meta_path, json.dumps(doc, indent=1, default=str))

    def adopt_spec(self, spec_text: str) -> bool:
        """On resume: keep the spec text the user resumed with (same hash, so at most its
        `[report]` table or its layout differ) so the report uses the new thresholds."""
        path = self.path / "spec.toml"
        try:
            if path.read_text() == spec_text:
                return False
        except OSError:
            pass
        atomic_write_text(path, spec_text, mode=spec_mode(spec_text))
        self.update_meta(spec_updated_at=now())
        return True

    def update_meta(self, **fields: Any) -> None:
        doc = self.meta() | fields
        atomic_write_text(self.meta_path, json.dumps(doc, indent=1, default=str))

    # -- the running server (so a sweep killed with -9 does not leave a 281 GB server behind) --
    @property
    def pid_path(self) -> Path:
        return self.path / "server.pid"

    def remember_server(self, pid: int, config_id: str) -> None:
        try:
            created = psutil.Process(pid).create_time()
        except psutil.Error:
            return
        doc = {"pid": pid, "create_time": created, "config_id": config_id}
        atomic_write_text(self.pid_path, json.dumps(doc))

    def forget_server(self) -> None:
        self.pid_path.unlink(missing_ok=True)

    def reap_orphan(self) -> str:
        """Kill the server group a killed sweep left running (same pid and start time); says what it did."""
        try:
            doc = json.loads(self.pid_path.read_text())
            proc = psutil.Process(int(doc["pid"]))
            if abs(proc.create_time() - float(doc["create_time"])) > 0.01:
                raise psutil.NoSuchProcess(int(doc["pid"]))
        except (OSError, ValueError, KeyError, psutil.Error):
            self.forget_server()
            return ""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(psutil.Error):
            proc.wait(timeout=30)
        self.forget_server()
        return f"killed server {proc.pid} ({doc.get('config_id', '?')}) left running by an interrupted sweep"

    # -- runs and launches -------------------------------------------------------------------
    def run_dir(self, config_id: str, repeat: int) -> Path:
        return self.path / "runs" / config_id / f"r{repeat}"

    def run_path(self, config_id: str, repeat: int, cell_id: str) -> Path:
        return self.run_dir(config_id, repeat) / f"{cell_id}.json"

    def log_path(self, config_id: str, repeat: int) -> Path:
        return self.path / "logs" / f"{config_id}-r{repeat}.log"

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.path))

    def read_run(self, config_id: str, repeat: int, cell_id: str) -> RunRecord | None:
        p = self.run_path(config_id, repeat, cell_id)
        try:
            return RunRecord.model_validate_json(p.read_text())
        except (OSError, ValueError):
            return None  # absent or torn: the cell runs again

    def write_run(self, run: RunRecord) -> Path:
        r = run.row
        p = self.run_path(r.config_id, r.repeat, r.cell_id)
        atomic_write_text(p, run.model_dump_json())
        if self._runs is not None:
            self._runs[p] = _light(run)
        return p

    def read_launch(self, config_id: str, repeat: int) -> LaunchRecord | None:
        path = self.run_dir(config_id, repeat) / "launch.json"
        try:
            return LaunchRecord.model_validate_json(path.read_text())
        except (OSError, ValueError):
            return None

    def write_launch(self, rec: LaunchRecord) -> None:
        path = self.run_dir(rec.config_id, rec.repeat) / "launch.json"
        atomic_write_text(path, rec.model_dump_json(indent=1))

    def all_runs(self) -> list[RunRecord]:
        """Every run's row and columns (per-request records and samples dropped: rows only). Read
        from disk once; later writes update the cache, so results.csv costs O(rows) per cell."""
        if self._runs is None:
            self._runs = {}
            for p in sorted((self.path / "runs").glob("*/r*/*.json")):
                if p.name == "launch.json":
                    continue
                try:
                    self._runs[p] = _light(RunRecord.model_validate_json(p.read_text()))
                except ValueError:
                    continue
        return list(self._runs.values())

    def launch_count(self) -> int:
        return len(list((self.path / "runs").glob("*/r*/launch.json")))

    # -- results.csv -------------------------------------------------------------------------
    def append_row(self, run: RunRecord, host_columns: dict[str, Any]) -> Path:
        """Add one run's row to results.csv (O(1)); rewrite the file when the row has a column the
        header lacks, or when there is no header yet."""
        path = self.path / "results.csv"
        row = run.row.model_dump() | run.columns | host_columns
        header = self._header(path)
        if header is None or not set(row) <= set(header):
            return self.write_csv(host_columns)
        with path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=header, extrasaction="ignore").writerow(
                {k: _cell(v) for k, v in row.items()})
            f.flush()
            os.fsync(f.fileno())
        return path

    def _header(self, path: Path) -> list[str] | None:
        try:
            with path.open(newline="") as f:
                return next(csv.reader(f), None)
        except OSError:
            return None

    def write_csv(self, host_columns: dict[str, Any]) -> Path:
        runs = self.all_runs()
        groups: dict[tuple[str, str], list[Row]] = {}
        for run in runs:
            groups.setdefault((run.row.config_id, run.row.cell_id), []).append(run.row)
        rows = [_with_repeat_ci(run, groups) | run.columns | host_columns for run in runs]
        rows.sort(key=lambda r: (r["started_at"], r["config_id"], r["repeat"], r["cell_id"]))
        extra = sorted({k for r in rows for k in r} - set(FIXED_COLUMNS), key=_column_order)
        columns = [*FIXED_COLUMNS, *extra]
        path = self.path / "results.csv"
        out = io.StringIO(newline="")
        w = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _cell(v) for k, v in r.items()})
        return atomic_write_text(path, out.getvalue())


def _light(run: RunRecord) -> RunRecord:
    return RunRecord(row=run.row, columns=run.columns, requests=[], memory=[])


def _column_order(name: str) -> tuple[int, str]:
    for i, prefix in enumerate((AXIS_PREFIX, "gpu", "version.", HOST_PREFIX)):
        if name.startswith(prefix):
            return i, name
    return 9, name


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}" if abs(v) < 1e15 else f"{v:.0f}"
    if isinstance(v, list | dict):
        return json.dumps(v)
    return v


def _with_repeat_ci(run: RunRecord, groups: dict[tuple[str, str], list[Row]]) -> dict[str, Any]:
    """The row, with CI columns recomputed across repeats when its cell ran >= 2 good repeats."""
    row = run.row.model_dump()
    same = groups[(run.row.config_id, run.row.cell_id)]
    peers = [r for r in same if r.status in OK_STATUSES]
    row["n_repeats"] = len({r.repeat for r in same})
    if len(peers) >= 2:
        for m in CI_METRICS:
            lo, hi = ci95([getattr(p, m) for p in peers])
            if lo is not None:
                row[f"{m}_ci95_lo"], row[f"{m}_ci95_hi"] = lo, hi
        row["ci_basis"] = "repeats"
    return row
