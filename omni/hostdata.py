"""Host data for the workstations Protocol OMNI provisions.

Why a module and not inline in ``inventory.py``: the BMC CLI, the fact collector and the
bench read the same host description, and it must be testable without pyinfra loading an
inventory. Defaults describe the reference box; every value can be overridden from the
environment or a TOML hosts file. Secrets are never stored here: only the *names* of the
environment variables or files that hold them.
"""

from __future__ import annotations

import copy
import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omni.secrets import remember
from omni.settings import deep_merge

GIB = 1024**3

#: The reference box from DEVELOPERS.md. Disk serials are unknown until the owner sets them:
#: the storage deploy refuses to touch a disk whose serial is not configured.
REFERENCE_BOX: dict[str, Any] = {
    # ssh_user / ssh_key: unset means SSH's own default (~/.ssh/config or the local user name)
    "ssh_port": 22,
    "bmc_url": None,  # e.g. https://192.0.2.10 (ASUS ASMB11-iKVM, Redfish)
    "bmc_username_env": "OMNI_BMC_USERNAME",
    "bmc_password_env": "OMNI_BMC_PASSWORD",
    "bmc_password_file": None,  # path to a file holding only the password (mode 0600)
    "bmc_verify_tls": True,
    "bmc_ca_file": None,
    "cpu": {"model": "AMD Ryzen Threadripper PRO 9995WX 96-Cores", "cores": 96, "vendor": "AMD"},
    "numa_nodes": 4,  # NPS4
    "memory": {"total_gib": 384, "dimm_count": 8, "dimm_size_gib": 48, "channels": 8,
               "speed_mts": 6400, "type": "DDR5"},
    "gpus": [
        {"name": "NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "memory_mib": 97887,
         "pcie_gen": 5, "pcie_width": 16},
        {"name": "NVIDIA GeForce RTX 5090", "memory_mib": 32607, "pcie_gen": 5, "pcie_width": 16},
    ],
    "disks": [
        {"role": "ubuntu", "model": "CT4000T705SSD3", "serial": None},
        {"role": "windows", "model": "WD_BLACK SN8100 4000GB", "serial": None},
    ],
    "model": {
        "name": "DeepSeek-R1 671B",
        "path": "/nvme/models/DeepSeek-R1/DeepSeek-R1.gguf",
        "size_bytes": 281 * 10**9,
        "architecture": "deepseek2",
    },
    # numactl prefix for the inference server: none | interleave=all | cpunodebind=N membind=N,
    # or an engine flag such as "--numa distribute" (the bench spec uses the same vocabulary).
    "numa_policy": "interleave=all",
    "inference": {"engine": "llama-server", "host": "127.0.0.1", "port": 8000},
    "memory_headroom_gib": 80,
    # the one port the phase-0 ISO server listens on and the BMC's virtual media URLs name (runbook 0.6)
    "iso_http_port": 8080,
}

#: Scalar overrides: environment variable -> (dotted key, type).
ENV_OVERRIDES: dict[str, tuple[str, type]] = {
    "OMNI_SSH_USER": ("ssh_user", str),
    "OMNI_SSH_PORT": ("ssh_port", int),
    "OMNI_SSH_KEY": ("ssh_key", str),
    "OMNI_BMC_URL": ("bmc_url", str),
    "OMNI_BMC_PASSWORD_FILE": ("bmc_password_file", str),
    "OMNI_BMC_CA_FILE": ("bmc_ca_file", str),
    "OMNI_BMC_VERIFY_TLS": ("bmc_verify_tls", bool),
    "OMNI_NUMA_NODES": ("numa_nodes", int),
    "OMNI_DIMM_SPEED_MTS": ("memory.speed_mts", int),
    "OMNI_MEMORY_CHANNELS": ("memory.channels", int),
    "OMNI_MODEL_PATH": ("model.path", str),
    "OMNI_MODEL_SIZE_BYTES": ("model.size_bytes", int),
    "OMNI_NUMA_POLICY": ("numa_policy", str),
    "OMNI_INFERENCE_PORT": ("inference.port", int),
    "OMNI_ISO_HTTP_PORT": ("iso_http_port", int),
    "OMNI_DISK_UBUNTU_MODEL": ("disks[ubuntu].model", str),
    "OMNI_DISK_UBUNTU_SERIAL": ("disks[ubuntu].serial", str),
    "OMNI_DISK_WINDOWS_MODEL": ("disks[windows].model", str),
    "OMNI_DISK_WINDOWS_SERIAL": ("disks[windows].serial", str),
}

