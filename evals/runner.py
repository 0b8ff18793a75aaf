"""Replay a golden set against an OpenAI-compatible endpoint and store the scores.

Why: after a redeploy (new quant, new placement, a Phoenix restart) the owner wants to know the
answers are still right, not only fast. Each case is a prompt and a deterministic check; results
land in ``reports/evals/<run-id>/`` (one JSON line per case plus ``summary.json``), written
atomically. Braintrust gets a copy only when ``BRAINTRUST_API_KEY`` is in the environment.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from omni.errors import one_line
from omni.files import atomic_write_text

GOLDEN = Path(__file__).resolve().parent / "golden"


class EvalError(ValueError):
    """A bad golden file or an unreachable endpoint; one line with the fix."""


class Check(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["contains", "regex", "exact", "any_of", "json_keys", "nonempty"]
    value: str | list[str] | None = None
    case_sensitive: bool = False


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    prompt: str = Field(min_length=1)
    system: str | None = None
    # R1-class models think first (often 1-3k tokens) and the thinking counts against max_tokens:
    # a small budget ends the reply before the answer begins.
    max_tokens: int = Field(4096, ge=1)
    check: Check
    tags: list[str] = []


def load_cases(folder: Path) -> list[Case]:
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise EvalError(f"{folder}: no *.jsonl golden files: point --golden at a folder of cases")
    cases: list[Case] = []
    for file in files:
        for number, line in enumerate(file.read_text().splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                cases.append(Case.model_validate_json(line))
            except ValidationError as exc:
                fix = "fix the case (evals/README in docs/phase5.md)"
                raise EvalError(f"{file}:{number}: {one_line(exc, where='line', fix=fix)}") from None
    ids = [c.id for c in cases]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise EvalError(f"{folder}: duplicate case ids {', '.join(dupes)}: give each case its own id")
    return cases


THINK = re.compile(r"^\s*(?:<think>)?.*?</think>", re.DOTALL)


def final_answer(content: str) -> str:
    """The reply after a reasoning model's ``<think>...</think>`` block, when the server left it inline."""
    return THINK.sub("", content, count=1) if "</think>" in content else content


def score(check: Check, answer: str) -> bool:
    """Whether ``answer`` passes ``check``; pure, so every check type is unit-tested on fixed text."""
    text = final_answer(answer).strip()
    flags = 0 if check.case_sensitive else re.IGNORECASE
    values = check.value if isinstance(check.value, list) else [check.value or ""]
    if check.type == "nonempty":
        return bool(text)
    if check.type == "regex":
        return re.search(values[0], text, flags) is not None
    if check.type == "json_keys":
        match = re.search(r"\{.*\}", text, re.DOTALL)
        try:
            document = json.loads(match.group(0)) if match else None
        except ValueError:
            return False
        return isinstance(document, dict) and all(k in document for k in values)
    fold = (lambda s: s) if check.case_sensitive else str.casefold
    if check.type == "exact":
        return fold(text) == fold(values[0])
    return any(fold(v) in fold(text) for v in values)  # contains, any_of


def run(endpoint: str, golden: Path = GOLDEN, out: Path = Path("reports/evals"), model: str | None = None,
        timeout: float = 300, api_key: str = "none") -> dict[str, Any]:
    """Replay every case once (temperature 0) and store per-case rows and a summary; returns the summary."""
    from openai import APIConnectionError, APIStatusError, OpenAI

    cases = load_cases(golden)
    client = OpenAI(base_url=endpoint, api_key=api_key, timeout=timeout, max_retries=1)
    try:
        model = model or client.models.list().data[0].id
    except (APIConnectionError, APIStatusError, IndexError) as exc:
        raise EvalError(f"{endpoint}: cannot list models ({type(exc).__name__}): is the server up? (phase 5 "
                        "binds it to 127.0.0.1:8000; tunnel with ssh -L 8000:127.0.0.1:8000)") from None
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{re.sub(r'[^A-Za-z0-9._-]+', '_', model)}"
    folder = out / run_id
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for case in cases:
        messages = ([{"role": "system", "content": case.system}] if case.system else [])
        messages.append({"role": "user", "content": case.prompt})
        start = time.monotonic()
        try:
            reply = client.chat.completions.create(model=model, messages=messages, max_tokens=case.max_tokens,
                                                   temperature=0)
            message = reply.choices[0].message
            answer, error = message.content or "", None
            reasoning = getattr(message, "reasoning_content", None) or (message.model_extra or {}).get(
                "reasoning_content")
            usage = reply.usage.model_dump() if reply.usage else {}
            if reply.choices[0].finish_reason == "length" and not final_answer(answer).strip():
                error = (f"the reply hit max_tokens={case.max_tokens} before any answer (a reasoning "
                         "model thinks first): raise the case's max_tokens")
        except (APIConnectionError, APIStatusError) as exc:
            answer, error, reasoning, usage = "", f"{type(exc).__name__}: {exc}", None, {}
        latency = time.monotonic() - start
        passed = error is None and score(case.check, answer)
        rows.append({"id": case.id, "tags": case.tags, "passed": passed, "score": 1.0 if passed else 0.0,
                     "check": case.check.model_dump(), "answer": answer,
                     "reasoning_chars": len(reasoning or ""), "latency_s": round(latency, 4), "usage": usage,
                     "error": error})
    passed = sum(r["passed"] for r in rows)
    summary = {"run_id": run_id, "endpoint": endpoint, "model": model, "golden": str(golden),
               "cases": len(rows), "passed": passed, "score": passed / len(rows),
               "errors": sum(r["error"] is not None for r in rows),
               "latency_s_mean": round(sum(r["latency_s"] for r in rows) / len(rows), 4),
               "finished_at": datetime.now(UTC).isoformat(timespec="seconds"), "braintrust": None}
    atomic_write_text(folder / "results.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    if os.environ.get("BRAINTRUST_API_KEY"):
        summary["braintrust"] = upload_braintrust(summary, rows, cases)
    atomic_write_text(folder / "summary.json", json.dumps(summary, indent=2) + "\n")
    summary["folder"] = str(folder)
    return summary


def upload_braintrust(summary: dict[str, Any], rows: list[dict], cases: list[Case]) -> str:
    """Log the run as a Braintrust experiment; only called when BRAINTRUST_API_KEY is set."""
    try:
        import braintrust
    except ImportError:
        raise EvalError("BRAINTRUST_API_KEY is set but the braintrust package is missing: "
                        "pip install braintrust (scores are stored locally either way)") from None
    experiment = braintrust.init(project=os.environ.get("BRAINTRUST_PROJECT", "protocol-omni"),
                                 experiment=summary["run_id"])
    by_id = {c.id: c for c in cases}
    for row in rows:
        experiment.log(input=by_id[row["id"]].prompt, output=row["answer"], scores={"passed": row["score"]},
                       metadata={"id": row["id"], "tags": row["tags"], "latency_s": row["latency_s"]})
    return experiment.summarize().experiment_url or summary["run_id"]
