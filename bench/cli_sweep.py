"""`python -m bench sweep`: the spec to run (a file, a resumed sweep's copy or the embedded demo),
the dry run, finding the sweep to resume, the run itself and its report.

Why apart from bench/cli.py: this is what the `sweep` subcommand does; cli.py only builds the
argument parser and dispatches. User errors are SpecError (one line, exit 2 in `bench.cli.main`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import shutil
import subprocess
import sys
from datetime import datetime
from importlib.resources import files
from pathlib import Path

from rich.console import Console

from bench.genmodel.cache import cache_dir, ensure_model, model_file
from bench.genmodel.shape import ModelShape
from bench.genmodel.write import GenModelError
from bench.plan import cells, count_runs
from bench.spec import Spec, SpecError, load_spec, numa_prefix, parse_spec
from bench.store import SweepStore, spec_hash

REPORTS = Path("reports")


def _numactl_works() -> bool:
    """numactl present and allowed to set a memory policy (containers may forbid set_mempolicy)."""
    exe = shutil.which("numactl")
    if not exe:
        return False
    try:
        probe = subprocess.run([exe, "--interleave=all", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def demo_text() -> str:
    """The embedded demo spec, adapted to this machine (thread counts, numactl)."""
    text = files("bench.specs").joinpath("demo.toml").read_text()
    n = os.cpu_count() or 1
    if n > 2:
        text = text.replace('"--threads" = [1]', f'"--threads" = [1, {min(4, n // 2)}]', 1)
    if _numactl_works():
        axis = '"--parallel" = [1, 4]'
        text = text.replace(axis, axis + '\nnuma = ["none", "interleave=all"]', 1)
    return text


def _load(spec_path: str | None, resume_dir: Path | None) -> tuple[Spec, str]:
    """The spec and its text; SpecError when it leaves nothing to run."""
    spec, text = _read(spec_path, resume_dir)
    from bench.plan import server_configs

    if not server_configs(spec):
        raise SpecError("every server configuration is excluded by the spec's [[exclude]] rules: "
                        "remove or narrow a rule so at least one remains (check with --dry-run)")
    return spec, text


def _read(spec_path: str | None, resume_dir: Path | None) -> tuple[Spec, str]:
    if spec_path:
        path = Path(spec_path)
        spec = load_spec(path)
        return spec, path.read_text()
    if resume_dir is not None:
        text = (resume_dir / "spec.toml").read_text()
        return load_spec(resume_dir / "spec.toml"), text
    import tomllib

    text = demo_text()
    return parse_spec(tomllib.loads(text)), text


def model_path(spec: Spec, generate: bool) -> str:
    if spec.server.generate is None:
        return spec.server.model
    shape: ModelShape = spec.server.generate
    if generate:
        try:
            return str(ensure_model(shape))
        except GenModelError as err:
            raise SpecError(f"genmodel: {err}") from None
    return str(model_file(shape))


def _latest(text: str) -> Path | None:
    """The newest unfinished sweep under reports/ made from the same spec text."""
    found = []
    for meta in REPORTS.glob("*/sweep.json"):
        store = SweepStore(meta.parent)
        m = store.meta()
        if m.get("spec_hash") == spec_hash(text) and m.get("status") != "finished":
            found.append((meta.stat().st_mtime, meta.parent))
    return max(found)[1] if found else None


def _dry_launch(engine, spec: Spec, model: str, cfg, warn):
    """The launch a real run would make; a host-only tool missing here (numactl) is a warning."""
    from bench.engines.base import Launch

    try:
        engine.check_config(cfg)
    except SpecError as err:
        warn(str(err))
    port = spec.server.port or 8080
    try:
        return engine.launch(spec.server, model, cfg, port)
    except SpecError as err:
        warn(str(err))
        return Launch(argv=engine.argv(spec.server, model, cfg, port), env=engine.env(spec.server, cfg),
                      prefix=numa_prefix(cfg.numa, strict=False), base_url=f"http://{spec.server.host}:{port}",
                      health_path=engine.health_path)


def dry_run(spec: Spec, text: str, model: str, console: Console) -> None:
    """Every planned launch, the estimated time, and what a real run on this host would stop for.

    Why warnings and not an error: a spec is often written here for another box (numactl, the
    CUDA binary, the 200 GB model live there); the plan is what the user wants to check.
    """
    from bench.engines import get_engine
    from bench.plan import server_configs
    from bench.progress import cell_units, earlier_timing, human_s

    warnings: list[str] = []

    def warn(message: str) -> None:
        if message not in warnings:
            warnings.append(message)

    engine = get_engine(spec.engine)
    try:
        engine.preflight(spec.server, model)
    except SpecError as err:
        warn(str(err))
    configs = server_configs(spec)
    r = spec.workload.repeats
    units = 0.0
    for i, cfg in enumerate(configs, 1):
        launch = _dry_launch(engine, spec, model, cfg, warn)
        planned = cells(spec, cfg)
        units += r * sum(cell_units(c.requests, c.warmup, c.output_tokens, c.concurrency) for c in planned)
        console.print(f"[bold]launch {i}/{len(configs)}[/bold] {cfg.label}  [dim]({cfg.config_id})[/dim]",
                      highlight=False)
        console.print(f"  prefix: {shlex.join(launch.prefix) or '(none)'}", highlight=False, soft_wrap=True)
        console.print(f"  env:    {' '.join(f'{k}={v}' for k, v in launch.shown_env.items()) or '(none)'}",
                      highlight=False, soft_wrap=True)
        console.print(f"  argv:   {shlex.join(launch.shown_argv)}", highlight=False, soft_wrap=True)
        console.print(f"  cells:  {', '.join(c.cell_id for c in planned)}", highlight=False)
    n_cells, n_runs = count_runs(spec, configs)
    console.print(
        f"{len(configs)} server configurations x {r} repeats = {len(configs) * r} launches; "
        f"{n_cells} workload cells, {n_runs} runs (cells x repeats), strategy {spec.strategy}",
        highlight=False,
    )
    timing = earlier_timing(REPORTS, spec_hash(text), spec.name)
    est = timing.estimate(len(configs) * r, units)
    if est is not None:
        console.print(f"estimated time: {human_s(est)} at most (launch {human_s(timing.launch())} each, "
                      f"cells from {timing.unit() * 1000:.1f} ms per token per stream; {timing.source})",
                      highlight=False)
    else:
        assumed = 20.0  # tokens/s per stream, only to give the user an order of magnitude
        from omni.gguf_files import ShardError, total_bytes

        try:  # loading reads the model (all its shards) once: ~2 GB/s from a local NVMe, plus the start
            per_launch = 5.0 + total_bytes(model) / 2e9
        except (OSError, ShardError):
            per_launch = 30.0
        guess = len(configs) * r * per_launch + units / assumed
        console.print(f"estimated time: unknown until measured (no earlier sweep of this spec under "
                      f"{REPORTS}/); assuming {assumed:g} tokens/s per stream and {human_s(per_launch)} per "
                      f"launch, about {human_s(guess)} at most", highlight=False)
    for message in warnings:
        console.print(f"[yellow]warning (a real run on this host would stop here): {message}[/yellow]",
                      highlight=False, soft_wrap=True)


def cmd_sweep(args: argparse.Namespace, console: Console) -> int:
    resume_dir = None
    if args.resume is not None and args.resume != "latest":
        resume_dir = Path(args.resume)
        if not (resume_dir / "sweep.json").is_file():
            raise SpecError(f"--resume {resume_dir}: not a sweep directory (no sweep.json); "
                            "give reports/<sweep-id>")
    spec, text = _load(args.spec, resume_dir)
    if args.dry_run:
        dry_run(spec, text, model_path(spec, generate=False), console)
        return 0
    out = resume_dir or (Path(args.out) if args.out else None)
    if args.resume == "latest":
        out = _latest(text)
        if out is None:
            raise SpecError("--resume: no unfinished sweep of this spec under reports/; "
                            "start one without --resume")
    existing = out is not None and (out / "sweep.json").is_file()
    if existing and SweepStore(out).meta().get("spec_hash") != spec_hash(text):
        raise SpecError(f"{out} holds a sweep of a different spec: use a new --out or the spec in "
                        f"{out}/spec.toml")
    if out is None:
        out = REPORTS / f"{spec.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and not out.is_dir():
        raise SpecError(f"--out {out} is a file, not a directory: give a new or existing sweep directory")
    from bench.sweep import preflight, run_sweep

    plan = preflight(spec, model_path(spec, generate=False), check_model=spec.server.generate is None)
    if spec.server.generate is not None:
        console.print(f"model: random-weight GGUF cached in {cache_dir()} (generated when missing)")
        plan = dataclasses.replace(plan, model=model_path(spec, generate=True))
    from bench.progress import earlier_timing

    timing = earlier_timing(REPORTS, spec_hash(text), spec.name)
    sweep_dir = run_sweep(plan, text, out, console, retry_failed=args.retry_failed, timing=timing)
    if not args.no_report:
        page = render(sweep_dir)
        from bench.report.render import headline

        console.print(headline(sweep_dir), highlight=False)
    print(sweep_dir / "results.csv" if args.no_report else page)
    if SweepStore(sweep_dir).meta().get("served_runs") == 0:
        print(f"error: every launch failed (no configuration served a request); causes in "
              f"{sweep_dir / ('results.csv' if args.no_report else 'index.html')}", file=sys.stderr)
        return 1
    return 0


def render(sweep_dir: Path) -> Path:
    """The sweep's index.html; settings from its spec's [report] table and report.toml."""
    from bench.report import ReportError, render_report
    from bench.report.modelbytes import ModelFileError

    try:
        return render_report(sweep_dir)
    except (ReportError, ModelFileError) as err:
        raise SpecError(f"report: {err} (the results are in {sweep_dir / 'results.csv'})") from None
