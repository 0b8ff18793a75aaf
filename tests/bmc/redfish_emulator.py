"""The real sushy-tools Redfish emulator, extended where it lacks what our BMC has.

Run as a script it *is* ``sushy-emulator`` (same ``main()``, same config file, same basic-auth
middleware) with two additions installed first:

* ``QuickFakeDriver``: the fake driver's power changes land after ``OMNI_POWER_DELAY_S`` instead
  of a random 1–11 s, so waits are deterministic and fast.
* ``OmniLayer``: a WSGI layer inside the auth middleware that adds what the emulator lacks —
  a BIOS resource with pending settings applied at the next boot and an attribute registry,
  ``BootSourceOverrideEnabled`` read back as sent (``Once`` reverts to ``Disabled`` at boot),
  ``Usb``/``BiosSetup`` boot targets, request counters (``GET /omni-test/requests``), optional
  stalls (every reset POST, or the first GET of the Systems collection), and an AMI-like mode
  (``OMNI_AMI_MODE``): InsertMedia requires ``TransferProtocolType`` and an empty drive,
  mounting takes ``OMNI_MOUNT_DELAY_S``, BIOS settings live at ``Bios/SD`` and PATCH needs
  ``If-Match``, ``PowerCycle`` is offered.

``emulator_harness.py`` starts it as a subprocess on 127.0.0.1 port 0 and reads the port from its
output.
"""

from __future__ import annotations

import http.server
import io
import json
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

SYSTEM_RE = re.compile(r"^/redfish/v1/Systems/([^/]+)(/.*)?$")
REGISTRY_PATH = "/redfish/v1/Systems/Bios/BiosRegistry"
REGISTRY_ID = "BiosAttributeRegistryOmniWRX90.1.0.0"
BOOTING_RESETS = {"On", "ForceOn", "GracefulRestart", "ForceRestart", "PowerCycle"}
GEN = ["Auto", "Gen1", "Gen2", "Gen3", "Gen4", "Gen5"]
SHP_GEN = ["Auto", "GEN1", "GEN2", "GEN3", "GEN4", "GEN5"]

#: AMI-style attributes of a WRX90 board as the tests imagine it: name -> (registry entry, current).
ATTRIBUTES: dict[str, tuple[dict[str, Any], Any]] = {
    "PCIS1LinkSpeed": (
        {"Type": "Enumeration", "DisplayName": "PCIEX16(G5)_1 Link Speed", "values": GEN},
        "Gen4",
    ),
    "PCIS3LinkSpeed": (
        {"Type": "Enumeration", "DisplayName": "PCIEX16(G5)_3 Link Speed", "values": GEN},
        "Auto",
    ),
    "CbsDfCmnDramNps": (
        {
            "Type": "Enumeration",
            "DisplayName": "NUMA nodes per socket",
            "values": ["Auto", "NPS0", "NPS1", "NPS2", "NPS4"],
        },
        "NPS1",
    ),
    # the reference board's names (the runbook; the owner's Redfish dumps of the ASMB11-iKVM)
    "CbsCmnEarlyLinkSpeedSHP": (
        {"Type": "Enumeration", "DisplayName": "Early Link Speed", "values": SHP_GEN},
        "Auto",
    ),
    "CbsCmnPcieTargetLinkSpeedSHP": (
        {"Type": "Enumeration", "DisplayName": "Target Link Speed", "values": SHP_GEN},
        "Auto",
    ),
    "CbsDfCmnDramNpsSHP": (
        {"Type": "Enumeration", "DisplayName": "Nodes Per Socket (NPS)",
         "values": ["Auto", "NPS0", "NPS1", "NPS2", "NPS4"]},
        "NPS1",
    ),
    "AiOverclockTuner": (
        {
            "Type": "Enumeration",
            "DisplayName": "Ai Overclock Tuner",
            "values": ["Auto", "Manual", "EXPO I", "EXPO II"],
        },
        "Auto",
    ),
    "SvmMode": (
        {"Type": "Enumeration", "DisplayName": "SVM Mode", "values": ["Disabled", "Enabled"]},
        "Enabled",
    ),
    "BootTimeout": ({"Type": "Integer", "DisplayName": "Boot timeout", "LowerBound": 0, "UpperBound": 30}, 5),
    "SecureBootEnable": ({"Type": "Boolean", "DisplayName": "Secure Boot"}, False),
    "BiosBuildDate": ({"Type": "String", "DisplayName": "Build date", "ReadOnly": True}, "2026-10-01"),
}