NO_HOST_MESSAGE = (
    "no host configured: set OMNI_HOST=<ssh address> (or OMNI_HOSTS=a,b or OMNI_HOSTS_FILE=hosts.toml); "
    "use OMNI_HOST=@local to target this machine on purpose"
)


class InventoryError(ValueError):
    """A bad inventory value; the message names the variable and the fix."""


def _convert(var: str, raw: str, kind: type) -> Any:
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise InventoryError(f"{var}={raw!r} is not a boolean: use true or false")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise InventoryError(f"{var}={raw!r} is not an integer: give a whole number") from None
    return raw


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``a.b`` or ``disks[role].field`` inside ``data``."""
    if key.startswith("disks["):
        role, field = key[len("disks["):].split("].", 1)
        for disk in data["disks"]:
            if disk["role"] == role:
                disk[field] = value
                return
        data["disks"].append({"role": role, field: value})
        return
    *parents, leaf = key.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def host_data(env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None) -> dict:
    """The reference box, then a hosts-file table, then environment variables, in that order."""
    env = os.environ if env is None else env
    data = copy.deepcopy(REFERENCE_BOX)
    if overrides:
        deep_merge(data, overrides)
    for var, (key, kind) in ENV_OVERRIDES.items():
        if var in env and env[var] != "":
            _set_dotted(data, key, _convert(var, env[var], kind))
    # pyinfra rejects None for connector data: an unset ssh_* key means "SSH's default"
    return {k: v for k, v in data.items() if not (k.startswith("ssh_") and v is None)}


def _load_hosts_file(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise InventoryError(f"OMNI_HOSTS_FILE={path!r} does not exist: point it at a TOML hosts file")
    try:
        return tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(f"OMNI_HOSTS_FILE={path!r} is not valid TOML ({exc}): fix the file") from None


_KIND = {bool: "boolean (true/false)", int: "number", float: "number", str: "string", dict: "table",
         list: "list"}


def _same_kind(value: Any, default: Any) -> bool:
    """bool is bool; int and float are both numbers; otherwise the same type."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, int | float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


def _check_subtable(where: str, key: str, value: Any, default: Any) -> None:
    """A reference-box table's own keys (``memory.total_gib``, ``gpus[0].memory_mib``) have its types too.

    Why: ``[hosts.box.memory] total_gib = "384"`` reached the phase-5 memory budget as a string
    (``"384" * GIB`` is a 3 GiB string, then a traceback); ``gpus = [{memory_mib = "x"}]`` an ``int()``.
    """
    if isinstance(default, list) and default and all(isinstance(d, dict) for d in default):
        schema = {k: v for d in default for k, v in d.items() if v is not None}
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise InventoryError(f"{where} {key}[{index}] = {str(item)[:40]!r} is not a table "
                                     "like the reference box's (see omni/hostdata.py)")
            _check_subtable(where, f"{key}[{index}]", item, schema)
        return
    if not (isinstance(value, dict) and isinstance(default, dict)):
        return
    for sub, item in value.items():
        known = default.get(sub)
        if known is not None and not isinstance(known, dict | list) and not _same_kind(item, known):
            raise InventoryError(f"{where} {key}.{sub} = {str(item)[:40]!r} is not a {_KIND[type(known)]} "
                                 "like the reference box's (see omni/hostdata.py)")


