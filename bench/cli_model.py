"""`python -m bench genmodel` and `python -m bench plan`: the commands about a model file rather than
a sweep (generate a random-weight GGUF; plan its GPU/CPU placement on a host).

Why apart from bench/cli.py: cli.py only builds the argument parser and dispatches. User errors are
SpecError (one line, exit 2 in `bench.cli.main`).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console

from bench.genmodel.cache import ensure_model
from bench.genmodel.shape import ModelShape
from bench.genmodel.write import GenModelError
from bench.spec import SpecError
from omni.errors import one_line


def cmd_genmodel(args: argparse.Namespace, console: Console) -> int:
    fields = {k: v for k, v in vars(args).items() if k in ModelShape.model_fields and v is not None}
    try:
        shape = ModelShape(**fields)
    except ValidationError as err:
        raise SpecError(f"genmodel {one_line(err, where='shape')}") from None
    from omni.gguf_files import shard_paths

    try:
        if args.out:
            from bench.genmodel.write import write_model

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
    from bench.planner import GIB, PlanError
    from bench.planner.host import NO_AMX_REASON, cpu_only_args, load_host
    from bench.planner.model import model_table
    from bench.planner.placement import Settings
    from bench.planner.render import describe, placement_argv, spec_text
    from bench.planner.roofline import calibrate
    from bench.planner.search import neighbours, plan

    try:
        mt = model_table(args.model)
        if args.host not in (None, "@local"):
            raise PlanError(f"--host {args.host}: only @local is read directly; for another host run "
                            "`python -m facts collect --host NAME > FACTS.json` and give --facts")
        host = load_host(args.facts, args.host == "@local", args.membw, args.host_gbps,
                         _numbers(args.gpu_gbps, "--gpu-gbps"))
        gpus = _numbers(args.gpus, "--gpus", int) if args.gpus is not None else None
        settings = Settings(ctx=args.ctx, ubatch=args.ubatch, margin_mib=args.margin_mib,
                            reserve_mib=args.reserve_mib,
                            vram_budget=_numbers(args.vram_budget, "--vram-budget"),
                            ram_headroom_gib=args.ram_headroom_gib, fixed_ms=args.fixed_ms, gpus=gpus)
        if args.ctx <= 0:
            raise PlanError(f"--ctx {args.ctx}: give a positive context size")
        if args.calibrate:
            fixed, how = calibrate(mt, host, settings, args.calibrate)
            settings = Settings(**{**settings.__dict__, "fixed_ms": fixed})
            console.print(f"fixed cost {how}", highlight=False, markup=False)
        if not host.gpus and args.facts and not args.allow_cpu_only:
            raise PlanError(f"--facts {args.facts}: no GPUs in these facts (nvidia_gpus unavailable or "
                            "empty); collect them on the GPU host, or pass --allow-cpu-only")
        best, options = plan(mt, host, settings)
        near = neighbours(mt, host, settings, best) if best.gpus else []
    except PlanError as err:
        raise SpecError(f"plan: {err}") from None
    m = mt.model
    console.print(f"model {Path(m.path).name}: {m.file_bytes / GIB:.1f} GiB, {m.n_layer} layers, "
                  f"{m.expert_count} experts ({m.expert_used_count} used), routed experts "
                  f"{sum(mt.experts.values()) / GIB:.1f} GiB, "
                  f"KV {mt.kv_per_token_layer * m.n_layer:.0f} B/token", highlight=False, markup=False)
    console.print(f"host: {host.ram_bytes / GIB:.0f} GiB RAM ({host.ram_source}), {host.cores} cores, "
                  f"{host.numa_nodes} NUMA nodes, {len(host.gpus)} GPUs", highlight=False)
    for p in [best, *near, *[o for o in options if o is not best]]:
        pre = f"prefill ~{p.prefill_tps:.0f}" if p.prefill_tps else "prefill n/a"
        console.print(f"[bold]{p.label}[/bold]: decode {p.decode_tps:.2f} tokens/s predicted, {pre} "
                      f"(ub {settings.ubatch}, PCIe-bound)", highlight=False)
    console.print("plan:", highlight=False)
    for line in describe(mt, host, best):
        console.print(line, highlight=False, markup=False)
    all_gpus = [g.index for g in host.gpus]
    argv = placement_argv(best, mt.n_layer, all_gpus)
    threads = f"--threads {host.cores}" + (" --numa distribute" if host.numa_nodes > 1 else "")
    threads += "".join(f" {a}" for a in cpu_only_args(host))
    console.print(f"  flags: {shlex.join(argv)} {threads}", highlight=False, soft_wrap=True)
    for note in best.notes + ([NO_AMX_REASON] if cpu_only_args(host) else []):
        console.print(f"  note: {note}", highlight=False)
    if args.out:
        grid = [(g, shlex.split(g)) for g in args.grid or []]
        text = spec_text(args.model, mt, host, settings, best, near, options, binary=args.binary, grid=grid)
        import tomllib

        from bench.spec import parse_spec
        from omni.files import atomic_write_text

        parse_spec(tomllib.loads(text))  # the file we write is a valid spec
        try:
            atomic_write_text(args.out, text)
        except OSError as err:
            raise SpecError(f"plan: --out {args.out}: cannot write the spec ({err.strerror or err}); "
                            "give a file path in a writable directory") from None
        console.print(f"wrote {args.out} (check it: python -m bench sweep {args.out} --dry-run)",
                      highlight=False, markup=False)
    return 0
