"""5.5 Phoenix self-restart: a systemd path unit turns ``restart-requested`` into one recreate.

Why systemd and not a sidecar container: a sidecar needs /var/run/docker.sock, and whoever can
reach that socket is root on the host. The path unit runs our script as root on the host itself,
and containers only get the state folder to drop the request file in.
"""

from __future__ import annotations

from io import StringIO

from pyinfra.api import deploy
from pyinfra.operations import files, systemd

from .compose import host_stack, upload
from .config import StackConfig
from .render import render_phoenix

UNITS = ("omni-phoenix.path", "omni-phoenix.service")


@deploy("Phoenix self-restart")
def phoenix(deployed: list[str], config: StackConfig | None = None) -> None:
    """``deployed``: the compose projects this run manages (what a restart recreates)."""
    config = config or host_stack()
    rendered = render_phoenix(config, deployed)
    upload(config, "phoenix", {k: v for k, v in rendered.items() if k not in UNITS})
    files.directory(name=f"Create the Phoenix state folder {config.phoenix.state_dir}",
                    path=config.phoenix.state_dir, mode="1777")
    units = [files.put(name=f"Install {unit}", src=StringIO(rendered[unit]),
                       dest=f"/etc/systemd/system/{unit}", mode="644") for unit in UNITS]
    changed = any(op.will_change for op in units)
    systemd.service(name="Watch for Phoenix restart requests (omni-phoenix.path)",
                    service="omni-phoenix.path", running=True, enabled=True, daemon_reload=changed,
                    restarted=changed)
