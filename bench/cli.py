"""`python -m bench`: sweep, report, genmodel, plan. User errors are one line on stderr (exit 2)."""

from __future__ import annotations

import argparse
import dataclasses
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

from bench.genmodel import GenModelError, ModelShape, cache_dir, ensure_model, model_file
from bench.plan import cells, count_runs
from bench.spec import Spec, SpecError, load_spec, numa_prefix, parse_spec
from bench.store import SweepStore, spec_hash
from omni.errors import one_line

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
        try:  # loading reads the model once: ~2 GB/s from a local NVMe, plus the server's own start
            per_launch = 5.0 + Path(model).stat().st_size / 2e9
        except OSError:
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


def cmd_report(argv: list[str]) -> int:
    """Every flag goes to the report's own CLI (one line and exit 2 on a bad setting or sweep dir)."""
    from bench.report import main as report_main

    return report_main(argv)


def cmd_genmodel(args: argparse.Namespace, console: Console) -> int:
    fields = {k: v for k, v in vars(args).items() if k in ModelShape.model_fields and v is not None}
    try:
        shape = ModelShape(**fields)
    except ValidationError as err:
        raise SpecError(f"genmodel {one_line(err, where='shape')}") from None
    from omni.gguf_files import shard_paths

    try:
        if args.out:
            from bench.genmodel import write_model

            path = write_model(shape, Path(args.out))
        else:
            path = ensure_model(shape)
    except GenModelError as err:
        raise SpecError(f"genmodel: {err}") from None
    shards = shard_paths(str(path))
    size = sum(Path(p).stat().st_size for p in shards)
    more = f" in {len(shards)} shards" if len(shards) > 1 else ""
    console.print(f"{path} ({size / 2**20:.1f} MiB{more})", highlight=False)
    return 0


def _numbers(text: str | None, what: str, kind: type = float) -> tuple:
    if not text:
        return ()
    try:
        return tuple(kind(x) for x in text.split(","))
    except ValueError:
        raise SpecError(f"{what} {text!r}: give comma-separated numbers") from None


def cmd_plan(args: argparse.Namespace, console: Console) -> int:
    """Plan a placement for MODEL on a host, print it and optionally write a sweep spec."""
    from bench import planner as pl

    try:
        mt = pl.model_table(args.model)
        if args.host not in (None, "@local"):
            raise pl.PlanError(f"--host {args.host}: only @local is read directly; for another host run "
                               "`python -m facts collect --host NAME > FACTS.json` and give --facts")
        host = pl.load_host(args.facts, args.host == "@local", args.membw, args.host_gbps,
                            _numbers(args.gpu_gbps, "--gpu-gbps"))
        gpus = _numbers(args.gpus, "--gpus", int) if args.gpus is not None else None
        settings = pl.Settings(ctx=args.ctx, ubatch=args.ubatch, margin_mib=args.margin_mib,
                               reserve_mib=args.reserve_mib,
                               vram_budget=_numbers(args.vram_budget, "--vram-budget"),
                               ram_headroom_gib=args.ram_headroom_gib, fixed_ms=args.fixed_ms, gpus=gpus)
        if args.ctx <= 0:
            raise pl.PlanError(f"--ctx {args.ctx}: give a positive context size")
        if args.calibrate:
            fixed, how = pl.calibrate(mt, host, settings, args.calibrate)
            settings = pl.Settings(**{**settings.__dict__, "fixed_ms": fixed})
            console.print(f"fixed cost {how}", highlight=False, markup=False)
        if not host.gpus and args.facts and not args.allow_cpu_only:
            raise pl.PlanError(f"--facts {args.facts}: no GPUs in these facts (nvidia_gpus unavailable or "
                               "empty); collect them on the GPU host, or pass --allow-cpu-only")
        best, options = pl.plan(mt, host, settings)
        near = pl.neighbours(mt, host, settings, best) if best.gpus else []
    except pl.PlanError as err:
        raise SpecError(f"plan: {err}") from None
    m = mt.model
    console.print(f"model {Path(m.path).name}: {m.file_bytes / pl.GIB:.1f} GiB, {m.n_layer} layers, "
                  f"{m.expert_count} experts ({m.expert_used_count} used), routed experts "
                  f"{sum(mt.experts.values()) / pl.GIB:.1f} GiB, "
                  f"KV {mt.kv_per_token_layer * m.n_layer:.0f} B/token", highlight=False, markup=False)
    console.print(f"host: {host.ram_bytes / pl.GIB:.0f} GiB RAM ({host.ram_source}), {host.cores} cores, "
                  f"{host.numa_nodes} NUMA nodes, {len(host.gpus)} GPUs", highlight=False)
    for p in [best, *near, *[o for o in options if o is not best]]:
        pre = f"prefill ~{p.prefill_tps:.0f}" if p.prefill_tps else "prefill n/a"
        console.print(f"[bold]{p.label}[/bold]: decode {p.decode_tps:.2f} tokens/s predicted, {pre} "
                      f"(ub {settings.ubatch}, PCIe-bound)", highlight=False)
    console.print("plan:", highlight=False)
    for line in pl.describe(mt, host, best):
        console.print(line, highlight=False, markup=False)
    all_gpus = [g.index for g in host.gpus]
    argv = pl.placement_argv(best, mt.n_layer, all_gpus)
    threads = f"--threads {host.cores}" + (" --numa distribute" if host.numa_nodes > 1 else "")
    threads += "".join(f" {a}" for a in pl.cpu_only_args(host))
    console.print(f"  flags: {shlex.join(argv)} {threads}", highlight=False, soft_wrap=True)
    for note in best.notes + ([pl.NO_AMX_REASON] if pl.cpu_only_args(host) else []):
        console.print(f"  note: {note}", highlight=False)
    if args.out:
        grid = [(g, shlex.split(g)) for g in args.grid or []]
        text = pl.spec_text(args.model, mt, host, settings, best, near, options, binary=args.binary,
                            grid=grid)
        import tomllib

        from bench.spec import parse_spec

        parse_spec(tomllib.loads(text))  # the file we write is a valid spec
        Path(args.out).write_text(text)
        console.print(f"wrote {args.out} (check it: python -m bench sweep {args.out} --dry-run)",
                      highlight=False, markup=False)
    return 0


