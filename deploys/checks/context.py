"""What every ``deploys/checks/<module>.py`` receives: one :class:`CheckContext` per host.

``deploys/verify.py`` builds the context once per host while pyinfra prepares the run, then calls
``rows(ctx) -> list[Row]`` of every module in the ``deploys.checks`` package (this module, the engine
``matrix.py`` and private ``_*`` modules excepted). A module never raises for a missing component: it
returns UNKNOWN rows with the reason (verify turns an unexpected exception into one UNKNOWN row anyway).

What a check module may use (nothing here raises; every probe runs ON the target host, so services
bound to the host's 127.0.0.1 are reachable, and works for ``@local``, ``@ssh`` and ``@fake``):

``ctx.host``
    the pyinfra ``Host`` (``.name``, ``.groups``).
``ctx.data``
    the host data as a plain dict (``omni/hostdata.py`` keys plus ``--data`` overrides).
``ctx.verify``
    the host data's ``verify`` table as :class:`VerifySettings` (defaults filled in, validated once
    by ``verify_host`` before any row runs: a bad value stops the run with one line).
    A module that reads another table declares its readers as ``SETTINGS = (grub_settings, ...)``:
    ``verify_host`` runs them first too, so a bad table is one line, not a crashed module.
``ctx.fact(FactClass, *args, **kwargs)``
    a pyinfra fact, cached per run; ``None`` when gathering it failed (``ctx.errors`` says why).
``ctx.hardware(name)``
    a ``facts.hardware`` fact by class name (``"PcieLinks"``, ``"MemoryModules"``,
    ``"NumaTopology"``, ``"NvidiaGpus"``, ``"BlockDevices"``, ``"CpuInfo"``, ``"NvidiaDriver"``,
    ``"SecureBoot"``):
    always a dict with ``available``/``source``/``reason`` and the issue-2 keys when available.
``ctx.run(command, timeout=20) -> Probe``
    a shell command on the host: ``.ok`` (exit 0), ``.stdout``, ``.stderr``, ``.lines``,
    ``.seconds`` (wall time seen from the controller), ``.command``.
``ctx.which(binary) -> bool``, ``ctx.read(path) -> str | None``
    a program on the host's PATH; a file's text (``None`` when absent or unreadable).
``ctx.http(url, timeout=5, method="GET", body=None, headers=None) -> HttpProbe``
    an HTTP request made from the host with its ``python3`` (no curl needed): ``.status`` (int or
    ``None``), ``.body`` (text, first 64 KiB), ``.headers``, ``.error`` (why there is no status),
    ``.seconds``.
``ctx.marker(phase) -> dict | None``
    the JSON a phase leaves in ``/var/lib/omni/<phase>.json`` when it completed (e.g. ``"phase3"``):
    the way to tell "not deployed yet" (UNKNOWN) from "deployed and broken" (FAIL).

Row helpers: :func:`judge` (PASS/FAIL from a bool, UNKNOWN when the bool is ``None``) and
:func:`unknown`. A minimal module::

    from deploys.checks import Row, Weight
    from deploys.checks.context import CheckContext, judge, unknown

    def rows(ctx: CheckContext) -> list[Row]:
        if not ctx.which("kubectl"):
            return [unknown("K3s node Ready", "Ready", Weight.CRITICAL, "kubectl not installed (phase 4)")]
        probe = ctx.run("kubectl get nodes --no-headers")
        return [judge("K3s node Ready", "Ready", probe.stdout.strip() or probe.stderr.strip(),
                      probe.ok and " Ready " in f" {probe.stdout} ", Weight.CRITICAL)]
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from deploys.checks import Row, Status, Weight
from deploys.core.markers import MARKER_DIR
from facts import hardware as hardware_facts
from omni.settings import table

HARDWARE_FACTS = (
    "PcieLinks",
    "MemoryModules",
    "NumaTopology",
    "NvidiaGpus",
    "BlockDevices",
    "CpuInfo",
    "NvidiaDriver",
    "SecureBoot",
)

# Runs on the host: one HTTP request, one JSON line out, never a traceback.
_HTTP_SNIPPET = """
import json, sys, time, urllib.request, urllib.error
a = json.loads(sys.argv[1]); t = time.monotonic()
r = {"status": None, "body": "", "error": "", "headers": {}}
try:
    q = urllib.request.Request(a["url"], data=a["body"].encode() if a["body"] is not None else None,
                               method=a["method"], headers=a["headers"])
    with urllib.request.urlopen(q, timeout=a["timeout"]) as f:
        r["status"] = f.status; r["headers"] = dict(f.headers)
        r["body"] = f.read(65536).decode("utf-8", "replace")
except urllib.error.HTTPError as e:
    r["status"] = e.code; r["body"] = e.read(65536).decode("utf-8", "replace")
except Exception as e:
    r["error"] = f"{type(e).__name__}: {e}"
