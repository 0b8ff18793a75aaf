"""Host rows of the Verification Matrix: what phases 0 and 3 set up, plus SSH latency.

A row whose component a phase installs is UNKNOWN (with the measured value) while that phase's
marker is absent, and FAIL once the phase says it ran: "not deployed yet" is not "broken".
"""

from __future__ import annotations

import re
import shlex
import statistics
from typing import Any

from pyinfra.facts.server import LinuxDistribution

from deploys.checks import Row, Weight
from deploys.checks.context import CheckContext, judge, unknown
from deploys.core import markers
from deploys.host.grub import grub_settings, wanted_params
from deploys.host.nvidia_driver import nvidia_settings, signed_modules_package
from deploys.host.storage import storage_settings
from facts import gguf as gguf_probe
from facts.storage import fstab_entries, parse_mounts

ORDER = 20
#: the host-data tables these rows read: verify checks them before any row runs
SETTINGS = (grub_settings, storage_settings, nvidia_settings)



def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def _phase_gate(ctx: CheckContext, phase: str, ok: bool, name: str, target: str, measured: str,
                weight: Weight, reason: str = "") -> Row:
    """FAIL becomes UNKNOWN while ``phase`` has not run on this host."""
    if not ok and ctx.marker(phase) is None:
        why = f"{phase} not applied yet ({markers.host_marker_path(phase)} absent)"
        return unknown(name, target, weight, why + (f"; {reason}" if reason else ""), measured)
    return judge(name, target, measured, ok, weight, reason)


def os_rows(ctx: CheckContext, cfg: dict[str, Any]) -> list[Row]:
    dist = ctx.fact(LinuxDistribution) or {}
    found = (dist.get("name"), dist.get("major"), dist.get("minor"))
    name, major, minor = found
    measured = f"{name or '?'} {major}.{minor:02d}" if isinstance(major, int) and isinstance(minor, int) \
        else " ".join(str(part) for part in found if part is not None) or "?"
    rows = [judge("OS", "Ubuntu 24.04", measured, found == ("Ubuntu", 24, 4), Weight.CRITICAL)]
    release = ctx.run("uname -r").stdout.strip()
    hwe = ctx.run("dpkg-query -W -f='${Status}' linux-generic-hwe-24.04 2>/dev/null").stdout
    ok = bool(release) and _version_tuple(release) >= _version_tuple(cfg["kernel_min"])
    hwe_state = "installed" if "ok installed" in hwe else "absent"
    measured = f"{release or '?'}; linux-generic-hwe-24.04 {hwe_state}"
    target = f"HWE, >= {cfg['kernel_min']}"
    rows.append(_phase_gate(ctx, "phase3", ok, "Kernel", target, measured, Weight.HIGH))
    driver = ctx.hardware("NvidiaDriver")
    branch = cfg["driver_branch"]
    version = str(driver.get("version") or "") if driver.get("available") else ""
    flavour = {True: "open", False: "proprietary"}.get(driver.get("open_kernel_module"), "flavour unknown")
    if not version:
        rows.append(_phase_gate(ctx, "phase3", False, "NVIDIA driver", f"{branch}.x open", "not loaded",
                                Weight.CRITICAL, str(driver.get("reason") or "")))
    else:
        # the loaded module's own banner (/proc/driver/nvidia/version) says which flavour is running
        module = driver.get("kernel_module") or f"loaded module unreadable ({driver.get('reason')})"
        ok = version.split(".")[0] == str(branch) and flavour == "open"
        rows.append(judge("NVIDIA driver", f"{branch}.x open", f"{version} {flavour}: {module}", ok,
                          Weight.CRITICAL,
                          "" if ok else "Blackwell needs the open kernel modules of the pinned branch"))
    return rows


def secure_boot_rows(ctx: CheckContext) -> list[Row]:
    """Secure Boot on needs Canonical's signed modules (a DKMS build is refused without a MOK)."""
    sb = ctx.hardware("SecureBoot")
    signed = signed_modules_package(ctx.data)
    target = f"off, or on with {signed}"
    if not sb.get("available"):
        rows = [unknown("Secure Boot", target, Weight.HIGH, str(sb.get("reason") or "state unreadable"))]
    else:
        probe = ctx.run(f"dpkg-query -W -f='${{Status}}' {shlex.quote(signed)} 2>/dev/null")
        installed = "ok installed" in probe.stdout
        measured = f"{sb.get('detail')}; {signed} {'installed' if installed else 'absent'}"
        ok = not sb.get("secure_boot") or installed
        rows = [_phase_gate(ctx, "phase3", ok, "Secure Boot", target, measured, Weight.HIGH,
                            "" if ok else "Secure Boot is on: install the signed prebuilt modules (phase 3)")]
    active = ctx.run("systemctl is-active nvidia-persistenced.service")
    state = active.stdout.strip() or active.stderr.strip() or "unknown"
    rows.append(_phase_gate(ctx, "phase3", state == "active", "nvidia-persistenced", "active", state,
                            Weight.MEDIUM))
    return rows


