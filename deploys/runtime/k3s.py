"""K3s at a pinned release: the release's install script saved to disk, checked, run with INSTALL_K3S_*.

Why these choices (docs/phase4.md has the long form):

- The script is fetched from the pinned release tag and must match ``k3s.install_script_sha256``
  before it runs; the script itself checks the binary against the release's sha256 list.
- The installed binary's release and the running server's release are read back every run: a drift
  from the pin (an old node, a manual upgrade) reruns the script with the pinned version, then
  restarts. ``INSTALL_K3S_SKIP_START`` keeps every start and restart in our hands, so K3s restarts
  only when the script ran, ``/etc/rancher/k3s/config.yaml`` changed or the NVIDIA toolkit changed
  (K3s detects ``nvidia-container-runtime`` only when it starts).
- The ``nvidia`` RuntimeClass ships with K3s since v1.29.0+k3s1 (and v1.28.5+k3s1, v1.27.9+k3s1,
  v1.26.12+k3s1): only older releases, or a config that disables ``runtimes``, get ours, under a
  name K3s never uses (``runtimes.yaml`` is K3s's own and is rewritten at every start).
- Hosts in the ``k3s_agents`` group join the first ``workstations`` host; the join token is read
  from that server while the run executes and written to a 0600 file: never printed, never stored
  on the controller.
"""

from __future__ import annotations

import io
import shlex
from collections.abc import Sequence
from typing import Any

from pyinfra import host, state
from pyinfra.api import FileUploadCommand, QuoteString, StringCommand, deploy, operation
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS
from pyinfra.api.exceptions import DeployError
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import File, Sha256File
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

from deploys.runtime.apt import install_pinned
from deploys.runtime.services import restart_if, running_and_enabled
from deploys.runtime.settings import DEFAULTS, K3sSettings, access_users, load, render
from facts.runtime import K3sVersions, UserAccount

AGENTS_GROUP = "k3s_agents"
SERVERS_GROUP = "workstations"
CONFIG = "/etc/rancher/k3s/config.yaml"
AGENT_TOKEN = "/etc/rancher/k3s/omni-agent-token"
NODE_TOKEN = "/var/lib/rancher/k3s/server/node-token"
MANIFESTS = "/var/lib/rancher/k3s/server/manifests"
OUR_RUNTIMECLASS = f"{MANIFESTS}/omni-nvidia-runtimeclass.yaml"
DEVICE_PLUGIN = f"{MANIFESTS}/omni-nvidia-device-plugin.yaml"
KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"
KUBECTL = "k3s kubectl"

#: First release of each minor line whose packaged manifests include the nvidia RuntimeClass
#: (k3s-io/k3s#8936 in v1.29.0, backported in December 2023: #9013, #9014, #9024).
FIRST_WITH_NVIDIA_RUNTIMECLASS = {(1, 26): (12, 1), (1, 27): (9, 1), (1, 28): (5, 1)}


def ships_nvidia_runtimeclass(release: tuple[int, int, int, int]) -> bool:
    """Whether a K3s release (``K3sSettings.release``) creates the nvidia RuntimeClass itself."""
    major, minor, patch, k3s = release
    if (major, minor) >= (1, 29):
        return True
    first = FIRST_WITH_NVIDIA_RUNTIMECLASS.get((major, minor))
    return first is not None and (patch, k3s) >= first


def role() -> str:
    return "agent" if AGENTS_GROUP in host.groups else "server"


def server_host() -> Any:
    for candidate in state.inventory.get_group(SERVERS_GROUP, []):
        if candidate is not host._get_module() and AGENTS_GROUP not in candidate.groups:
            return candidate
    raise DeployError(f"{host.name}: a k3s_agents host needs a K3s server: "
                      "add a workstations host to the inventory")


def server_url(cfg: K3sSettings) -> str:
    if cfg.server_url:
        return cfg.server_url
    name = server_host().name
    if name.startswith("@"):
        raise DeployError(f"{host.name}: the K3s server is {name}, which agents cannot reach: "
                          "set k3s.server_url = \"https://<server address>:6443\" for the agents")
    return f"https://{name}:6443"


def config_text(cfg: K3sSettings) -> str:
    if role() == "server":
        return render("k3s-config.yaml.j2", config=cfg.config)
    agent = {**cfg.agent_config, "server": server_url(cfg), "token-file": AGENT_TOKEN}
    return render("k3s-config.yaml.j2", config=agent)


def needs_own_runtimeclass(cfg: K3sSettings) -> bool:
    disabled = cfg.config.get("disable") or []
    disabled = [disabled] if isinstance(disabled, str) else disabled
    return not ships_nvidia_runtimeclass(cfg.release) or "runtimes" in disabled


