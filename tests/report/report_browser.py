"""Open a page in real headless Chromium over the DevTools protocol: screenshot, images, requests.

Why CDP over a websocket and not Playwright: Debian's `chromium` is the browser CI has, and this
needs nothing but `websockets`; no browser download, no TTY. Chromium picks a free debugging port
and writes it to `DevToolsActivePort` in its fresh profile dir, so parallel runs never collide.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage",
         "--hide-scrollbars", "--mute-audio", "--remote-debugging-port=0", "--remote-allow-origins=*")
IMAGES_JS = """JSON.stringify(Array.from(document.images).map(i => ({
  src: i.src.slice(0, 40), complete: i.complete, naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight,
  width: i.getBoundingClientRect().width})))"""


@dataclass
class PageResult:
    screenshot: bytes
    pdf: bytes
    images: list[dict[str, Any]]
    requests: list[str]
    console_errors: list[str] = field(default_factory=list)
    text: str = ""
    scroll_width: int = 0  # document width: wider than the viewport means the page scrolls sideways
    width: int = 0


class _Cdp:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, timeout: float = 60, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, method: str, timeout: float = 60) -> dict[str, Any]:
        for ev in self.events:
            if ev.get("method") == method:
                return ev
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            self.events.append(msg)
            if msg.get("method") == method:
                return msg


def _devtools_port(profile: Path, proc: subprocess.Popen, timeout: float = 60) -> int:
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode} before opening DevTools")
        if marker.is_file() and marker.read_text().strip():
            return int(marker.read_text().split()[0])
        time.sleep(0.1)
    raise RuntimeError("chromium did not open its DevTools port within 60 s")


def open_page(chromium: str, page: Path, profile: Path, width: int = 1200, mobile: bool = False,
              pdf: bool = True) -> PageResult:
    """Load `page` (a file), wait for load, and collect what a reviewer would check.

    `mobile` emulates a phone (viewport meta honoured, device scale 3 like an iPhone): pass width 390.
    """
    profile.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},900", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=(profile / "chromium.log").open("w"),
        start_new_session=True,
    )
    try:
        port = _devtools_port(profile, proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=20) as resp:
            target = next(t for t in json.load(resp) if t.get("type") == "page")
        with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=20) as ws:
            cdp = _Cdp(ws)
            for domain in ("Network.enable", "Page.enable", "Runtime.enable"):
                cdp.call(domain)
            cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=900 if not mobile else 844,
                     deviceScaleFactor=1, mobile=mobile)
            cdp.call("Page.navigate", url=page.resolve().as_uri())
            cdp.wait_event("Page.loadEventFired")
            images = json.loads(cdp.call("Runtime.evaluate", expression=IMAGES_JS,
                                         returnByValue=True)["result"]["value"])
            text = cdp.call("Runtime.evaluate", expression="document.body.innerText",
                            returnByValue=True)["result"]["value"]
            size = cdp.call("Page.getLayoutMetrics")["cssContentSize"]
            shot = cdp.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                            clip={"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1})
            scroll = cdp.call("Runtime.evaluate", expression="document.documentElement.scrollWidth",
                              returnByValue=True)["result"]["value"]
            printed = cdp.call("Page.printToPDF", printBackground=True, timeout=120) if pdf else {"data": ""}
            requests = [ev["params"]["request"]["url"] for ev in cdp.events
                        if ev.get("method") == "Network.requestWillBeSent"]
            errors = [json.dumps(ev["params"])[:300] for ev in cdp.events
                      if ev.get("method") in ("Runtime.exceptionThrown", "Network.loadingFailed")]
            return PageResult(base64.b64decode(shot["data"]), base64.b64decode(printed["data"]), images,
                              requests, errors, text, int(scroll), width)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
