"""Phase 0 model step: ``hf download REPO --include PATTERN --local-dir DIR``, checked before and after.

Why the checks: a 281 GB download that runs out of disk at 90 % wastes hours, and a finished one
can still be the wrong quant. Before: free space at the target (or its nearest existing parent)
must hold the inventory's ``model.size_bytes`` plus ``margin``, minus what an interrupted
download already left there; otherwise refuse with the numbers. After: the GGUF header's
``general.architecture`` and the total size of the shards at ``model.path`` must match the
inventory (``facts/gguf.py``). ``hf`` is the current Hugging Face CLI; the deprecated
``huggingface-cli`` is not used.

Host data ``model_download`` (merged over :data:`DEFAULTS`): ``repo``, ``include`` (the quant's
file pattern; mandatory — it must produce the files ``model.path`` points at, the first shard of
a split model), ``local_dir`` (default: the folder of ``model.path``), ``margin`` (fraction of
the size kept free), ``size_tolerance``, ``hf`` (the CLI's name or path).
"""

from __future__ import annotations

import contextlib
import shlex
from pathlib import PurePosixPath
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, server

from deploys.core.controller import controller_check
from facts import gguf as gguf_probe
from facts.files import SpaceAt
from omni.settings import settings

DEFAULTS: dict[str, Any] = {
    "repo": "unsloth/DeepSeek-R1-GGUF",
    "include": None,
    "local_dir": None,
    "margin": 0.05,
    "size_tolerance": 0.02,
    "hf": "hf",
}


class ModelConfigError(ValueError):
    """A model download that cannot start; the message names the key or the missing space."""


def _number(value: Any, key: str, kind: type[int] | type[float], example: str) -> Any:
    """`value` as a non-negative `kind`, or a one-line error naming `key` (a hosts file or an
    OMNI_* override may carry any text)."""
    number = None
    if not isinstance(value, bool) and not (kind is int and isinstance(value, float)):
        with contextlib.suppress(TypeError, ValueError):
            number = kind(value)
    if number is None or number < 0:
        raise ModelConfigError(f"{key} is {value!r}: give a non-negative number of {example}")
    return number


def model_settings(data: Any) -> dict[str, Any]:
    cfg = settings(DEFAULTS, data, "model_download")
    model = data.get("model") or {}
    if not cfg["include"]:
        raise ModelConfigError(
            "model_download.include is not set: give the quant's file pattern in "
            f"{cfg['repo']} (e.g. 'DeepSeek-R1-Q4_K_M/*') and point model.path at its first file"
        )
    if not model.get("path") or not model.get("size_bytes"):
        raise ModelConfigError("model.path and model.size_bytes must be set to check the download")
    size = _number(model["size_bytes"], "model.size_bytes", int, "bytes, e.g. 404430000000")
    model = {**model, "size_bytes": size}
    for key in ("margin", "size_tolerance"):
        cfg[key] = _number(cfg[key], f"model_download.{key}", float, "a fraction below 1, e.g. 0.05")
        if cfg[key] >= 1:
            raise ModelConfigError(f"model_download.{key} is {cfg[key]}: give a fraction below 1, e.g. 0.05")
    cfg["local_dir"] = cfg["local_dir"] or str(PurePosixPath(model["path"]).parent)
    cfg["model"] = model
    return cfg


def space_problem(space: dict[str, Any], size_bytes: int, margin: float) -> str | None:
    """Why the download cannot fit, with the numbers; None when it fits."""
    if space.get("free") is None:
        return "cannot read free space (df failed)"
    needed = int(size_bytes * (1 + margin)) - int(space.get("used") or 0)
    if space["free"] < needed:
        return (
            f"needs {needed / 1e9:.1f} GB free (model {size_bytes / 1e9:.1f} GB + {margin:.0%} margin, "
            f"{(space.get('used') or 0) / 1e9:.1f} GB already there), only {space['free'] / 1e9:.1f} GB free"
        )
    return None


def _check_model(cfg: dict[str, Any]) -> list[str]:
    model = cfg["model"]
    _, output = host.run_shell_command(gguf_probe.command(model["path"]), _timeout=120)
    probe = gguf_probe.parse(output.stdout_lines)
    problems = gguf_probe.judge_model(
        probe, model.get("size_bytes"), model.get("architecture"), cfg["size_tolerance"]
    )
    return [f"model {model['path']}: {p}" for p in problems]


@deploy("Download and check the model")
def download_model(cfg: dict[str, Any]) -> None:
    model = cfg["model"]
    probe = gguf_probe.parse(host.get_fact(gguf_probe.GgufProbe, path=model["path"]))
    if not gguf_probe.judge_model(probe, model["size_bytes"], model.get("architecture"),
                                  cfg["size_tolerance"]):
        host.noop(f"{model['path']} already matches the inventory")
        return
    # shards an interrupted download left (omni.gguf_files, through the probe) need no new space
    space = host.get_fact(SpaceAt, path=cfg["local_dir"], hf=cfg["hf"])
    space = {**space, "used": probe.get("total_bytes") or 0}
    if not space.get("hf"):
        raise ModelConfigError(
            f"the Hugging Face CLI `{cfg['hf']}` is not on the host's PATH: "
            "install it (pipx install 'huggingface_hub[cli]') or set model_download.hf"
        )
    problem = space_problem(space, int(model["size_bytes"]), float(cfg["margin"]))
    if problem:
        raise ModelConfigError(
            f"{cfg['local_dir']}: {problem}: free space or choose model_download.local_dir"
        )
    files.directory(name=f"Create {cfg['local_dir']}", path=cfg["local_dir"])
    server.shell(
        name=f"Download {cfg['repo']} {cfg['include']}",
        commands=[
            " ".join(
                shlex.quote(a)
                for a in (
                    cfg["hf"],
                    "download",
                    cfg["repo"],
                    "--include",
                    cfg["include"],
                    "--local-dir",
                    cfg["local_dir"],
                )
            )
        ],
    )
    controller_check(_check_model, cfg, name="Check the model's architecture and size")
