"""Phase 0 @fake plans: what a fresh host gets, bad configuration in one line, the model step."""

from __future__ import annotations

import json

import pytest

from deploys.core.pyinfra_run import plan
from tests.deploys.phase0.phase0_env import (
    GROUPS,
    PHASE0,
    SHA,
    env,
    fake,
    iso_data,
)


def test_fresh_plan_backs_up_present_paths_stages_isos_and_checks(tmp_path):
    result = plan(PHASE0, [fake()], groups=GROUPS, env=env(tmp_path))
    assert result.error is None, result.error
    names = [o.short for o in result.ops]
    assert "Archive /var/lib/letta" in names and "Archive /etc/network/interfaces" in names  # runbook 0.1
    assert result.op("Archive /var/lib/letta").commands[0].startswith("umask 077 && tar -C / -czf")
    private = next(i for i, n in enumerate(names) if n.endswith("on the controller (mode 0700)"))
    assert private < names.index("Pull letta.tar.gz")  # the private folder comes first
    assert not any("/etc/pve" in n or "manifests" in n for n in names)  # missing: reported, not fatal
    assert "backup source proxmox-etc=/etc/pve does not exist" in result.output
    download = result.op("Download and verify ubuntu.iso").commands[0]
    assert ".part" in download and f'if [ "$actual" != {SHA} ]; then rm -f' in download
    assert download.endswith("mv /srv/omni-iso/ubuntu.iso.part /srv/omni-iso/ubuntu.iso")
    unit = result.op("Install the omni-iso-http unit")
    assert unit.will_change and names[-1] == "Write the phase-0 ready marker when every check passed"
    assert result.op("Restart omni-iso-http").conditional
    # served by nginx (HTTP Range), on the host data's one ISO port
    assert "nginx" in " ".join(result.op("Install nginx").commands)
    assert result.op("Install the omni-iso-http nginx configuration").will_change


MODEL = {"phase0_steps": "model", "model_download": {"include": "Q4/*"},
         "model": {"path": "/nvme/m.gguf", "size_bytes": 400 * 10**9}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {
                "isos": {
                    **iso_data(),
                    "images": [{"name": "u.iso", "url": "https://example.invalid/u.iso", "sha256": None}],
                }
            },
            "isos.images[0] (u.iso): set sha256 to the publisher's SHA256SUMS value (mandatory)",
        ),
        ({"isos": iso_data(bind=None)}, "isos.http.bind is not set"),
        ({"isos": iso_data(port=8081)}, "isos.http.port is no longer read: set the host data's iso_http_p"),
        ({"iso_http_port": "8080"}, "iso_http_port='8080' is not a TCP port"),
        ({"phase0_steps": "backups,bios"}, "phase0_steps: unknown step(s) bios"),
        ({"fake_responses": {"test -d /run/systemd/system": "not-booted"}},
         "the ISO server runs nginx as a systemd unit and this host has no running systemd"),
        ({"phase0_steps": "model"}, "model_download.include is not set"),
        # an inventory file or OMNI_* override carries text: one line, not float()'s ValueError
        ({**MODEL, "model_download": {"include": "Q4/*", "margin": "5%"}},
         "model_download.margin is '5%': give a non-negative number of a fraction below 1"),
        ({**MODEL, "model_download": {"include": "Q4/*", "size_tolerance": 2}},
         "model_download.size_tolerance is 2.0: give a fraction below 1"),
        ({**MODEL, "model": {"path": "/nvme/m.gguf", "size_bytes": "404 GB"}},
         "model.size_bytes is '404 GB': give a non-negative number of bytes"),
    ],
)
def test_bad_configuration_is_refused_in_one_line(tmp_path, data, message):
    result = plan(PHASE0, [fake(**data)], groups=GROUPS, env=env(tmp_path))
    assert result.ops == [] and message in result.error and "\n" not in result.error


def test_model_step_refuses_without_space_or_cli(tmp_path):
    data = {
        "phase0_steps": "model",
        "model_download": {"include": "Q4/*"},
        "model": {
            "path": "/nvme/models/m-00001-of-00002.gguf",
            "size_bytes": 400 * 10**9,
            "architecture": "deepseek2",
        },
    }
    no_space = fake(**data)
    no_space[1]["fake_responses"]["df -B1"] = ["free=100000000000", "hf=/usr/local/bin/hf"]
    error = plan(PHASE0, [no_space], groups=GROUPS, env=env(tmp_path)).error
    assert (
        "needs 420.0 GB free (model 400.0 GB + 5% margin, 0.0 GB already there), only 100.0 GB free" in error
    )
    resumed = fake(**data)  # shard 1 of 2 already downloaded: the probe sums what is there
    resumed[1]["fake_responses"]["df -B1"] = ["free=300000000000", "hf=/usr/local/bin/hf"]
    resumed[1]["fake_responses"]["re:present_shards\\(path\\)"] = json.dumps(
        {"exists": True, "files": ["/nvme/models/m-00001-of-00002.gguf"], "total_bytes": 250 * 10**9,
         "missing": ["/nvme/models/m-00002-of-00002.gguf"], "architecture": "deepseek2",
         "error": "1 of 2 shards present"})
    assert plan(PHASE0, [resumed], groups=GROUPS, env=env(tmp_path)).error is None
    resumed[1]["fake_responses"]["df -B1"] = ["free=100000000000", "hf=/usr/local/bin/hf"]
    assert ("needs 170.0 GB free (model 400.0 GB + 5% margin, 250.0 GB already there), only 100.0 GB free"
            in plan(PHASE0, [resumed], groups=GROUPS, env=env(tmp_path)).error)
    no_cli = fake(**data)
    no_cli[1]["fake_responses"]["df -B1"] = ["free=900000000000", "hf="]
    assert (
        "the Hugging Face CLI `hf` is not on the host's PATH"
        in plan(PHASE0, [no_cli], groups=GROUPS, env=env(tmp_path)).error
    )
    enough = fake(**data)
    enough[1]["fake_responses"]["df -B1"] = ["free=900000000000", "hf=/usr/local/bin/hf"]
    result = plan(PHASE0, [enough], groups=GROUPS, env=env(tmp_path))
    assert result.op("Download unsloth/DeepSeek-R1-GGUF").commands == [
        "hf download unsloth/DeepSeek-R1-GGUF --include 'Q4/*' --local-dir /nvme/models"
    ]
