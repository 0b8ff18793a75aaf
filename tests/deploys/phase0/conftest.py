"""Phase-0 fixtures: a loopback stand-in for the ISO publisher and the ISO host's own nginx."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import jinja2
import pytest

from bench.server import free_port
from deploys.bmc.isos import NGINX, TEMPLATES
from tests.sysdeps import extract_from_deb


@pytest.fixture
def upstream(tmp_path):
    """A loopback HTTP server standing in for the ISO's publisher (Python's http.server: no Range)."""
    served = tmp_path / "upstream"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def nginx_iso_server(tmp_path):
    """The ISO host's server as phase 0 deploys it: our nginx.conf template, run unprivileged."""
    nginx = extract_from_deb("nginx", NGINX)[NGINX]
    root = Path(tempfile.mkdtemp(prefix="omni-iso-", dir="/tmp"))
    served, runtime = root / "srv", root / "run"
    served.mkdir()
    runtime.mkdir()
    root.chmod(0o755)
    served.chmod(0o755)
    os.chown(runtime, 65534, 65534)
    port = free_port()
    conf = root / "nginx.conf"
    template = jinja2.Template((TEMPLATES / "omni-iso-nginx.conf.j2").read_text())
    conf.write_text(template.render(bind="127.0.0.1", port=port, directory=served, runtime=runtime))
    log = (root / "nginx.log").open("wb")
    proc = subprocess.Popen(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         str(nginx), "-e", "stderr", "-c", str(conf), "-g", "daemon off;"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, (root / "nginx.log").read_text()
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield served, port
    proc.terminate()
    proc.wait(timeout=10)
    log.close()
    shutil.rmtree(root)