def script_check_command(cfg: K3sSettings) -> str:
    """Stop (one line) unless the saved script has the pinned sha256; print the hash to pin if none is."""
    path = shlex.quote(cfg.script_path)
    fix = f"review {cfg.script_path} (from {cfg.script_url}) and set k3s.install_script_sha256"
    if cfg.install_script_sha256 is None:
        return (f"sum=$(sha256sum {path} | cut -d ' ' -f 1); "
                f"echo \"K3s install script is not pinned (sha256 $sum): {fix} = $sum\" >&2; exit 1")
    return (f"sum=$(sha256sum {path} | cut -d ' ' -f 1); [ \"$sum\" = {cfg.install_script_sha256} ] || "
            f"{{ rm -f {path}; echo \"K3s install script sha256 $sum is not the pinned "
            f"{cfg.install_script_sha256}: {fix}\" >&2; exit 1; }}")


def install_command(cfg: K3sSettings) -> StringCommand:
    exec_ = cfg.exec or role()
    return StringCommand(
        f"INSTALL_K3S_VERSION={shlex.quote(cfg.version)}", f"INSTALL_K3S_EXEC={shlex.quote(exec_)}",
        "INSTALL_K3S_SKIP_START=true", "sh", shlex.quote(cfg.script_path),
    )


def _connector_arguments() -> dict[str, Any]:
    current = host.current_op_global_arguments or {}
    return {key: current[key] for key in CONNECTOR_ARGUMENT_KEYS if key in current}


def read_node_token(server: Any) -> str | None:
    """The server's join token, read over the server's connection and never echoed (not a fact:
    pyinfra prints fact output at -vvv)."""
    if not server.connected:
        server.connect(raise_exceptions=True)
    ok, output = server.connector.run_shell_command(StringCommand("cat", NODE_TOKEN), print_output=False,
                                                    print_input=False, **_connector_arguments())
    token = "\n".join(output.stdout_lines).strip()
    return token if ok and token else None


@operation()
def join_token(server: Any, dest: str = AGENT_TOKEN):
    """Copy the K3s server's node token into ``dest`` (0600) on this agent.

    Read when the run executes (the server may only start earlier in the same run); a plan made
    before that shows the copy with a placeholder. A server without a token stops this agent with
    one line.
    """
    token = read_node_token(server)
    if token is None:
        if state.is_executing:
            message = (f"{host.name}: cannot read {NODE_TOKEN} on the K3s server {server.name}: "
                       "apply phase 4 on the server first")
            yield StringCommand("echo", QuoteString(message), ">&2;", "exit 1")
            return
        token = "<read from the K3s server when the run executes>"
    yield StringCommand("install", "-d", "-m", "0755", "/etc/rancher/k3s")
    yield StringCommand("install", "-m", "0600", "/dev/null", QuoteString(dest))
    yield FileUploadCommand(io.StringIO(token + "\n"), dest)


WAIT_FOR_API = (f"for i in $(seq 90); do {KUBECTL} get --raw /readyz >/dev/null 2>&1 && exit 0; "
                "sleep 2; done; "
                "echo 'K3s API not ready after 180 s: see journalctl -u k3s' >&2; exit 1")


def _start_server(cfg: K3sSettings, versions: dict[str, str | None],
                  changes: list[OperationMeta]) -> list[OperationMeta]:
    """Returns the ops whose change means K3s (re)started, for the wait that follows."""
    files.directory(name="Create the K3s server manifests directory", path=MANIFESTS)
    if needs_own_runtimeclass(cfg):
        files.put(name="Add the nvidia RuntimeClass this K3s release lacks",
                  src=io.StringIO(render("nvidia-runtimeclass.yaml.j2")), dest=OUR_RUNTIMECLASS, mode="0600")
    else:
        files.file(name="Remove our nvidia RuntimeClass (this K3s release ships its own)",
                   path=OUR_RUNTIMECLASS, present=False)
    device_plugin(cfg)
    started = running_and_enabled("k3s.service", "K3s")
    drift = versions["binary"] == cfg.version and versions["running"] not in (None, cfg.version)
    reason = "running release differs from the pin" if drift else "install, config or NVIDIA toolkit changed"
    restarted = restart_if("k3s.service", "K3s", reason, changes, force=drift)
    return [op for op in (started, restarted) if op is not None and op.will_change]


