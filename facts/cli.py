"""``python -m facts collect [--host NAME]`` and ``python -m facts parse KIND FILE``.

Prints JSON on stdout; any user error is one line on stderr and exit status 2 (no traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .parse import PARSERS, ParseError, parse


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m facts", description="Hardware facts of an LLM workstation, as JSON.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    collect = commands.add_parser("collect", help="gather every fact on this machine (pyinfra @local)")
    collect.add_argument("--host", help="an inventory host (omni.hostdata, OMNI_HOST...) reached over SSH")
    collect.add_argument("--indent", type=int, default=2, help="JSON indentation (default 2)")
    parse_cmd = commands.add_parser("parse", help="parse a saved capture")
    parse_cmd.add_argument("kind", metavar="KIND", help=f"one of: {', '.join(PARSERS)}")
    parse_cmd.add_argument("file", metavar="FILE", type=Path, help="the capture (prompts, # lines ignored)")
    parse_cmd.add_argument("--indent", type=int, default=2, help="JSON indentation (default 2)")
    return parser


def _fail(message: str) -> int:
    print(f"python -m facts: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "parse":
        if args.kind not in PARSERS:
            return _fail(f"unknown KIND {args.kind!r}: use one of {', '.join(PARSERS)}")
        try:
            text = args.file.read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            return _fail(f"cannot read {args.file}: {error.strerror}")
        try:
            data = parse(args.kind, text)
        except ParseError as error:
            return _fail(f"{args.file}: {error}")
    else:
        from .collect import CollectError, collect_host, collect_local

        try:
            data = collect_host(args.host) if args.host else collect_local()
        except CollectError as error:
            return _fail(str(error))
    try:
        json.dump(data, sys.stdout, indent=args.indent or None)
        sys.stdout.write("\n")
        sys.stdout.flush()
    except BrokenPipeError:  # `... | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
    return 0
