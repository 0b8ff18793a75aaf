"""Phase 5 rows of the Verification Matrix: the inference API, its decode speed, memory headroom,
Memgraph, Prometheus, Grafana and Phoenix.

Judged as the runbook's Definition of Done asks: decode speed "> 15 tokens/s" (HIGH); headroom
"> 80 GB free during inference" counts ``MemAvailable`` *minus* ``Mapped`` (page cache that
processes have mapped — the memory-mapped GGUF is counted by the kernel as reclaimable cache, but
evicting it stalls inference, so it is not spare); Memgraph writes a node and reads it back;
Phoenix is CRITICAL and needs more than an active path unit (its last run succeeded, and a restart
has been recorded and finished cleanly).

What phase 5 deployed comes from its marker (``/var/lib/omni/phase5.json``: models, ports,
components); a component it did not deploy is UNKNOWN with the reason, never FAIL. Every probe runs
on the host, so services bound to its 127.0.0.1 are reachable.
"""

from __future__ import annotations

import json
import shlex
import time
from typing import Any

from deploys.checks import Row, Weight
from deploys.checks.context import CheckContext, judge, unknown
from omni.llamacpp import decode_rate

ORDER = 50
GIB = 1024**3
NOT_DEPLOYED = "phase 5 not deployed (no /var/lib/omni/phase5.json): run deploys/phase5.py"
#: Written, then read back in a second session: a round trip through storage, not only a parser.
MEMGRAPH_WRITE = "MERGE (n:OmniVerify {{id: 'verify'}}) SET n.token = '{token}' RETURN n.token;"
MEMGRAPH_READ = "MATCH (n:OmniVerify {id: 'verify'}) RETURN n.token;"
SPEED_PROMPT = "Count from 1 to 500, one number per line."
OFF = "{} is not enabled in the stack inventory, so phase 5 did not deploy it"

NAMES = {
    "models": "/v1/models lists the model",
    "speed": "Inference speed",
    "headroom": "Memory headroom during inference",
    "memgraph": "Memgraph writes and reads a node",
    "prometheus": "Prometheus targets up",
    "grafana": "Grafana login page",
    "phoenix": "Phoenix restart marker",
}


WEIGHTS = {"models": Weight.CRITICAL, "speed": Weight.HIGH, "headroom": Weight.CRITICAL,
           "memgraph": Weight.HIGH, "prometheus": Weight.MEDIUM, "grafana": Weight.MEDIUM,
           "phoenix": Weight.CRITICAL}


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
        engine = model.get("engine") or "llama-server"  # ik_llama serves the same /v1/models
        target = f"{model['served_name']} ({engine}) on {_url_host(marker.get('bind'))}:{model['port']}"
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


def decode_tps(body: str, seconds: float) -> tuple[float | None, str]:
    """Decode tokens/s from a chat completion: llama.cpp's own timings, else tokens / wall time."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None, "unreadable answer"
    timings = answer.get("timings") or {}
    rate = decode_rate(timings)  # one definition for mainline and ik_llama.cpp (see omni.llamacpp)
    if rate:
        return rate, f"{timings.get('predicted_n')} tokens, server timings"
    tokens = (answer.get("usage") or {}).get("completion_tokens")
    if tokens and seconds > 0:
        return tokens / seconds, f"{tokens} tokens / {seconds:.1f} s wall (includes prefill)"
    return None, "no timings and no usage in the answer"


def speed_rows(ctx: CheckContext, marker: dict[str, Any]) -> list[Row]:
    """The Definition of Done's "> 15 tokens/s": one real completion per serving model."""
    goal, tokens = ctx.verify.min_decode_tps, ctx.verify.speed_max_tokens
    rows = []
    for model in marker.get("models") or []:
        name, target = f"{NAMES['speed']} ({model['name']})", f"> {goal:g} tokens/s decode"
        body = {"model": model["served_name"], "messages": [{"role": "user", "content": SPEED_PROMPT}],
                "max_tokens": tokens, "temperature": 0}
        if model.get("engine") == "llama-server":
            body["ignore_eos"] = True  # a fixed number of decoded tokens, however the model answers
        probe = ctx.http(f"http://{_url_host(marker.get('bind'))}:{model['port']}/v1/chat/completions",
                         timeout=ctx.verify.speed_timeout_s, method="POST", body=json.dumps(body),
                         headers={"Content-Type": "application/json"})
        if probe.status != 200:
            rows.append(judge(name, target, f"HTTP {probe.status} {probe.error}".strip(), False, Weight.HIGH,
                              "the completion failed: docker logs omni-" + model["service"]))
            continue
        tps, how = decode_tps(probe.body, probe.seconds)
        if tps is None:
            rows.append(unknown(name, target, Weight.HIGH, how))
            continue
        rows.append(judge(name, target, f"{tps:.1f} tokens/s ({how})", tps > goal, Weight.HIGH,
                          "" if tps > goal else "below the Definition of Done: see the bench sweep for "
                          "a faster placement (python -m bench sweep)"))
    return rows


def headroom_bytes(meminfo: str) -> tuple[int, int, int] | None:
    """(headroom, MemAvailable, Mapped) in bytes: mapped page cache (the mmapped model) is not spare."""
    values = {}
    for line in meminfo.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("MemAvailable:", "Mapped:") and parts[1].isdigit():
            values[parts[0][:-1]] = int(parts[1]) * 1024
    if "MemAvailable" not in values or "Mapped" not in values:
        return None
    return max(0, values["MemAvailable"] - values["Mapped"]), values["MemAvailable"], values["Mapped"]