def registry_document() -> dict[str, Any]:
    entries = []
    for name, (spec, _value) in ATTRIBUTES.items():
        entry = {
            "AttributeName": name,
            "Type": spec["Type"],
            "DisplayName": spec["DisplayName"],
            "ReadOnly": spec.get("ReadOnly", False),
            "Immutable": False,
            "Hidden": False,
        }
        if "values" in spec:
            entry["Value"] = [{"ValueName": v, "ValueDisplayName": v} for v in spec["values"]]
        for bound in ("LowerBound", "UpperBound"):
            if bound in spec:
                entry[bound] = spec[bound]
        entries.append(entry)
    return {
        "@odata.id": REGISTRY_PATH,
        "@odata.type": "#AttributeRegistry.v1_3_0.AttributeRegistry",
        "Id": REGISTRY_ID,
        "Name": "BIOS Attribute Registry",
        "Language": "en",
        "OwningEntity": "AMI",
        "RegistryVersion": "1.0.0",
        "RegistryEntries": {"Attributes": entries},
    }


def _error(
    status: int,
    message_id: str,
    message: str,
    related: list[str] | None = None,
    args: list[str] | None = None,
) -> tuple[int, dict[str, Any]]:
    info = {
        "MessageId": message_id,
        "Message": message,
        "Severity": "Critical",
        "RelatedProperties": related or [],
        "MessageArgs": args or [],
    }
    return status, {"error": {"code": message_id, "message": message, "@Message.ExtendedInfo": [info]}}


@dataclass
class LayerState:
    current: dict[str, Any] = field(default_factory=lambda: {k: v for k, (_s, v) in ATTRIBUTES.items()})
    pending: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    boot_enabled: str = "Disabled"
    mounted_at: dict[str, float] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


