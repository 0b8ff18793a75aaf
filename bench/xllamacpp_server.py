"""`python -m bench.xllamacpp_server <llama-server flags>`: llama.cpp's server from the xllamacpp wheel.

Why a process of our own: the sweep relaunches servers with different flags, env and `numactl`
prefixes and must kill them hard; an in-process server cannot be relaunched that way. This maps the
llama-server flags a sweep uses onto xllamacpp's `CommonParams`; an unknown flag is a one-line
error (exit 2), never silently ignored. Serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import signal
import sys
import threading

from omni.llama_flags import FALSEY, TRUTHY, ArgError
from omni.llamacpp import LlamaArgs, parse

_PROG = "python -m bench.xllamacpp_server"
# the flags of omni.llama_flags this wrapper maps onto CommonParams (any other known flag is refused too)
MAPPED = (
    "model", "host", "port", "ctx_size", "parallel", "threads", "threads_batch", "threads_http",
    "n_gpu_layers",
    "tensor_split", "split_mode", "main_gpu", "override_tensor", "n_cpu_moe", "cpu_moe", "flash_attn",
    "batch_size", "ubatch_size", "numa", "cache_type_k", "cache_type_v", "kv_unified", "no_kv_unified",
    "no_kv_offload", "cont_batching", "no_cont_batching", "no_warmup", "metrics", "props", "no_slots", "poll",
    "prio", "seed", "temp", "fit", "alias", "verbosity",
)


class UsageError(ValueError):
    """A command line this wrapper cannot honour; one line, exit 2."""


def _version() -> str:
    from importlib.metadata import version

    try:
        import xllamacpp

        build = xllamacpp.BUILD_INFO
        return f"xllamacpp {version('xllamacpp')} (llama.cpp build {build['build_number']} {build['commit']})"
    except Exception as err:  # the wheel missing: say so instead of failing --version
        return f"xllamacpp unavailable: {err}"


def _usage() -> str:
    from omni.llama_flags import LLAMA_CPP

    flags = LLAMA_CPP.by_name()
    return f"usage: {_PROG} -m MODEL [llama-server flags]\nflags it maps:\n" + "\n".join(
        "  " + ", ".join(flags[name].spellings) for name in MAPPED)


def parse_args(argv: list[str]) -> LlamaArgs:
    """The llama-server command line, refusing what the wrapper would silently ignore."""
    try:
        args = parse(argv)
    except ArgError as err:
        raise UsageError(str(err)) from None
    if args.unknown:
        raise UsageError(f"unknown argument {args.unknown[0]!r}: use llama-server flag names it maps "
                         f"(see --help)")
    unmapped = [it.token for it in args if it.flag is not None and it.flag.name not in MAPPED]
    if unmapped:
        raise UsageError(f"{unmapped[0]} is a llama-server flag this wrapper does not map; "
                         f"use engine = \"llama-server\" for it")
    if not args.model:
        raise UsageError("-m/--model is required: give the path of a GGUF file")
    return args


def params_from_args(a: LlamaArgs):  # -> xllamacpp.CommonParams
    import xllamacpp as x

    p = x.CommonParams()
    p.model.path = a.model
    p.hostnames = [a.host or "127.0.0.1"]
    p.port = a.port if a.port is not None else 8080
    p.endpoint_props = True
    p.endpoint_metrics = True
    _set = {
        "ctx_size": "n_ctx", "parallel": "n_parallel", "main_gpu": "main_gpu", "batch_size": "n_batch",
        "ubatch_size": "n_ubatch", "threads_http": "n_threads_http", "verbosity": "verbosity",
    }
    for arg, attr in _set.items():
        if a.get(arg) is not None:
            setattr(p, attr, a.get(arg))
    ngl = a.n_gpu_layers
    if ngl is not None:  # CommonParams takes a number: llama.cpp's -1 auto, -2 all
        p.n_gpu_layers = {"auto": -1, "all": -2}.get(ngl, ngl) if isinstance(ngl, str) else ngl
    if a.threads is not None:
        p.cpuparams.n_threads = a.threads
        p.cpuparams_batch.n_threads = a.threads if a.threads_batch is None else a.threads_batch
    elif a.threads_batch is not None:
        p.cpuparams_batch.n_threads = a.threads_batch
    for cpu in (p.cpuparams, p.cpuparams_batch):
        if a.get("poll") is not None:
            cpu.poll = a.get("poll")
        if a.get("prio") is not None:
            cpu.priority = x.ggml_sched_priority(a.get("prio"))
    if a.tensor_split:
        parts = list(a.tensor_split)
        p.tensor_split = parts + [0.0] * (128 - len(parts))
    if a.split_mode:
        p.split_mode = x.llama_split_mode[f"LLAMA_SPLIT_MODE_{a.split_mode.upper()}"]
    if a.overrides:
        p.tensor_buft_overrides = ",".join(f"{pattern}={device}" for pattern, device in a.overrides)
    if a.flash_attn:
        fa = 1 if a.flash_attn in TRUTHY else 0 if a.flash_attn in FALSEY else -1
        p.flash_attn_type = x.llama_flash_attn_type(fa)
    if a.numa:
        p.numa = x.ggml_numa_strategy[f"GGML_NUMA_STRATEGY_{a.numa.upper()}"]
    for attr in ("cache_type_k", "cache_type_v"):
        if a.get(attr):
            setattr(p, attr, x.ggml_type[f"GGML_TYPE_{a.get(attr).upper()}"])
    if a.kv_unified is not None:
        p.kv_unified = a.kv_unified
    if a.get("no_kv_offload"):
        p.no_kv_offload = True
    if a.get("cont_batching") is not None:
        p.cont_batching = a.get("cont_batching")
    if a.get("no_warmup"):
        p.warmup = False
    if a.get("no_slots"):
        p.endpoint_slots = False
    if a.get("seed") is not None:
        p.sampling.seed = a.get("seed")
    if a.get("temp") is not None:
        p.sampling.temp = a.get("temp")
    if a.fit:
        p.fit_params = a.fit == "on"
    if a.get("alias"):  # a set[str] in CommonParams; llama-server splits the value on commas
        p.model_alias = {s.strip() for s in a.get("alias").split(",") if s.strip()}
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--version" in argv:
        print(_version())
        return 0
    if "-h" in argv or "--help" in argv:
        print(_usage())
        return 0
    try:
        args = parse_args(argv)
    except UsageError as err:
        sys.stderr.write(f"xllamacpp_server: {err}\n")
        return 2
    try:
        params = params_from_args(args)
    except (KeyError, ValueError) as err:
        sys.stderr.write(f"xllamacpp_server: bad value {err}; use a value llama-server accepts\n")
        return 2
    import xllamacpp as x

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server = x.Server(params)
    except Exception as err:  # the wheel raises RuntimeError/ValueError for a model it cannot load
        sys.stderr.write(f"xllamacpp_server: server failed to start: {err}\n")
        return 1
    sys.stderr.write(f"xllamacpp_server: listening on {server.listening_address}\n")
    sys.stderr.flush()
    stop.wait()
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main())
