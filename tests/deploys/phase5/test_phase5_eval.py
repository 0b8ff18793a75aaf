"""Evaluation runner: golden files validated, checks scored, a real llama.cpp server replayed."""

from __future__ import annotations

import json

import pytest

from evals.__main__ import main
from evals.runner import GOLDEN, Case, Check, EvalError, load_cases, run, score


@pytest.mark.parametrize(
    ("check", "answer", "passed"),
    [
        ({"type": "contains", "value": "Paris"}, "The capital is paris.", True),
        ({"type": "contains", "value": "Paris", "case_sensitive": True}, "paris", False),
        ({"type": "regex", "value": r"\b391\b"}, "17*23 = 391", True),
        ({"type": "regex", "value": r"\b391\b"}, "3910", False),
        ({"type": "exact", "value": "ok"}, "  OK\n", True),
        ({"type": "any_of", "value": ["s[::-1]", "reversed(s)"]}, "Use ''.join(reversed(s))", True),
        ({"type": "json_keys", "value": ["status"]}, 'Here: {"status": "ok"}', True),
        ({"type": "json_keys", "value": ["status"]}, '{"state": "ok"}', False),
        ({"type": "json_keys", "value": ["status"]}, "{not json}", False),
        ({"type": "nonempty"}, "   ", False),
        # a reasoning model's inline thinking is not the answer
        ({"type": "regex", "value": r"^391$"}, "<think>17*23... 17*20=340, +51 = 391</think>\n391", True),
        ({"type": "contains", "value": "Paris"}, "<think>France... Paris?</think>", False),
        ({"type": "regex", "value": r"^391$"}, "thinking without an opening tag 391</think>391", True),
    ],
)
def test_checks_score_fixed_answers(check, answer, passed):
    assert score(Check(**check), answer) is passed


def test_shipped_golden_set_is_valid():
    cases = load_cases(GOLDEN)
    assert len(cases) >= 5 and len({c.id for c in cases}) == len(cases)
    # DeepSeek-R1 thinks first (often 1-3k tokens) and that counts against max_tokens
    assert all(c.max_tokens >= 2048 for c in cases), [c.id for c in cases if c.max_tokens < 2048]


def test_bad_golden_line_fails_with_file_and_line(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"id": "x", "prompt": "p", "check": {"type": "contains"}}\n'
                                      '{"id": "y", "prompt": "p", "check": {"type": "sounds-right"}}\n')
    with pytest.raises(EvalError, match=r"a\.jsonl:2: check\.type: Input should be"):
        load_cases(tmp_path)
    with pytest.raises(EvalError, match=r"no \*\.jsonl golden files"):
        load_cases(tmp_path / "empty")


def test_replay_against_a_real_llama_server_stores_scores(tmp_path, llama_server, monkeypatch):
    monkeypatch.delenv("BRAINTRUST_API_KEY", raising=False)
    url, served, _ = llama_server
    golden = tmp_path / "golden"
    golden.mkdir()
    cases = [Case(id="says-something", prompt="Say hello.", max_tokens=8, check=Check(type="nonempty")),
             Case(id="impossible", prompt="Say hello.", max_tokens=8,
                  check=Check(type="contains", value="zq-this-never-appears-qz"))]
    (golden / "t.jsonl").write_text("".join(c.model_dump_json() + "\n" for c in cases))
    summary = run(f"{url}/v1", golden, tmp_path / "out", timeout=60)
    assert summary["model"] == served
    assert (summary["cases"], summary["passed"], summary["errors"]) == (2, 1, 0)
    assert summary["braintrust"] is None  # no key, no upload
    rows = [json.loads(line) for line in (tmp_path / "out" / summary["run_id"] / "results.jsonl").open()]
    assert [(r["id"], r["passed"]) for r in rows] == [("says-something", True), ("impossible", False)]
    assert all(r["usage"]["completion_tokens"] == 8 and r["latency_s"] > 0 for r in rows)
    stored = json.loads((tmp_path / "out" / summary["run_id"] / "summary.json").read_text())
    assert stored["score"] == 0.5


def test_braintrust_key_without_the_package_is_one_clear_line(tmp_path, llama_server, monkeypatch, capsys):
    import importlib.util

    if importlib.util.find_spec("braintrust"):
        pytest.fail("this test expects the braintrust package to be absent from the test environment")
    monkeypatch.setenv("BRAINTRUST_API_KEY", "test-key-not-sent-anywhere")
    url, _, _ = llama_server
    assert main(["run", "--endpoint", f"{url}/v1", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: BRAINTRUST_API_KEY is set but the braintrust package is missing")
    assert "\n" not in err.strip()


def test_unreachable_endpoint_is_one_line(tmp_path, capsys):
    import socket

    with socket.socket() as sock:  # a closed loopback port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert main(["run", "--endpoint", f"http://127.0.0.1:{port}/v1", "--out", str(tmp_path),
                 "--timeout", "3"]) == 1
    assert "cannot list models (APIConnectionError): is the server up?" in capsys.readouterr().err
