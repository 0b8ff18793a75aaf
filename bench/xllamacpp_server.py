"""`python -m bench.xllamacpp_server <llama-server flags>`: llama.cpp's server from the xllamacpp wheel.

Why a process of our own: the sweep relaunches servers with different flags, env and `numactl`
prefixes and must kill them hard; an in-process server cannot be relaunched that way. This maps the
llama-server flags a sweep uses onto xllamacpp's `CommonParams`; an unknown flag is a one-line
error (exit 2), never silently ignored. Serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

_FA = {"on": 1, "off": 0, "auto": -1, "1": 1, "0": 0, "true": 1, "false": 0}
_EXPS = r"\.ffn_(up|down|gate)_exps"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        sys.stderr.write(f"xllamacpp_server: {message}; use llama-server flag names it maps (see --help)\n")
        sys.exit(2)


def _version() -> str:
    from importlib.metadata import version

    try:
        import xllamacpp

        build = xllamacpp.BUILD_INFO
        return f"xllamacpp {version('xllamacpp')} (llama.cpp build {build['build_number']} {build['commit']})"
    except Exception as err:  # the wheel missing: say so instead of failing --version
        return f"xllamacpp unavailable: {err}"


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m bench.xllamacpp_server", allow_abbrev=False)
    a = p.add_argument
    a("--version", action="version", version=_version())
    a("-m", "--model", required=True)
    a("--host", default="127.0.0.1")
    a("--port", type=int, default=8080)
    a("-c", "--ctx-size", type=int)
    a("-np", "--parallel", type=int)
    a("-t", "--threads", type=int)
    a("-tb", "--threads-batch", type=int)
    a("--threads-http", type=int)
    a("-ngl", "--n-gpu-layers", "--gpu-layers", type=int)
    a("-ts", "--tensor-split")
    a("-sm", "--split-mode", choices=["none", "layer", "row", "tensor"])
    a("-mg", "--main-gpu", type=int)
    a("-ot", "--override-tensor", action="append", default=[])
    a("-ncmoe", "--n-cpu-moe", type=int)
    a("-cmoe", "--cpu-moe", action="store_true")
    a("-fa", "--flash-attn", choices=sorted(_FA))
    a("-b", "--batch-size", type=int)
    a("-ub", "--ubatch-size", type=int)
    a("--numa", choices=["distribute", "isolate", "numactl", "mirror"])
    a("-ctk", "--cache-type-k")
    a("-ctv", "--cache-type-v")
    a("-kvu", "--kv-unified", action="store_true")
    a("-nkvo", "--no-kv-offload", action="store_true")
    a("-cb", "--cont-batching", action="store_true", default=None)
    a("-nocb", "--no-cont-batching", dest="cont_batching", action="store_false")
    a("--no-warmup", action="store_true")
    a("--metrics", action="store_true")
    a("--props", action="store_true")
    a("--no-slots", action="store_true")
    a("--poll", type=int)
    a("--prio", type=int)
    a("-s", "--seed", type=int)
    a("--temp", type=float)
    a("-fit", "--fit", choices=["on", "off"])
    a("-a", "--alias")
    a("-lv", "--verbosity", type=int)
    return p


def params_from_args(ns: argparse.Namespace):  # -> xllamacpp.CommonParams
    import xllamacpp as x

    p = x.CommonParams()
    p.model.path = ns.model
    p.hostnames = [ns.host]
    p.port = ns.port
    p.endpoint_props = True
    p.endpoint_metrics = True
    _set = {
        "ctx_size": "n_ctx", "parallel": "n_parallel", "n_gpu_layers": "n_gpu_layers",
        "main_gpu": "main_gpu", "batch_size": "n_batch", "ubatch_size": "n_ubatch",
        "threads_http": "n_threads_http", "verbosity": "verbosity",
    }
    for arg, attr in _set.items():
        if getattr(ns, arg) is not None:
            setattr(p, attr, getattr(ns, arg))
    if ns.threads is not None:
        p.cpuparams.n_threads = ns.threads
        p.cpuparams_batch.n_threads = ns.threads if ns.threads_batch is None else ns.threads_batch
    elif ns.threads_batch is not None:
        p.cpuparams_batch.n_threads = ns.threads_batch
    for cpu in (p.cpuparams, p.cpuparams_batch):
        if ns.poll is not None:
            cpu.poll = ns.poll
        if ns.prio is not None:
            cpu.priority = x.ggml_sched_priority(ns.prio)
    if ns.tensor_split:
        parts = [float(v) for v in ns.tensor_split.replace("/", ",").split(",")]
        p.tensor_split = parts + [0.0] * (128 - len(parts))
    if ns.split_mode:
        p.split_mode = x.llama_split_mode[f"LLAMA_SPLIT_MODE_{ns.split_mode.upper()}"]
    overrides = list(ns.override_tensor)
    if ns.cpu_moe:
        overrides.append(f"{_EXPS}=CPU")
    if ns.n_cpu_moe:
        overrides += [rf"blk\.{i}{_EXPS}=CPU" for i in range(ns.n_cpu_moe)]
    if overrides:
        p.tensor_buft_overrides = ",".join(overrides)
    if ns.flash_attn:
        p.flash_attn_type = x.llama_flash_attn_type(_FA[ns.flash_attn])
    if ns.numa:
        p.numa = x.ggml_numa_strategy[f"GGML_NUMA_STRATEGY_{ns.numa.upper()}"]
    for arg, attr in (("cache_type_k", "cache_type_k"), ("cache_type_v", "cache_type_v")):
        if getattr(ns, arg):
            setattr(p, attr, x.ggml_type[f"GGML_TYPE_{getattr(ns, arg).upper()}"])
    if ns.kv_unified:
        p.kv_unified = True
    if ns.no_kv_offload:
        p.no_kv_offload = True
    if ns.cont_batching is not None:
        p.cont_batching = ns.cont_batching
    if ns.no_warmup:
        p.warmup = False
    if ns.no_slots:
        p.endpoint_slots = False
    if ns.seed is not None:
        p.sampling.seed = ns.seed
    if ns.temp is not None:
        p.sampling.temp = ns.temp
    if ns.fit:
        p.fit_params = ns.fit == "on"
    if ns.alias:  # a set[str] in CommonParams; llama-server splits the value on commas
        p.model_alias = {a.strip() for a in ns.alias.split(",") if a.strip()}
    return p


def main(argv: list[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    try:
        params = params_from_args(ns)
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