r["seconds"] = time.monotonic() - t
print(json.dumps(r))
"""


class VerifySettings(BaseModel):
    """The host data's ``verify`` table: the targets and probe sizes of the matrix's rows.

    Why one model: the table used to be read in three modules with three sets of defaults and bare
    ``float()``/``int()``, so a typo'd value crashed a whole module's rows into one UNKNOWN.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kernel_min: str = "6.11"  # linux-generic-hwe-24.04 (6.11 in 24.04.2, 6.14 in 24.04.3)
    driver_branch: int = Field(580, gt=0)
    ssh_latency_ms_max: float = Field(100.0, gt=0)  # the runbook's Definition of Done: single hop, < 100 ms
    ssh_latency_samples: int = Field(5, ge=1, le=1000)
    model_size_tolerance: float = Field(0.02, ge=0, lt=1)
    #: binary -> the apt package that provides it
    tools: dict[str, str] = {"numactl": "numactl", "lstopo-no-graphics": "hwloc", "lspci": "pciutils",
                             "dmidecode": "dmidecode", "nvme": "nvme-cli"}
    pcie_load_seconds: float = Field(5, ge=0, le=3600, allow_inf_nan=False)  # 0: no load, idle links only
    min_decode_tps: float = Field(15, gt=0, allow_inf_nan=False)  # the Definition of Done's > 15 tokens/s
    speed_max_tokens: int = Field(256, ge=1)
    speed_timeout_s: float = Field(600, gt=0, allow_inf_nan=False)


def verify_settings(data: Any) -> VerifySettings:
    """``verify`` merged over the defaults (a host's ``tools`` extends them); one line on a bad value."""
    return table(VerifySettings, data, "verify")


@dataclass(frozen=True)
class Probe:
    command: str
    ok: bool
    stdout: str
    stderr: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


@dataclass(frozen=True)
class HttpProbe:
    url: str
    status: int | None
    body: str
    error: str
    seconds: float
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class CheckContext:
    host: Any
    data: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    _facts: dict[tuple, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def for_host(cls, host: Any) -> CheckContext:
        return cls(host=host, data=host.data.dict())

    @cached_property
    def verify(self) -> VerifySettings:
        return verify_settings(self.data)

    def fact(self, fact_cls: type, *args: Any, **kwargs: Any) -> Any:
        key = (fact_cls, args, tuple(sorted(kwargs.items())))
        if key not in self._facts:
            try:
                self._facts[key] = self.host.get_fact(fact_cls, *args, **kwargs)
            except Exception as exc:  # a fact that cannot be gathered is data, not a crash
                self.errors[fact_cls.__name__] = f"{type(exc).__name__}: {exc}"
                self._facts[key] = None
        return self._facts[key]

    def hardware(self, name: str) -> dict[str, Any]:
        fact_cls = getattr(hardware_facts, name, None)
        if fact_cls is None:
            return {"available": False, "source": None, "reason": f"facts.hardware has no fact {name!r}"}
        value = self.fact(fact_cls)
        if not isinstance(value, dict):
            reason = self.errors.get(fact_cls.__name__, "fact returned nothing")
            return {"available": False, "source": None, "reason": reason}
        return value

    def run(self, command: str, timeout: float = 20) -> Probe:
        start = time.monotonic()
        try:
            ok, output = self.host.run_shell_command(command, _timeout=timeout)
            stdout = "\n".join(output.stdout_lines)
            stderr = "\n".join(output.stderr_lines)
        except Exception as exc:  # connection loss, timeout: report, never raise
            ok, stdout, stderr = False, "", f"{type(exc).__name__}: {exc}"
        return Probe(command, bool(ok), stdout, stderr, time.monotonic() - start)

    def which(self, binary: str) -> bool:
        return self.run(f"command -v {shlex.quote(binary)} >/dev/null 2>&1").ok

    def read(self, path: str) -> str | None:
        probe = self.run(f"cat {shlex.quote(path)} 2>/dev/null")
        return probe.stdout if probe.ok else None

    def http(
        self,
        url: str,
        timeout: float = 5,
        method: str = "GET",
        body: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> HttpProbe:
        args = json.dumps(
            {"url": url, "timeout": timeout, "method": method, "body": body, "headers": headers or {}}
        )
        probe = self.run(f"python3 -c {shlex.quote(_HTTP_SNIPPET)} {shlex.quote(args)}", timeout=timeout + 10)
        try:
            result = json.loads(probe.lines[-1])
        except (IndexError, ValueError):
            return HttpProbe(
                url, None, "", probe.stderr.strip()[-300:] or "no python3 on the host", probe.seconds
            )
        return HttpProbe(
            url,
            result["status"],
            result["body"],
            result["error"],
            result["seconds"],
            result.get("headers") or {},
        )

    def marker(self, phase: str) -> dict[str, Any] | None:
        text = self.read(f"{MARKER_DIR}/{phase}.json")
        if text is None:
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return {"unreadable": text[:200]}
        return value if isinstance(value, dict) else {"value": value}


def judge(name: str, target: str, measured: Any, ok: bool | None, weight: Weight, reason: str = "") -> Row:
    """PASS when ``ok``, FAIL when not, UNKNOWN when ``ok is None`` (nothing to judge)."""
    status = Status.UNKNOWN if ok is None else Status.PASS if ok else Status.FAIL
    return Row(name, target, str(measured), status, weight, reason)


def unknown(name: str, target: str, weight: Weight, reason: str, measured: str = "-") -> Row:
    return Row(name, target, measured, Status.UNKNOWN, weight, reason)
