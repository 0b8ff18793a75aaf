"""Benchmark: a no-change rerun of phase 4 against a converged host; time and fact gatherings.

    .venv/bin/python tests/perf/phase4_rerun.py [--runs 5]

Runs the real CLI (``pyinfra -y -vv inventory.py deploys/phase4.py``, and the ``--dry`` plan) against a
``@fake`` host whose scripted facts describe a host where phase 4 already ran (verification ops off:
they always execute, by design, so they are not part of a no-change rerun). ``-vv`` makes pyinfra log
one "Loaded fact" line per fact it reads and echo (">>>") every command the connector really runs;
on a no-change run every such command gathers a fact. The script exits non-zero if a command ran
twice (a fact gathered twice) or an operation changed something. It then repeats the run in-process
with and without the fact memo (``deploys.core.fact_memo.gather_facts_once``) to show what the memo
saves, and times ``pyinfra exec -- true`` on the same host as the CLI's fixed start-up cost. The fake
connector answers instantly: on a real host each command run costs one SSH round trip on top.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.deploys.phase4.phase4_boxes import converged, hosts_toml  # noqa: E402

FACT_LINE = re.compile(r"Loaded fact (.+)$")
COMMAND_LINE = re.compile(r"\] >>> (.+)$")


def cli_run(hosts_file: Path, *args: str, deploy: tuple[str, ...] = ("deploys/phase4.py",)
            ) -> tuple[float, int, Counter, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "PYINFRA_"))}
    env.update(OMNI_HOSTS_FILE=str(hosts_file), PYINFRA_PROGRESS="off")
    pyinfra = str(Path(sys.executable).with_name("pyinfra"))
    start = time.perf_counter()
    proc = subprocess.run([pyinfra, "-vv", *args, "inventory.py", *deploy], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        sys.exit(f"pyinfra failed ({proc.returncode}): {output[-800:]}")
    facts = sum(1 for line in output.splitlines() if FACT_LINE.search(line))
    commands = Counter(m.group(1).strip() for line in output.splitlines() if (m := COMMAND_LINE.search(line)))
    return seconds, facts, commands, proc.stdout


def in_process(memo: bool) -> tuple[float, int, int]:
    import deploys.core.fact_memo as phase4_facts
    from tests.deploys.phase4.phase4_harness import run_deploy

    real = phase4_facts.gather_facts_once
    if not memo:
        phase4_facts.gather_facts_once = lambda host: None
    try:
        start = time.perf_counter()
        result = run_deploy([("@fake/box", converged().data(phase4={"verify": False}), ["workstations"])],
                            execute=True)
        seconds = time.perf_counter() - start
    finally:
        phase4_facts.gather_facts_once = real
    if result.error or result.changed["@fake/box"]:
        sys.exit(f"in-process rerun was not a no-change run: {result.error or result.changed}")
    prepared = sum(len(op.commands) for op in result.ops["@fake/box"])  # 0 on a converged host
    # commands the connector ran while planning (facts) + while executing (facts gathered again)
    fact_commands = len(result.planned["@fake/box"]) + len(result.executed["@fake/box"])
    return seconds, fact_commands, prepared


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        hosts_file = Path(tmp) / "hosts.toml"
        hosts_file.write_text(hosts_toml({"@fake/box": (converged().data(phase4={"verify": False}),
                                                        ["workstations"])}))
        rows = []
        for mode, flags in (("apply -y (no change)", ("-y", "--json")), ("plan --dry", ("--dry",))):
            times = []
            for _ in range(args.runs):
                seconds, facts, commands, stdout = cli_run(hosts_file, *flags)
                times.append(seconds)
                if "--json" in flags:
                    document = json.loads(stdout)
                    changed = [op["name"] for op in document["results"]["operations"] if op["success"]]
                    if changed:
                        sys.exit(f"rerun changed something: {changed}")
            twice = {command[:80]: n for command, n in commands.items() if n > 1}
            rows.append((mode, statistics.median(times), min(times), facts, sum(commands.values()),
                         len(commands), twice))
        startup = [cli_run(hosts_file, "-y", deploy=("exec", "--", "true"))[0] for _ in range(args.runs)]
    print(f"phase 4 no-change rerun, converged @fake host, {args.runs} runs each (wall time of the whole "
          "pyinfra process)")
    print(f"{'mode':<24}{'median s':>10}{'min s':>8}{'facts read':>12}{'commands run':>14}{'distinct':>10}")
    for mode, median, best, facts, total, distinct, _ in rows:
        print(f"{mode:<24}{median:>10.2f}{best:>8.2f}{facts:>12}{total:>14}{distinct:>10}")
    print(f"{'pyinfra exec -- true':<24}{statistics.median(startup):>10.2f}{min(startup):>8.2f}"
          "   (CLI start-up, connect, one command)")
    in_process(True)  # warm-up: imports, template cache
    for memo in (True, False):
        seconds, commands, _ = in_process(memo)
        label = "with the fact memo" if memo else "without the memo"
        print(f"in-process plan+execute {label}: {seconds:.3f} s, {commands} fact commands run")
    failures = [f"{mode}: ran twice: {twice}" for mode, *_, twice in rows if twice]
    for failure in failures:
        print(failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