class OmniLayer:
    """WSGI middleware around the emulator's Flask app (installed inside its auth middleware)."""

    def __init__(self, inner: Any, app: Any) -> None:
        self.inner, self.app, self.state = inner, app, LayerState()

    def cfg(self, key: str, default: Any = None) -> Any:
        return self.app.config.get(key, default)

    # -- plumbing ---------------------------------------------------------------------------
    def _forward(self, environ: dict[str, Any], body: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
        from werkzeug.test import run_wsgi_app

        environ = dict(environ, **{"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})
        app_iter, status, headers = run_wsgi_app(self.inner, environ)
        try:
            data = b"".join(app_iter)
        finally:
            getattr(app_iter, "close", lambda: None)()
        return status, list(headers.items()), data

    @staticmethod
    def _respond(
        start_response: Any, status: int | str, doc: Any = None, headers: list[tuple[str, str]] | None = None
    ) -> list[bytes]:
        payload = b"" if doc is None else json.dumps(doc).encode()
        text = status if isinstance(status, str) else f"{status} {http.HTTPStatus(status).phrase}"
        hdrs = [(k, v) for k, v in (headers or []) if k.lower() not in ("content-length", "content-type")]
        if doc is not None:
            hdrs.append(("Content-Type", "application/json"))
        start_response(text, [*hdrs, ("Content-Length", str(len(payload)))])
        return [payload]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "").rstrip("/")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        with self.state.lock:
            self.state.counts[f"{method} {path}"] += 1
            first_systems_get = (
                method == "GET"
                and path == "/redfish/v1/Systems"
                and self.state.counts["GET /redfish/v1/Systems"] == 1
            )
        if first_systems_get and float(self.cfg("OMNI_STALL_FIRST_GET_S", 0)):
            time.sleep(float(self.cfg("OMNI_STALL_FIRST_GET_S")))  # a BMC that is slow once
        if path == "/omni-test/requests":
            return self._respond(start_response, 200, {"counts": dict(self.state.counts)})
        if path == REGISTRY_PATH and method == "GET" and self.cfg("OMNI_BIOS_REGISTRY", True):
            return self._respond(start_response, 200, registry_document())
        match = SYSTEM_RE.match(path)
        if match:
            ident, rest = match.group(1), match.group(2) or ""
            handled = self._system(environ, method, ident, rest, body)
            if handled is not None:
                status, doc, headers = handled
                return self._respond(start_response, status, doc, headers)
        status, headers, data = self._forward(environ, body)
        start_response(status, headers)
        return [data]

    # -- routes -------------------------------------------------------------------------------
    def _system(self, environ: dict[str, Any], method: str, ident: str, rest: str, body: bytes) -> Any:
        ami = bool(self.cfg("OMNI_AMI_MODE"))
        base = f"/redfish/v1/Systems/{ident}"
        settings = f"{base}/Bios/SD" if ami else f"{base}/Bios/Settings"
        doc = json.loads(body) if body else {}
        if rest == "" and method == "GET":
            return self._system_get(environ, body, base, ami)
        if rest == "" and method == "PATCH":
            enabled = (doc.get("Boot") or {}).get("BootSourceOverrideEnabled")
            status, headers, data = self._forward(environ, body)
            if enabled and status.startswith("2"):
                self.state.boot_enabled = enabled
            return int(status.split()[0]), json.loads(data) if data.strip() else None, headers
        if rest == "/Actions/ComputerSystem.Reset" and method == "POST":
            return self._reset(environ, doc)
        if rest == "/Bios" and method == "GET":
            return 200, self._bios_doc(base, settings), []
        if f"{base}{rest}" == settings:
            return self._settings(method, doc, settings, ami, environ)
        if rest.startswith("/VirtualMedia/") and ami:
            return self._vmedia_ami(environ, method, rest, body, doc)
        return None

    def _system_get(self, environ: dict[str, Any], body: bytes, base: str, ami: bool) -> Any:
        status, headers, data = self._forward(environ, body)
        if not status.startswith("200"):
            return int(status.split()[0]), json.loads(data or b"null"), headers
        doc = json.loads(data)
        boot = doc.setdefault("Boot", {})
        boot["BootSourceOverrideEnabled"] = self.state.boot_enabled
        allowed = boot.get("BootSourceOverrideTarget@Redfish.AllowableValues") or []
        boot["BootSourceOverrideTarget@Redfish.AllowableValues"] = [*allowed, "Usb", "BiosSetup"]
        doc["Bios"] = {"@odata.id": f"{base}/Bios"}
        doc["BiosVersion"] = "WRX90-OMNI-0801"
        if ami:
            reset = doc["Actions"]["#ComputerSystem.Reset"]
            reset["ResetType@Redfish.AllowableValues"] = [
                *reset["ResetType@Redfish.AllowableValues"],
                "PowerCycle",
            ]
        return 200, doc, headers

    def _reset(self, environ: dict[str, Any], doc: dict[str, Any]) -> Any:
        reset = doc.get("ResetType")
        inner = {"PowerCycle": "ForceRestart"}.get(reset, reset)
        status, headers, data = self._forward(environ, json.dumps({"ResetType": inner}).encode())
        stall = float(self.cfg("OMNI_STALL_RESET_S", 0))
        if stall:
            time.sleep(stall)  # the action happened; the answer is late (a slow BMC)
        if status.startswith("2") and reset in BOOTING_RESETS:
            with self.state.lock:
                if self.state.pending:
                    self.state.current.update(self.state.pending)
                    self.state.pending = {}
                    self.state.version += 1
                if self.state.boot_enabled == "Once":
                    self.state.boot_enabled = "Disabled"
        return int(status.split()[0]), json.loads(data) if data.strip() else None, headers

    def _bios_doc(self, base: str, settings: str) -> dict[str, Any]:
        doc = {
            "@odata.id": f"{base}/Bios",
            "@odata.type": "#Bios.v1_1_0.Bios",
            "Id": "Bios",
            "Name": "BIOS",
            "Attributes": dict(self.state.current),
            "@Redfish.Settings": {
                "@odata.type": "#Settings.v1_3_0.Settings",
                "SettingsObject": {"@odata.id": settings},
                "SupportedApplyTimes": ["OnReset"],
            },
        }
        if self.cfg("OMNI_BIOS_REGISTRY", True):
            doc["AttributeRegistry"] = REGISTRY_ID
        return doc

    def _settings(
        self, method: str, doc: dict[str, Any], settings: str, ami: bool, environ: dict[str, Any]
    ) -> Any:
        etag = f'"{self.state.version}"'
        if method == "GET":
            body = {
                "@odata.id": settings,
                "@odata.type": "#Bios.v1_1_0.Bios",
                "Id": settings.rsplit("/", 1)[1],
                "Name": "BIOS pending settings",
                "Attributes": dict(self.state.pending),
            }
            if ami:
                body["@odata.etag"] = f"W/{etag}"
            return 200, body, [("ETag", etag)] if ami else []
        if method != "PATCH":
            return (*_error(405, "Base.1.8.ActionNotSupported", f"{method} is not allowed on {settings}"), [])
        if ami:
            sent = environ.get("HTTP_IF_MATCH")
            if not sent:
                return (*_error(428, "Base.1.8.PreconditionRequired", "If-Match header is required"), [])
            if sent.removeprefix("W/") != etag or self.cfg("OMNI_BIOS_REJECT_ETAG"):  # a buggy firmware
                return (*_error(412, "Base.1.8.PreconditionFailed", "If-Match precondition failed"), [])
        attrs = doc.get("Attributes") or {}
        for name, value in attrs.items():
            if name not in ATTRIBUTES:
                return (
                    *_error(
                        400,
                        "Base.1.8.PropertyUnknown",
                        f"The property {name} is not known",
                        [f"#/Attributes/{name}"],
                    ),
                    [],
                )
            allowed = ATTRIBUTES[name][0].get("values")
            if allowed and value not in allowed:
                return (
                    *_error(
                        400,
                        "Base.1.8.PropertyValueNotInList",
                        f"{value!r} is not allowed for {name}",
                        [f"#/Attributes/{name}"],
                    ),
                    [],
                )
        with self.state.lock:
            self.state.pending.update(attrs)
            self.state.version += 1
        return 204, None, []

    def _vmedia_ami(
        self, environ: dict[str, Any], method: str, rest: str, body: bytes, doc: dict[str, Any]
    ) -> Any:
        device = rest.split("/")[2]
        if rest.endswith("/Actions/VirtualMedia.InsertMedia") and method == "POST":
            if not doc.get("TransferProtocolType"):
                return (
                    *_error(
                        400,
                        "Base.1.8.ActionParameterMissing",
                        "The action InsertMedia requires the parameter TransferProtocolType",
                        ["#/TransferProtocolType"],
                        ["InsertMedia", "TransferProtocolType"],
                    ),
                    [],
                )
            _s, _h, data = self._forward(
                dict(environ, REQUEST_METHOD="GET", PATH_INFO=environ["PATH_INFO"].split("/Actions/")[0]), b""
            )
            if json.loads(data).get("Inserted"):
                return (
                    *_error(
                        400,
                        "Base.1.8.ActionNotSupported",
                        "Media is already inserted; eject it before inserting another",
                    ),
                    [],
                )
            self.state.mounted_at[device] = time.monotonic()
            return None
        if method == "GET" and rest.count("/") == 2:
            status, headers, data = self._forward(environ, body)
            current = json.loads(data)
            started = self.state.mounted_at.get(device)
            if started and time.monotonic() - started < float(self.cfg("OMNI_MOUNT_DELAY_S", 1.0)):
                current["Inserted"] = False  # still mounting
            return int(status.split()[0]), current, headers
        return None


def _install() -> None:
    from sushy_tools.emulator import main as emulator
    from sushy_tools.emulator.resources.systems import fakedriver

    class QuickFakeDriver(fakedriver.FakeDriver):
        """The fake driver with a configured, fixed power-change delay."""

        def set_power_state(self, identity: str, state: str) -> None:
            delay = float(self._config.get("OMNI_POWER_DELAY_S", 1.0))
            system = self._get(identity)
            if "On" in state:
                pending = "On"
            elif state in ("ForceOff", "GracefulShutdown"):
                pending = "Off"
            elif "Restart" in state:
                system["power_state"] = "Off"
                pending = state
            else:
                from sushy_tools import error

                raise error.NotSupportedError(f"Power state {state} is not supported")
            if system["power_state"] != pending:
                self._update(
                    system, pending_power={"power_state": pending, "apply_time": time.time() + delay}
                )

    fakedriver.FakeDriver = QuickFakeDriver
    app = emulator.app
    app.wsgi_app = OmniLayer(app.wsgi_app, app)  # before main() wraps auth around it


if __name__ == "__main__":
    _install()
    from sushy_tools.emulator import main as _emulator

    sys.exit(_emulator.main())
