"""``python -m evals run [--endpoint URL] [--model NAME] [--golden DIR] [--out DIR]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .runner import GOLDEN, EvalError, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals")
    sub = parser.add_subparsers(dest="command", required=True)
    replay = sub.add_parser("run", help="replay the golden set and store the scores")
    replay.add_argument("--endpoint", default="http://127.0.0.1:8000/v1")
    replay.add_argument("--model", help="served model name (default: the first /v1/models lists)")
    replay.add_argument("--golden", type=Path, default=GOLDEN)
    replay.add_argument("--out", type=Path, default=Path("reports/evals"))
    replay.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)
    try:
        summary = run(args.endpoint, args.golden, args.out, args.model, args.timeout)
    except EvalError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{summary['model']}: {summary['passed']}/{summary['cases']} passed "
          f"(mean latency {summary['latency_s_mean']} s, {summary['errors']} errors) -> {summary['folder']}")
    return 0 if summary["errors"] == 0 else 2


if __name__ == "__main__":
    raise SystemExit(main())