def grub_rows(ctx: CheckContext) -> list[Row]:
    cfg = grub_settings(ctx.data)
    wanted, _ = wanted_params(cfg)
    cmdline = (ctx.read("/proc/cmdline") or "").split()
    missing = [p for p in wanted if p not in cmdline]
    reason = f"missing {' '.join(missing)}" if missing else ""
    if missing and wanted and all(p in (ctx.read(cfg["default_file"]) or "") for p in wanted):
        reason += f" (set in {cfg['default_file']}: reboot pending)"
    measured = f"present: {' '.join(p for p in wanted if p in cmdline) or 'none'}" if cmdline else "?"
    rows = [_phase_gate(ctx, "phase3", not missing, "Kernel parameters", " ".join(wanted), measured,
                        Weight.MEDIUM, reason)]
    grub_cfg = ctx.read(cfg["grub_cfg"])
    if grub_cfg is None:
        rows.append(unknown("Dual boot menu", "Windows Boot Manager entry", Weight.HIGH,
                            f"no {cfg['grub_cfg']} (GRUB not installed on this host)"))
    else:
        entries = re.findall(r"^\s*menuentry\s+['\"]([^'\"]+)", grub_cfg, re.M)
        ok = any("Windows Boot Manager" in e for e in entries)
        rows.append(_phase_gate(ctx, "phase3", ok, "Dual boot menu", "Windows Boot Manager entry",
                                "; ".join(entries[:4]) or "no entries", Weight.HIGH,
                                "" if ok else "run update-grub with GRUB_DISABLE_OS_PROBER=false"))
    return rows


def storage_rows(ctx: CheckContext) -> list[Row]:
    cfg = storage_settings(ctx.data)
    mountpoint = cfg["mountpoint"]
    target = f"xfs at {mountpoint}, UUID= in {cfg['fstab']}, noatime"
    mounts = parse_mounts((ctx.read("/proc/self/mounts") or "").splitlines())
    mount = next((m for m in mounts if m[1] == mountpoint), None)
    fstab = fstab_entries((ctx.read(cfg["fstab"]) or "").splitlines())
    entry = next((f for f in fstab if len(f) > 3 and f[1] == mountpoint), None)
    measured = (f"{mount[0]} {mount[2]} ({mount[3]})" if mount else "not mounted") + \
        (f"; fstab {entry[0]} {entry[3]}" if entry else "; no fstab entry")
    ok = (mount is not None and mount[2] == "xfs" and "noatime" in mount[3].split(",")
          and entry is not None and entry[0].startswith("UUID=") and "noatime" in entry[3].split(","))
    return [_phase_gate(ctx, "phase3", ok, "Data disk", target, measured, Weight.HIGH)]


def tools_row(ctx: CheckContext, cfg: dict[str, Any]) -> Row:
    missing = [f"{binary} ({package})" for binary, package in cfg["tools"].items() if not ctx.which(binary)]
    return _phase_gate(ctx, "phase3", not missing, "Host tools", ", ".join(cfg["tools"]),
                       "all present" if not missing else f"missing {', '.join(missing)}", Weight.MEDIUM)


def model_row(ctx: CheckContext, cfg: dict[str, Any]) -> Row:
    model = ctx.data.get("model") or {}
    path, size, arch = model.get("path"), model.get("size_bytes"), model.get("architecture")
    target = f"{path}: {arch}, {size} bytes ±{cfg['model_size_tolerance']:.0%}"
    if not path:
        return unknown("Model file", "model.path set", Weight.HIGH, "no model.path in the inventory")
    probe = gguf_probe.parse(ctx.run(gguf_probe.command(path), timeout=60).lines)
    if not probe.get("exists"):
        reason = probe.get("error") or "model not downloaded yet (phase 0 model step)"
        return unknown("Model file", target, Weight.HIGH, str(reason), "absent")
    problems = gguf_probe.judge_model(probe, size, arch, cfg["model_size_tolerance"])
    files = len(probe.get("files") or [])
    measured = f"{probe.get('architecture')}, {probe.get('total_bytes')} bytes in {files} file(s)"
    return judge("Model file", target, measured, not problems, Weight.HIGH, "; ".join(problems))


def phase0_row(ctx: CheckContext) -> Row:
    marker = markers.read_phase0_marker(ctx.host.name)
    path = markers.phase0_marker_path(ctx.host.name)
    if marker is None:
        return unknown("Phase 0 ready", "marker on the controller", Weight.MEDIUM, f"{path} absent", "absent")
    return judge("Phase 0 ready", "marker on the controller", f"written {marker.get('written_at')}", True,
                 Weight.MEDIUM)


def ssh_latency_row(ctx: CheckContext, cfg: dict[str, Any]) -> Row:
    samples = [ctx.run("true") for _ in range(int(cfg["ssh_latency_samples"]))]
    if not all(p.ok for p in samples):
        return unknown("SSH latency", f"< {cfg['ssh_latency_ms_max']} ms", Weight.MEDIUM,
                       f"probe failed: {samples[-1].stderr[:200]}")
    times = [p.seconds * 1000 for p in samples]
    median = statistics.median(times)
    connector = type(getattr(ctx.host, "connector", None)).__name__
    if connector != "SSHConnector":
        return unknown("SSH latency", f"< {cfg['ssh_latency_ms_max']} ms round trip", Weight.MEDIUM,
                       f"not an SSH host ({connector}): measure from the controller over SSH",
                       f"median {median:.2f} ms of {len(times)}")
    return judge("SSH latency", f"< {cfg['ssh_latency_ms_max']} ms round trip",
                 f"median {median:.2f} ms of {len(times)} ({connector})", median < cfg["ssh_latency_ms_max"],
                 Weight.MEDIUM)


def rows(ctx: CheckContext) -> list[Row]:
    cfg = ctx.verify.model_dump()
    return [*os_rows(ctx, cfg), *secure_boot_rows(ctx), *grub_rows(ctx), *storage_rows(ctx),
            tools_row(ctx, cfg), model_row(ctx, cfg), phase0_row(ctx), ssh_latency_row(ctx, cfg)]