GENMODEL_HELP = {  # ModelShape fields, in llama.cpp's hparam names
    "arch": "architecture: llama (dense or Mixtral-style MoE) or deepseek2 (MLA, shared experts)",
    "n_embd": "hidden size (multiple of 32)", "n_layer": "transformer blocks",
    "n_ff": "feed-forward size (multiple of 32)", "n_head": "attention heads",
    "n_head_kv": "key/value heads (GQA; divides n_head)", "n_vocab": "vocabulary size",
    "n_expert": "routed experts per MoE layer (0: dense)", "n_expert_used": "experts used per token",
    "dtype": "weight type: f32, f16 or q8_0", "n_ctx_train": "training context length written in the GGUF",
    "seed": "random seed of the weights (same seed, same file)",
    "n_layer_dense_lead": "deepseek2: dense blocks before the MoE ones", "n_lora_q": "deepseek2: q LoRA rank",
    "n_lora_kv": "deepseek2: kv LoRA rank", "n_rot": "deepseek2: RoPE dimensions per head",
    "n_embd_head_qk_nope": "deepseek2: q/k head size without RoPE",
    "n_embd_head_v_mla": "deepseek2: v head size",
    "n_ff_exp": "deepseek2: feed-forward size of one expert", "n_expert_shared": "deepseek2: shared experts",
    "n_expert_groups": "deepseek2: expert groups (0: R1's 8 when n_expert allows)",
    "n_group_used": "deepseek2: groups used per token (0: half)",
    "quantize": "quantize with llama-quantize to this type, e.g. Q4_K_M",
    "split_max_size": "split with llama-gguf-split into shards of at most this size, e.g. 2G",
}
EPILOG = """examples:
  python -m bench sweep                          the zero-config demo (tiny generated model, ~1 min)
  python -m bench sweep SPEC.toml --dry-run      every planned launch, the estimated time, warnings
  python -m bench sweep SPEC.toml --resume       continue the newest unfinished sweep of SPEC
  python -m bench report reports/ID --target-mem-gb 384   judge for the 384 GB box
  python -m bench plan MODEL.gguf --host @local  GPU/CPU placement and a spec to sweep it
docs: docs/bench.md (sweeps, specs, results.csv), docs/report.md (the page)"""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"protocol-omni bench {version('protocol-omni')}"
    except PackageNotFoundError:
        return "protocol-omni bench (not installed: run from a checkout)"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=_version(), help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    s = sub.add_parser("sweep", help="run a sweep spec (no spec: the zero-config demo)",
                       description="Launch the server once per configuration of SPEC, drive each workload "
                       "cell, sample memory, write reports/<id>/results.csv and the HTML report.")
    s.add_argument("spec", nargs="?", help="sweep spec TOML (default: the embedded demo)")
    s.add_argument("--dry-run", action="store_true",
                   help="print every planned launch, the estimated time and what this host lacks; "
                   "start nothing")
    s.add_argument("--out", help="sweep directory (default reports/<name>-<time>); an existing one resumes")
    s.add_argument("--resume", nargs="?", const="latest", metavar="SWEEP_DIR",
                   help="resume SWEEP_DIR, or the newest unfinished sweep of this spec")
    s.add_argument("--retry-failed", action="store_true", help="when resuming, rerun cells that failed")
    s.add_argument("--no-report", action="store_true", help="skip the HTML report (render it later with "
                   "`python -m bench report`)")
    # `report ...` is dispatched to bench.report.main before parsing (see main): listed here for --help
    r = sub.add_parser("report", help="render reports/<sweep-id>/index.html (flags: report --help)")
    r.add_argument("sweep_dir", help="the sweep directory (reports/<sweep-id>); see `report --help`")
    g = sub.add_parser("genmodel", help="generate (and cache) a random-weight GGUF: Llama, or "
                       "DeepSeek-R1-shaped (--arch deepseek2), quantized (--quantize Q4_K_M), "
                       "split (--split-max-size 2G)")
    for name, field in ModelShape.model_fields.items():
        kind = str if field.default is None or isinstance(field.default, str) else type(field.default)
        default = "" if field.default is None else f" (default {field.default})"
        g.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None,
                       help=GENMODEL_HELP.get(name, name.replace("_", " ")) + default)
    g.add_argument("--out", help="write here instead of the cache")
    pp = sub.add_parser("plan", help="plan GPU/CPU placement of a GGUF on a host: -ot rules, predicted "
                        "tokens/s, a sweep spec of the plan and its neighbours")
    pp.add_argument("model", help="GGUF model (any shard of a split one)")
    pp.add_argument("--facts", help="`python -m facts collect` JSON of the host")
    pp.add_argument("--host", help="@local: collect this machine's facts now")
    pp.add_argument("--membw", help="`bench membw` JSON: measured host and GPU bandwidth")
    pp.add_argument("--host-gbps", type=float, help="host memory read bandwidth, GB/s")
    pp.add_argument("--gpu-gbps", help="GPU memory bandwidth per GPU, GB/s (comma-separated)")
    pp.add_argument("--ctx", type=int, default=16384, help="context size (KV cache), default 16384")
    pp.add_argument("--ubatch", type=int, default=512, help="-ub, default 512")
    pp.add_argument("--gpus", help="only these GPU indices (comma-separated); default: best subset")
    pp.add_argument("--vram-budget", help="GiB each GPU may use (instead of free - margin)")
    pp.add_argument("--margin-mib", type=int, default=1024,
                    help="left free per GPU (--fit's -fitt), default 1024")
    pp.add_argument("--reserve-mib", type=int, help="compute buffer per GPU (default: estimated)")
    pp.add_argument("--ram-headroom-gib", type=float, default=8.0, help="host RAM kept free, default 8")
    pp.add_argument("--fixed-ms", type=float, default=0.0,
                    help="per-token cost besides memory traffic (calibrated from one launch)")
    pp.add_argument("--calibrate", metavar="RESULTS_CSV",
                    help="set --fixed-ms from the first measured planner row of a sweep's results.csv")
    pp.add_argument("--allow-cpu-only", action="store_true", help="plan even when the facts list no GPU")
    pp.add_argument("--binary", default="llama-server", help="llama-server path for the spec")
    pp.add_argument("--out", help="write a sweep spec TOML of the plan, neighbours, --fit and the template")
    pp.add_argument("--grid", action="append", metavar="ARGS",
                    help="an extra placement for the spec, e.g. '-ngl 99 --n-cpu-moe 8' (repeatable)")
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
        command = {"sweep": cmd_sweep, "genmodel": cmd_genmodel, "plan": cmd_plan}[args.command]
        return command(args, console)
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun with --resume to continue", file=sys.stderr)
        return 130