def device_plugin(cfg: K3sSettings) -> None:
    """NVIDIA's device plugin as a K3s manifest, so pods can request ``nvidia.com/gpu``."""
    if not cfg.device_plugin:
        files.file(name="Remove our NVIDIA device plugin manifest", path=DEVICE_PLUGIN, present=False)
        return
    if cfg.device_plugin_digest is None:
        message = (f"the NVIDIA device plugin image {cfg.device_plugin_image} is not pinned: on a networked "
                   f"machine run `docker buildx imagetools inspect {cfg.device_plugin_image}` and set "
                   "k3s.device_plugin_digest = \"sha256:...\" (or k3s.device_plugin = false)")
        server.shell(name="Check the NVIDIA device plugin image is pinned",
                     commands=[f"echo {shlex.quote(message)} >&2; exit 1"])
        return
    files.put(name="Deploy NVIDIA's device plugin (K3s manifest, pinned by digest)",
              src=io.StringIO(render("nvidia-device-plugin.yaml.j2", image=cfg.device_plugin_image,
                                     digest=cfg.device_plugin_digest)),
              dest=DEVICE_PLUGIN, mode="0600")


def kubeconfig_for_users() -> None:
    """Each access user gets K3s's admin kubeconfig as ``~/.kube/config`` (0600, theirs).

    Why a copy and not ``write-kubeconfig-mode: 0644``: the file holds cluster-admin credentials;
    world-readable would hand them to every local account. The copy is refreshed when it differs.
    """
    source = host.get_fact(Sha256File, path=KUBECONFIG)
    for user in access_users():
        account = host.get_fact(UserAccount, user=user)
        if account is None:
            raise DeployError(f"{host.name}: phase4.users names {user!r}, which has no account on the host: "
                              "fix phase4.users (or ssh_user)")
        target = f"{account['home']}/.kube/config"
        if source is not None and host.get_fact(Sha256File, path=target) == source:
            continue
        owner = f"{shlex.quote(user)}:{shlex.quote(account['group'])}"
        server.shell(name=f"Give {user} the K3s kubeconfig ({target}, 0600)", commands=[
            f"install -d -m 0700 -o {shlex.quote(user)} -g {shlex.quote(account['group'])} "
            f"{shlex.quote(account['home'] + '/.kube')} && install -m 0600 -o {shlex.quote(user)} "
            f"-g {shlex.quote(account['group'])} {KUBECONFIG} {shlex.quote(target)} && "
            f"chown {owner} {shlex.quote(target)}"])


def _wait_for_server(started: Sequence[OperationMeta]) -> None:
    """One op that every K3s host shares (same call site, so the same node in pyinfra's op graph).

    pyinfra orders ops across hosts by each host's own sequence, not by line: without a shared node
    an agent with fewer steps would read the server's token before the server started. The server
    waits for its API here when it (re)started; agents wait for the server by reaching this node.
    """
    wait: dict[str, Any] = {"commands": [WAIT_FOR_API], "_if": any_changed(*started)} if started else \
        {"commands": []}
    server.shell(name="Wait for the K3s API server", **wait)


def _join_agent(changes: list[OperationMeta]) -> None:
    if not host.get_fact(File, path=AGENT_TOKEN):
        changes.append(join_token(name="Copy the K3s join token from the server", server=server_host()))
    running_and_enabled("k3s-agent.service", "the K3s agent")
    restart_if("k3s-agent.service", "the K3s agent", "install, config or NVIDIA toolkit changed", changes)


@deploy("K3s", data_defaults={"k3s": DEFAULTS["k3s"]})
def k3s(restart_when: Sequence[OperationMeta] = ()) -> list[OperationMeta]:
    """Install or upgrade K3s to the pin; ``restart_when``: ops (the NVIDIA toolkit) that need a restart."""
    cfg: K3sSettings = load("k3s")
    versions = host.get_fact(K3sVersions)
    install_pinned("the K3s installer prerequisites", {"ca-certificates": None, "curl": None})

    files.directory(name="Create /etc/rancher/k3s", path="/etc/rancher/k3s")
    config = files.put(name=f"Write {CONFIG}", src=io.StringIO(config_text(cfg)), dest=CONFIG, mode="0600")
    changes: list[OperationMeta] = [config, *restart_when]

    if versions["binary"] != cfg.version:  # not installed, or drifted from the pin: (re)install
        found = versions["binary"] or "not installed"
        files.directory(name="Create the K3s install script directory", path="/usr/local/share/omni/k3s",
                        mode="0755")
        files.download(name=f"Save the K3s {cfg.version} install script", src=cfg.script_url,
                       dest=cfg.script_path, mode="0644")
        server.shell(name=f"Check the K3s install script's sha256 ({found} -> {cfg.version})",
                     commands=[script_check_command(cfg)])
        changes.append(server.shell(name=f"Install K3s {cfg.version} with its install script",
                                    commands=[install_command(cfg)]))

    started = _start_server(cfg, versions, changes) if role() == "server" else []
    _wait_for_server(started)  # every server step runs before any agent step below
    if role() == "agent":
        _join_agent(changes)
    else:
        kubeconfig_for_users()
    return changes
