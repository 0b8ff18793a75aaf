"""Issue 19, class 9: spec env secrets reach the server and no file the sweep writes (the spec copy
aside, which a resume needs and which is then 0600)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bench.engines.base import Launch
from bench.server import ServerProcess, free_port
from omni.secrets import is_secret_name, redact_env, redact_text, redact_url, url_has_credentials
from tests.bench.benchutil import run_bench, write_spec
from tests.bench.test_sweep import spec_text

TOKEN = "hf_Zq81SecretTokenValue"
KEY = "sk-another-Secret-4411"


@pytest.mark.parametrize("name,secret", [
    ("HF_TOKEN", True), ("OPENAI_API_KEY", True), ("GITHUB_TOKEN", True), ("OMNI_BMC_PASSWORD", True),
    ("AWS_SECRET_ACCESS_KEY", True), ("KEY", True), ("LLAMA_ARG_THREADS", False),
    ("CUDA_VISIBLE_DEVICES", False), ("GGML_CUDA_NO_PINNED", False), ("KEYBOARD", False),
    ("OMNI_BMC_PASSWORD_FILE", False), ("HF_TOKEN_PATH", False)])
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_redaction_helpers() -> None:
    env = {"HF_TOKEN": TOKEN, "OMP_NUM_THREADS": "4"}
    assert redact_env(env) == {"HF_TOKEN": "***", "OMP_NUM_THREADS": "4"}
    assert redact_url("https://admin:hunter22@bmc.example:8443/redfish") == "https://***@bmc.example:8443/redfish"
    assert url_has_credentials("https://admin@bmc") and not url_has_credentials("https://bmc:443")
    assert redact_text(f"GET https://a:b@h/x token={TOKEN}", (TOKEN,)) == "GET https://***@h/x token=***"


def test_launch_records_mask_secrets_but_the_process_gets_them(tmp_path: Path) -> None:
    out = tmp_path / "seen"
    echo = f'printf %s "$HF_TOKEN" > {out}; echo "token=$HF_TOKEN key=$1"'  # a server echoing its secrets
    launch = Launch(argv=["sh", "-c", echo, "--api-key", KEY],
                    env={"HF_TOKEN": TOKEN}, prefix=[], base_url=f"http://127.0.0.1:{free_port()}")
    assert TOKEN not in launch.command and KEY not in launch.command and "HF_TOKEN=***" in launch.command
    assert launch.shown_argv[-1] == "***" and launch.argv[-1] == KEY
    srv = ServerProcess(launch, tmp_path / "log")
    srv.start()
    assert stat.S_IMODE((tmp_path / "log").stat().st_mode) == 0o600  # while it may hold them
    srv.proc.wait(timeout=10)
    assert out.read_text() == TOKEN
    assert "token=***" in srv.log_tail() and KEY not in srv.log_tail()
    srv.stop(5)
    log = (tmp_path / "log").read_text()
    assert TOKEN not in log and KEY not in log and "token=*** key=***" in log
    assert stat.S_IMODE((tmp_path / "log").stat().st_mode) == 0o644


@pytest.mark.slow
def test_sweep_files_never_hold_a_secret_value(tiny_model: Path, tmp_path: Path) -> None:
    text = spec_text(tiny_model, '"-np" = [1]').replace(
        "stop_timeout_s = 10", f'stop_timeout_s = 10\nenv = {{ HF_TOKEN = "{TOKEN}", MY_API_KEY = "{KEY}" }}')
    spec = write_spec(tmp_path / "s.toml", text)
    out = tmp_path / "sweep"
    proc = run_bench("sweep", str(spec), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert TOKEN not in proc.stdout + proc.stderr and KEY not in proc.stdout + proc.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"results.csv", "index.html", "launch.json"} <= {p.name for p in files}
    for path in files:
        data = path.read_bytes()
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.name == "spec.toml":
            assert TOKEN.encode() in data and mode == 0o600  # a resume needs it; only its owner reads it
        else:
            assert TOKEN.encode() not in data and KEY.encode() not in data, path
    csv_text = (out / "results.csv").read_text()
    assert "HF_TOKEN=***" in csv_text and "MY_API_KEY" in csv_text
    dry = run_bench("sweep", str(spec), "--dry-run")
    assert TOKEN not in dry.stdout and "HF_TOKEN=***" in dry.stdout


def test_a_secret_cannot_be_an_axis(tmp_path: Path) -> None:
    text = spec_text(Path("/nonexistent.gguf"), '"env.HF_TOKEN" = ["a", "b"]')
    proc = run_bench("sweep", str(write_spec(tmp_path / "s.toml", text)), "--dry-run")
    assert proc.returncode == 2 and "is a secret" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
