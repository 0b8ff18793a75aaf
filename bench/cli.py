"""`python -m bench`: sweep, report, genmodel. User errors are one line on stderr (exit 2)."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
from datetime import datetime
from importlib.resources import files
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console

from bench.genmodel import ModelShape, cache_dir, ensure_model
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
        return str(ensure_model(shape))
    kind = "moe" if shape.n_expert else "dense"
    return str(cache_dir() / f"omni-{kind}-{shape.dtype}-{shape.key}.gguf")


def _latest(text: str) -> Path | None:
    """The newest unfinished sweep under reports/ made from the same spec text."""
    found = []
    for meta in REPORTS.glob("*/sweep.json"):
        store = SweepStore(meta.parent)
        m = store.meta()
        if m.get("spec_hash") == spec_hash(text) and m.get("status") != "finished":
            found.append((meta.stat().st_mtime, meta.parent))
    return max(found)[1] if found else None


def dry_run(spec: Spec, model: str, console: Console) -> None:
    from bench.engines import get_engine
    from bench.plan import server_configs

    engine = get_engine(spec.engine)
    try:
        engine.preflight(spec.server, model)
    except SpecError as err:
        console.print(f"[yellow]warning (a real run would stop here): {err}[/yellow]")
    configs = server_configs(spec)
    for i, cfg in enumerate(configs, 1):
        launch = engine.launch(spec.server, model, cfg, spec.server.port or 8080)
        launch.prefix = numa_prefix(cfg.numa, strict=False)
        console.print(f"[bold]launch {i}/{len(configs)}[/bold] {cfg.config_id}  {cfg.label}", highlight=False)
        console.print(f"  prefix: {shlex.join(launch.prefix) or '(none)'}", highlight=False, soft_wrap=True)
        console.print(f"  env:    {' '.join(f'{k}={v}' for k, v in launch.env.items()) or '(none)'}",
                      highlight=False, soft_wrap=True)
        console.print(f"  argv:   {shlex.join(launch.argv)}", highlight=False, soft_wrap=True)
        console.print(f"  cells:  {', '.join(c.cell_id for c in cells(spec, cfg))}", highlight=False)
    n_cells, n_runs = count_runs(spec, configs)
    r = spec.workload.repeats
    console.print(
        f"{len(configs)} server configurations x {r} repeats = {len(configs) * r} launches; "
        f"{n_cells} workload cells, {n_runs} runs (cells x repeats), strategy {spec.strategy}",
        highlight=False,
    )


def cmd_sweep(args: argparse.Namespace, console: Console) -> int:
    resume_dir = None
    if args.resume is not None and args.resume != "latest":
        resume_dir = Path(args.resume)
        if not (resume_dir / "sweep.json").is_file():
            raise SpecError(f"--resume {resume_dir}: not a sweep directory (no sweep.json); "
                            "give reports/<sweep-id>")
    spec, text = _load(args.spec, resume_dir)
    if args.dry_run:
        dry_run(spec, model_path(spec, generate=False), console)
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
    from bench.sweep import preflight, run_sweep

    preflight(spec, model_path(spec, generate=False), check_model=spec.server.generate is None)
    if spec.server.generate is not None:
        console.print(f"model: random-weight GGUF cached in {cache_dir()} (generated when missing)")
    model = model_path(spec, generate=True)
    sweep_dir = run_sweep(spec, text, out, model, console, retry_failed=args.retry_failed)
    if args.no_report:
        print(sweep_dir / "results.csv")
        return 0
    print(render(sweep_dir))
    return 0


def render(sweep_dir: Path) -> Path:
    """The sweep's index.html; settings from its spec's [report] table and report.toml."""
    from bench.report import ReportError, render_report
    from bench.report.modelbytes import ModelFileError

    try:
        return render_report(sweep_dir)
    except (ReportError, ModelFileError) as err:
        raise SpecError(f"report: {err} (the results are in {sweep_dir / 'results.csv'})") from None


def cmd_report(argv: list[str]) -> int:
    """Every flag goes to the report's own CLI (one line and exit 2 on a bad setting or sweep dir)."""
    from bench.report import main as report_main

    return report_main(argv)


def cmd_genmodel(args: argparse.Namespace, console: Console) -> int:
    fields = {k: v for k, v in vars(args).items() if k in ModelShape.model_fields and v is not None}
    try:
        shape = ModelShape(**fields)
    except ValidationError as err:
        e = err.errors()[0]
        where = ".".join(map(str, e["loc"])) or "shape"
        raise SpecError(f"genmodel {where}: {e['msg'].removeprefix('Value error, ')}") from None
    if args.out:
        from bench.genmodel import write_model

        path = write_model(shape, Path(args.out))
    else:
        path = ensure_model(shape)
    console.print(f"{path} ({path.stat().st_size / 2**20:.1f} MiB)", highlight=False)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sweep", help="run a sweep spec (no spec: the zero-config demo)")
    s.add_argument("spec", nargs="?", help="sweep spec TOML (default: the embedded demo)")
    s.add_argument("--dry-run", action="store_true",
                   help="print every launch and the cell count, start nothing")
    s.add_argument("--out", help="sweep directory (default reports/<name>-<time>); an existing one resumes")
    s.add_argument("--resume", nargs="?", const="latest", metavar="SWEEP_DIR",
                   help="resume SWEEP_DIR, or the newest unfinished sweep of this spec")
    s.add_argument("--retry-failed", action="store_true", help="when resuming, rerun cells that failed")
    s.add_argument("--no-report", action="store_true", help="skip the HTML report (render it later with "
                   "`python -m bench report`)")
    # `report ...` is dispatched to bench.report.main before parsing (see main): listed here for --help
    r = sub.add_parser("report", help="render reports/<sweep-id>/index.html (flags: report --help)")
    r.add_argument("sweep_dir")
    g = sub.add_parser("genmodel", help="generate (and cache) a random-weight Llama GGUF")
    for name, field in ModelShape.model_fields.items():
        g.add_argument("--" + name.replace("_", "-"), dest=name, type=type(field.default), default=None)
    g.add_argument("--out", help="write here instead of the cache")
    return p


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through the sweep's finally blocks: the server is stopped


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:  # the report CLI owns its flags: thresholds, bandwidths
        return cmd_report(argv[1:])
    args = parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    console = Console(highlight=False, soft_wrap=True)
    try:
        command = {"sweep": cmd_sweep, "genmodel": cmd_genmodel}[args.command]
        return command(args, console)
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun with --resume to continue", file=sys.stderr)
        return 130
