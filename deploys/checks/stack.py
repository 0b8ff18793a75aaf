"""Phase 5 rows of the Verification Matrix: the inference API, memory headroom, Memgraph, Prometheus,
Grafana and Phoenix.

What phase 5 deployed comes from its marker (``/var/lib/omni/phase5.json``: models, ports,
components); a component it did not deploy is UNKNOWN with the reason, never FAIL. Every probe runs
on the host, so services bound to its 127.0.0.1 are reachable.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from deploys.checks import Row, Weight
from deploys.checks.context import CheckContext, judge, unknown

ORDER = 50
GIB = 1024**3
NOT_DEPLOYED = "phase 5 not deployed (no /var/lib/omni/phase5.json): run deploys/phase5.py"
MEMGRAPH_QUERY = "RETURN 1 AS ok;"
OFF = "{} is not enabled in the stack inventory, so phase 5 did not deploy it"

NAMES = {
    "models": "/v1/models lists the model",
    "headroom": "Memory headroom during inference",
    "memgraph": "Memgraph answers a query",
    "prometheus": "Prometheus targets up",
    "grafana": "Grafana login page",
    "phoenix": "Phoenix restart marker",
}


def _url_host(bind: str | None) -> str:
    return "127.0.0.1" if bind in (None, "", "0.0.0.0", "::") else str(bind)


def _served_ids(body: str) -> list[str]:
    try:
        data = json.loads(body).get("data") or []
    except (ValueError, AttributeError):
        return []
    ids = []
    for item in data:
        ids += [item.get("id"), *(item.get("aliases") or [])]
    return [i for i in ids if i]


def model_rows(ctx: CheckContext, marker: dict[str, Any]) -> list[Row]:
    rows = []
    for model in marker.get("models") or []:
        name = f"{NAMES['models']} ({model['name']})"
        target = f"{model['served_name']} on {_url_host(marker.get('bind'))}:{model['port']}"
        probe = ctx.http(f"http://{_url_host(marker.get('bind'))}:{model['port']}/v1/models", timeout=10)
        if probe.status is None:
            rows.append(judge(name, target, f"no answer: {probe.error}", False, Weight.CRITICAL,
                              "the server is down or still loading: docker logs omni-" + model["service"]))
            continue
        ids = _served_ids(probe.body)
        ok = probe.status == 200 and model["served_name"] in ids
        rows.append(judge(name, target, f"HTTP {probe.status}: {', '.join(ids) or 'no models'}", ok,
                          Weight.CRITICAL, "" if ok else "the server answers but does not list the model"))
    return rows


def headroom_row(ctx: CheckContext, marker: dict[str, Any], serving: bool) -> Row:
    goal = float(marker.get("headroom_gib") or 80)
    target = f">= {goal:g} GiB MemAvailable while models are loaded"
    if not serving:
        return unknown(NAMES["headroom"], target, Weight.HIGH, "no model is serving: nothing to measure")
    text = ctx.read("/proc/meminfo") or ""
    available = next((int(line.split()[1]) * 1024 for line in text.splitlines()
                      if line.startswith("MemAvailable:")), None)
    if available is None:
        return unknown(NAMES["headroom"], target, Weight.HIGH, "/proc/meminfo unreadable")
    ok = available >= goal * GIB
    return judge(NAMES["headroom"], target, f"{available / GIB:.1f} GiB available", ok, Weight.HIGH,
                 "" if ok else "the models leave less than the headroom goal: disable one or shrink a quant")


def memgraph_row(ctx: CheckContext, marker: dict[str, Any]) -> Row:
    target = f"{MEMGRAPH_QUERY} returns 1"
    if not marker.get("memgraph"):
        return unknown(NAMES["memgraph"], target, Weight.HIGH, OFF.format("Memgraph"))
    query = shlex.quote(f"echo '{MEMGRAPH_QUERY}' | mgconsole --output-format=csv")
    probe = ctx.run(f"docker exec omni-memgraph sh -c {query}", timeout=30)
    ok = probe.ok and any(line.strip().strip('"') == "1" for line in probe.lines[1:])
    measured = " ".join(probe.lines).strip() or probe.stderr.strip()[-200:] or "no output"
    return judge(NAMES["memgraph"], target, measured, ok, Weight.HIGH,
                 "" if ok else "docker logs omni-memgraph (on AMD Zen 5 check GLIBC_TUNABLES is set)")


def prometheus_row(ctx: CheckContext, marker: dict[str, Any]) -> Row:
    obs = marker.get("observability")
    target = "every scrape target up"
    if not obs:
        return unknown(NAMES["prometheus"], target, Weight.MEDIUM, OFF.format("observability"))
    base = f"http://{_url_host(obs.get('bind'))}:{obs['prometheus_port']}"
    probe = ctx.http(f"{base}/api/v1/targets?state=active")
    try:
        targets = json.loads(probe.body)["data"]["activeTargets"]
    except (ValueError, KeyError, TypeError):
        measured = f"no target list: HTTP {probe.status} {probe.error}".strip()
        return judge(NAMES["prometheus"], target, measured, False, Weight.MEDIUM,
                     "docker logs omni-prometheus")
    down = sorted(f"{t['labels'].get('job')}/{t['labels'].get('instance')}" for t in targets
                  if t.get("health") != "up")
    measured = f"{len(targets) - len(down)}/{len(targets)} up"
    if down:
        measured += f"; down: {', '.join(down)}"
    return judge(NAMES["prometheus"], target, measured, bool(targets) and not down, Weight.MEDIUM,
                 "" if not down else "a scraped service is down or unreachable on the omni network")


def grafana_row(ctx: CheckContext, marker: dict[str, Any]) -> Row:
    obs = marker.get("observability")
    target = "HTTP 200 with the login form"
    if not obs:
        return unknown(NAMES["grafana"], target, Weight.MEDIUM, OFF.format("observability"))
    probe = ctx.http(f"http://{_url_host(obs.get('bind'))}:{obs['grafana_port']}/login")
    ok = probe.status == 200 and "grafana" in probe.body.lower()
    measured = f"HTTP {probe.status}" if probe.status is not None else f"no answer: {probe.error}"
    return judge(NAMES["grafana"], target, measured, ok, Weight.MEDIUM,
                 "" if ok else "docker logs omni-grafana")


def phoenix_row(ctx: CheckContext, marker: dict[str, Any]) -> Row:
    phoenix = marker.get("phoenix")
    target = "omni-phoenix.path active; last restart recorded"
    if not phoenix:
        return unknown(NAMES["phoenix"], target, Weight.MEDIUM, OFF.format("Phoenix"))
    active = ctx.run("systemctl is-active omni-phoenix.path")
    state = active.stdout.strip() or active.stderr.strip() or "unknown"
    last = (ctx.read(f"{phoenix['state_dir']}/last-restart") or "").strip()
    refused = (ctx.read(f"{phoenix['state_dir']}/restart-refused") or "").strip()
    measured = f"path unit {state}; last restart {last or 'never'}"
    if refused:
        measured += f"; last refusal {refused}"
    return judge(NAMES["phoenix"], target, measured, active.ok and state == "active", Weight.MEDIUM,
                 "" if active.ok else "systemctl status omni-phoenix.path")


def rows(ctx: CheckContext) -> list[Row]:
    marker = ctx.marker("phase5")
    if not marker or "unreadable" in marker:
        reason = NOT_DEPLOYED if not marker else "the phase 5 marker is unreadable: rerun deploys/phase5.py"
        return [unknown(NAMES[key], "-", Weight.HIGH if key in ("headroom", "memgraph") else
                        Weight.CRITICAL if key == "models" else Weight.MEDIUM, reason) for key in NAMES]
    models = model_rows(ctx, marker)
    serving = bool(models) and all(r.status == "PASS" for r in models)
    return [*models, headroom_row(ctx, marker, serving), memgraph_row(ctx, marker),
            prometheus_row(ctx, marker), grafana_row(ctx, marker), phoenix_row(ctx, marker)]