def headroom_row(ctx: CheckContext, marker: dict[str, Any], serving: bool) -> Row:
    goal = float(marker.get("headroom_gib") or 80)
    target = f">= {goal:g} GiB MemAvailable - Mapped while models are loaded"
    if not serving:
        return unknown(NAMES["headroom"], target, Weight.CRITICAL, "no model is serving: nothing to measure")
    found = headroom_bytes(ctx.read("/proc/meminfo") or "")
    if found is None:
        return unknown(NAMES["headroom"], target, Weight.CRITICAL, "/proc/meminfo unreadable")
    headroom, available, mapped = found
    ok = headroom >= goal * GIB
    measured = (f"{headroom / GIB:.1f} GiB (MemAvailable {available / GIB:.1f} - mapped page cache "
                f"{mapped / GIB:.1f})")
    return judge(NAMES["headroom"], target, measured, ok, Weight.CRITICAL,
                 "" if ok else "the models leave less than the headroom goal: disable one or shrink a quant")


def mgconsole_values(lines: list[str]) -> list[str]:
    """The data cells of ``mgconsole --output-format=csv`` (header line dropped, quotes stripped)."""
    return [line.strip().strip('"') for line in lines[1:] if line.strip()]


def memgraph_row(ctx: CheckContext, marker: dict[str, Any]) -> Row:
    target = "a node written, then read back in a new session"
    if not marker.get("memgraph"):
        return unknown(NAMES["memgraph"], target, Weight.HIGH, OFF.format("Memgraph"))
    token = f"verify-{time.time_ns()}"
    steps = []
    for query in (MEMGRAPH_WRITE.format(token=token), MEMGRAPH_READ):
        command = shlex.quote(f"echo {shlex.quote(query)} | mgconsole --output-format=csv")
        steps.append(ctx.run(f"docker exec omni-memgraph sh -c {command}", timeout=30))
    write, read = steps
    ok = write.ok and read.ok and mgconsole_values(read.lines) == [token]
    failed = next((p for p in steps if not p.ok), None)
    if failed is None:
        measured = f"read back {', '.join(mgconsole_values(read.lines)) or 'nothing'} (wrote {token})"
    else:
        measured = failed.stderr.strip()[-200:] or failed.stdout.strip()[-200:] or "no output"
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


PHOENIX_LOG = "/var/log/omni-phoenix/phoenix.log"


def phoenix_row(ctx: CheckContext, marker: dict[str, Any]) -> Row:
    phoenix = marker.get("phoenix")
    target = "path unit active; last run succeeded; a restart recorded that finished with exit 0"
    if not phoenix:
        return unknown(NAMES["phoenix"], target, Weight.CRITICAL, OFF.format("Phoenix"))
    active = ctx.run("systemctl is-active omni-phoenix.path")
    state = active.stdout.strip() or active.stderr.strip() or "unknown"
    result = ctx.run("systemctl show -p Result --value omni-phoenix.service").stdout.strip() or "unknown"
    last = (ctx.read(f"{phoenix['state_dir']}/last-restart") or "").strip()
    refused = (ctx.read(f"{phoenix['state_dir']}/restart-refused") or "").strip()
    log = ctx.read(phoenix.get("log", PHOENIX_LOG)) or ""
    finished = [line for line in log.splitlines() if "restart finished (exit" in line]
    exit_code = finished[-1].rsplit("(exit", 1)[1].strip(" )") if finished else None
    measured = f"path unit {state}; service result {result}; last restart {last or 'never'}"
    if exit_code is not None:
        measured += f" (exit {exit_code})"
    if refused:
        measured += f"; last refusal {refused}"
    if state != "active":
        return judge(NAMES["phoenix"], target, measured, False, Weight.CRITICAL,
                     "systemctl status omni-phoenix.path (restart requests are not watched)")
    if result not in ("success", "unknown"):
        return judge(NAMES["phoenix"], target, measured, False, Weight.CRITICAL,
                     f"the last restart run failed ({result}): journalctl -u omni-phoenix.service")
    if not last or exit_code is None:
        return unknown(NAMES["phoenix"], target, Weight.CRITICAL,
                       f"no restart has run yet: touch {phoenix['state_dir']}/restart-requested, wait for it "
                       "to finish, then verify again", measured)
    return judge(NAMES["phoenix"], target, measured, exit_code == "0", Weight.CRITICAL,
                 "" if exit_code == "0" else f"the last recreate failed: see {PHOENIX_LOG}")


def rows(ctx: CheckContext) -> list[Row]:
    marker = ctx.marker("phase5")
    if not marker or "unreadable" in marker:
        reason = NOT_DEPLOYED if not marker else "the phase 5 marker is unreadable: rerun deploys/phase5.py"
        return [unknown(NAMES[key], "-", WEIGHTS[key], reason) for key in NAMES]
    models = model_rows(ctx, marker)
    serving = bool(models) and all(r.status == "PASS" for r in models)
    speed = speed_rows(ctx, marker) if serving else [
        unknown(NAMES["speed"], f"> {ctx.verify.min_decode_tps:g} "
                "tokens/s decode", Weight.HIGH, "no model is serving: nothing to measure")]
    return [*models, *speed, headroom_row(ctx, marker, serving), memgraph_row(ctx, marker),
            prometheus_row(ctx, marker), grafana_row(ctx, marker), phoenix_row(ctx, marker)]