def _check_host_table(name: str, table: Any) -> dict[str, Any]:
    """A ``[hosts.NAME]`` table whose reference-box keys have the reference box's types.

    Why: a hosts file is typed by hand; ``memory = 5`` or ``ssh_port = "22a"`` used to surface as a
    traceback deep in a deploy. A key the reference box does not have is left to the deploy that
    reads it (phases keep their own tables), unless it is a near-miss of one it has: a typo.
    """
    where = f"OMNI_HOSTS_FILE: [hosts.{name}]"
    if not isinstance(table, dict):
        raise InventoryError(f"{where} is a {type(table).__name__}, not a table: write it as [hosts.{name}]")
    groups = table.get("groups", ["workstations"])
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise InventoryError(f"{where} groups must be a list of group names, e.g. [\"workstations\"]")
    for key, value in table.items():
        default = REFERENCE_BOX.get(key)
        if key in REFERENCE_BOX or key == "groups" or key.startswith(("ssh_", "_")):
            if default is None or _same_kind(value, default):
                _check_subtable(where, key, value, default)
                continue
            raise InventoryError(f"{where} {key} = {str(value)[:40]!r} is not a {_KIND[type(default)]} "
                                 "like the reference box's (see omni/hostdata.py)")
        close = difflib.get_close_matches(key, list(REFERENCE_BOX), n=1, cutoff=0.85)
        if close:
            raise InventoryError(f"{where} has an unknown key {key!r}: did you mean {close[0]!r}?")
    return dict(table)


def inventory_groups(env: Mapping[str, str] | None = None) -> dict[str, list[tuple[str, dict]]]:
    """pyinfra groups: ``workstations`` (and ``k3s_agents`` when configured).

    A TOML hosts file looks like::

        [hosts.box1]                # the key is the SSH address
        groups = ["workstations"]   # default ["workstations"]
        ssh_user = "omni"
        [hosts.box1.memory]
        speed_mts = 6000
    """
    env = os.environ if env is None else env
    groups: dict[str, list[tuple[str, dict]]] = {}

    def add(name: str, group: str, overrides: Mapping[str, Any] | None = None) -> None:
        groups.setdefault(group, []).append((name, host_data(env, overrides)))

    if env.get("OMNI_HOSTS_FILE"):
        hosts = _load_hosts_file(env["OMNI_HOSTS_FILE"]).get("hosts", {})
        if not isinstance(hosts, dict):
            raise InventoryError("OMNI_HOSTS_FILE: [hosts] must be a table of host tables: see inventory.py")
        for name, table in hosts.items():
            table = _check_host_table(name, table)
            for group in table.pop("groups", ["workstations"]):
                add(name, group, table)
    names = [h.strip() for h in env.get("OMNI_HOSTS", env.get("OMNI_HOST", "")).split(",") if h.strip()]
    for name in names:
        add(name, "workstations")
    for name in [h.strip() for h in env.get("OMNI_K3S_AGENTS", "").split(",") if h.strip()]:
        add(name, "k3s_agents")
    if not groups.get("workstations"):
        raise InventoryError(NO_HOST_MESSAGE)
    return groups


def bmc_credentials(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """Username and password from the environment or the password file; never from the repo."""
    env = os.environ if env is None else env
    user_var = data.get("bmc_username_env", "OMNI_BMC_USERNAME")
    pass_var = data.get("bmc_password_env", "OMNI_BMC_PASSWORD")
    username = env.get(user_var)
    if not username:
        raise InventoryError(f"BMC username missing: export {user_var}=<user>")
    password = env.get(pass_var)
    if not password and data.get("bmc_password_file"):
        path = Path(data["bmc_password_file"]).expanduser()
        if not path.is_file():
            raise InventoryError(f"BMC password file {path} does not exist: create it (mode 0600)")
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:  # like ssh with a private key: a password others can read is refused
            raise InventoryError(f"BMC password file {path} is readable by group or others (mode "
                                 f"{mode:04o}): chmod 600 {path}")
        try:
            password = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InventoryError(f"BMC password file {path} cannot be read as text ({exc}): "
                                 "write only the password in it, UTF-8, mode 0600") from None
    if not password:
        raise InventoryError(
            f"BMC password missing: export {pass_var}=... or set OMNI_BMC_PASSWORD_FILE to a file holding it"
        )
    return username, remember(password)
