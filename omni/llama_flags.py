"""The llama.cpp-family flag vocabulary: what a flag is (`Flag`), how its value is spelled, and
mainline llama.cpp's table of them (`LLAMA_CPP`).

Why a table: the bench engines, the xllamacpp wrapper, the report, the placement planner and
deploys all read or write the same flags; each used to carry its own spelling table and they
drifted. The names and spellings follow llama.cpp's `common/arg.cpp` at the pinned source
(llama-cpp-python 0.3.36); a fork such as ik_llama.cpp is a `Dialect` that adds its own flags
(`LLAMA_CPP.extend(...)`, omni/ik_llama.py) instead of copying this one. A malformed value is an
`ArgError` with one line naming the flag and what it accepts. The command line built from these
flags (`parse`, `LlamaArgs`) is omni/llamacpp.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["int", "float", "str", "choice", "switch", "floats", "rules"]
ALL_LAYERS = 1 << 30  # -ngl all / auto / -1: every layer (a number larger than any model's layers)
TRUTHY = ("on", "enabled", "true", "1")
FALSEY = ("off", "disabled", "false", "0")


class ArgError(ValueError):
    """A flag with a value llama.cpp would reject; the message is one line naming the flag."""


@dataclass(frozen=True)
class Flag:
    """One option: its field name, spellings (the first is written by `to_argv` for new values),
    the value kind, accepted choices, the `LLAMA_ARG_*` variable that sets it when the flag is
    absent, and whether repeats accumulate (`-ot`) instead of the last one winning."""

    name: str
    spellings: tuple[str, ...]
    kind: Kind = "str"
    choices: tuple[str, ...] = ()
    env: str = ""
    repeat: bool = False
    sets: tuple[str, Any] | None = None  # a switch setting another flag (-nocb: cont_batching False)
    help: str = ""

    def convert(self, raw: str, spelling: str | None = None) -> Any:
        """The typed value of `raw`; ArgError (one line) when llama.cpp would reject it."""
        flag = spelling or self.spellings[0]
        text = raw.strip()
        try:
            if self.kind == "int":
                return int(text)
            if self.kind == "float":
                return float(text)
            if self.kind == "floats":
                parts = [p for p in text.replace("/", ",").split(",") if p.strip()]
                if not parts:
                    raise ValueError(text)
                return tuple(float(p) for p in parts)
        except ValueError:
            what = {"int": "a whole number", "float": "a number",
                    "floats": "numbers separated by commas (e.g. 3,1)"}[self.kind]
            raise ArgError(f"{flag} {raw!r}: not {what}; give {what}"
                           + (f" ({self.help})" if self.help else "")) from None
        if self.kind == "choice":
            low = text.lower()
            if low not in self.choices:
                raise ArgError(f"{flag} {raw!r}: not one of {', '.join(self.choices)}; use one of them")
            return low
        if self.kind == "rules":
            return parse_overrides(raw, flag)
        if self.kind == "switch":
            low = text.lower()
            if low in TRUTHY or low == "":
                return True
            if low in FALSEY:
                return False
            raise ArgError(f"{flag} {raw!r}: a switch takes no value (or on/off)")
        return raw

    def render(self, value: Any) -> str:
        """The argv text of a typed value (inverse of `convert`)."""
        if self.kind == "floats":
            return ",".join(f"{v:g}" for v in value)
        if self.kind == "rules":
            return ",".join(f"{pattern}={device}" for pattern, device in value)
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)


def parse_overrides(text: str, flag: str = "-ot") -> tuple[tuple[str, str], ...]:
    """`PATTERN=BUFFER[,PATTERN=BUFFER...]` → ((regex, buffer type), ...), as llama.cpp splits it.

    The `rules` kind's grammar (one `-ot` value); how the rules apply is omni/llama_overrides.py."""
    rules = []
    for item in text.split(","):
        pattern, eq, device = item.rpartition("=")
        if not eq or not pattern or not device.strip():
            raise ArgError(f"{flag} {item!r}: not PATTERN=BUFFER; write e.g. {flag} exps=CPU")
        rules.append((pattern, device.strip()))
    return tuple(rules)


def _ngl(raw: str, spelling: str | None = None) -> int | str:
    """-ngl: a number, 'auto' or 'all' (llama.cpp); -1 reads as all, as older builds meant it."""
    low = raw.strip().lower()
    if low in ("auto", "all"):
        return low
    try:
        return int(low)
    except ValueError:
        raise ArgError(f"{spelling or '-ngl'} {raw!r}: not a whole number, 'auto' or 'all'; "
                       f"give e.g. -ngl 99") from None


_NGL = Flag("n_gpu_layers", ("-ngl", "--gpu-layers", "--n-gpu-layers"), "str", env="LLAMA_ARG_N_GPU_LAYERS")
# flags whose text a kind cannot say (-ngl: a number or a word); their converter replaces the kind's
CUSTOM_CONVERTERS: dict[str, Callable[[str, str | None], Any]] = {"n_gpu_layers": _ngl}


def convert_value(flag: Flag, raw: str, spelling: str) -> Any:
    """The typed value of `raw` for `flag` (its custom converter, else its kind's); ArgError."""
    custom = CUSTOM_CONVERTERS.get(flag.name)
    return custom(raw, spelling) if custom else flag.convert(raw, spelling)


def F(name: str, *spellings: str, kind: Kind = "str", choices: Iterable[str] = (), env: str = "",
      repeat: bool = False, sets: tuple[str, Any] | None = None, help: str = "") -> Flag:
    """Shorthand for the flag tables below (and for a dialect's additions)."""
    return Flag(name, spellings, kind, tuple(choices), env, repeat, sets, help)


_FA = ("on", "off", "auto", *TRUTHY[1:], *FALSEY[1:])

# The flags the bench, the report, the planner and deploys reason about, plus the server switches
# the xllamacpp wrapper maps; spellings and env names as in the pinned common/arg.cpp.
LLAMA_CPP_FLAGS: tuple[Flag, ...] = (
    F("model", "-m", "--model", env="LLAMA_ARG_MODEL"),
    F("alias", "-a", "--alias"),
    F("host", "--host", env="LLAMA_ARG_HOST"),
    F("port", "--port", kind="int", env="LLAMA_ARG_PORT"),
    _NGL,
    F("override_tensor", "-ot", "--override-tensor", kind="rules", repeat=True,
      env="LLAMA_ARG_OVERRIDE_TENSOR"),
    F("cpu_moe", "-cmoe", "--cpu-moe", kind="switch", env="LLAMA_ARG_CPU_MOE"),
    F("n_cpu_moe", "-ncmoe", "--n-cpu-moe", kind="int", env="LLAMA_ARG_N_CPU_MOE"),
    F("tensor_split", "-ts", "--tensor-split", kind="floats", env="LLAMA_ARG_TENSOR_SPLIT"),
    F("split_mode", "-sm", "--split-mode", kind="choice", choices=("none", "layer", "row", "tensor"),
      env="LLAMA_ARG_SPLIT_MODE"),
    F("main_gpu", "-mg", "--main-gpu", kind="int", env="LLAMA_ARG_MAIN_GPU"),
    F("device", "-dev", "--device", env="LLAMA_ARG_DEVICE"),
    F("fit", "-fit", "--fit", kind="choice", choices=("on", "off"), env="LLAMA_ARG_FIT"),
    F("fit_target", "-fitt", "--fit-target"),
    F("fit_ctx", "-fitc", "--fit-ctx", kind="int"),
    F("threads", "-t", "--threads", kind="int", env="LLAMA_ARG_THREADS"),
    F("threads_batch", "-tb", "--threads-batch", kind="int", env="LLAMA_ARG_THREADS_BATCH"),
    F("threads_http", "--threads-http", kind="int", env="LLAMA_ARG_THREADS_HTTP"),
    F("ctx_size", "-c", "--ctx-size", kind="int", env="LLAMA_ARG_CTX_SIZE"),
    F("parallel", "-np", "--parallel", kind="int", env="LLAMA_ARG_N_PARALLEL"),
    F("batch_size", "-b", "--batch-size", kind="int", env="LLAMA_ARG_BATCH"),
    F("ubatch_size", "-ub", "--ubatch-size", kind="int", env="LLAMA_ARG_UBATCH"),
    F("flash_attn", "-fa", "--flash-attn", kind="choice", choices=_FA, env="LLAMA_ARG_FLASH_ATTN"),
    F("kv_unified", "-kvu", "--kv-unified", kind="switch", env="LLAMA_ARG_KV_UNIFIED"),
    F("no_kv_unified", "-no-kvu", "--no-kv-unified", kind="switch", sets=("kv_unified", False)),
    F("cache_type_k", "-ctk", "--cache-type-k", env="LLAMA_ARG_CACHE_TYPE_K"),
    F("cache_type_v", "-ctv", "--cache-type-v", env="LLAMA_ARG_CACHE_TYPE_V"),
    F("no_kv_offload", "-nkvo", "--no-kv-offload", kind="switch", env="LLAMA_ARG_NO_KV_OFFLOAD"),
    F("cont_batching", "-cb", "--cont-batching", kind="switch", env="LLAMA_ARG_CONT_BATCHING"),
    F("no_cont_batching", "-nocb", "--no-cont-batching", kind="switch", sets=("cont_batching", False)),
    F("numa", "--numa", kind="choice", choices=("distribute", "isolate", "numactl", "mirror"),
      env="LLAMA_ARG_NUMA"),
    F("mlock", "--mlock", kind="switch", env="LLAMA_ARG_MLOCK"),
    F("no_mmap", "--no-mmap", kind="switch", env="LLAMA_ARG_NO_MMAP"),
    # CPU weights into the CPU backend's repacked (extra) buffer types, on by default; --no-host
    # lets them use those even where a GPU's host buffer would be taken first
    F("repack", "--repack", kind="switch", env="LLAMA_ARG_REPACK"),
    F("no_repack", "-nr", "--no-repack", kind="switch", sets=("repack", False)),
    F("no_host", "--no-host", kind="switch", env="LLAMA_ARG_NO_HOST"),
    F("load_mode", "-lm", "--load-mode", kind="choice",
      choices=("auto", "none", "mmap", "mlock", "mmap+mlock", "dio"), env="LLAMA_ARG_LOAD_MODE"),
    F("no_warmup", "--no-warmup", kind="switch"),
    F("metrics", "--metrics", kind="switch", env="LLAMA_ARG_ENDPOINT_METRICS"),
    F("props", "--props", kind="switch", env="LLAMA_ARG_ENDPOINT_PROPS"),
    F("no_slots", "--no-slots", kind="switch", env="LLAMA_ARG_NO_ENDPOINT_SLOTS"),
    F("poll", "--poll", kind="int"),
    F("prio", "--prio", kind="int"),
    F("seed", "-s", "--seed", kind="int"),
    F("temp", "--temp", kind="float"),
    F("verbosity", "-lv", "--verbosity", "--log-verbosity", kind="int", env="LLAMA_LOG_VERBOSITY"),
)


@dataclass(frozen=True)
class Dialect:
    """The flags one engine understands. A fork adds its own with `extend` (no copying):
    `IK_LLAMA = LLAMA_CPP.extend(F("fused_moe", "-fmoe", "--fused-moe", kind="switch"), ...)`."""

    name: str
    flags: tuple[Flag, ...]

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for f in self.flags:
            for s in f.spellings:
                if s in seen and seen[s] != f.name:
                    raise ValueError(f"{self.name}: {s} is spelled by both {seen[s]} and {f.name}")
                seen[s] = f.name

    def extend(self, *flags: Flag, name: str | None = None) -> Dialect:
        """This dialect plus `flags`; a flag whose name exists replaces the old one."""
        new = {f.name for f in flags}
        return Dialect(name or self.name, tuple(f for f in self.flags if f.name not in new) + flags)

    def by_spelling(self) -> dict[str, Flag]:
        return {s: f for f in self.flags for s in f.spellings}

    def by_name(self) -> dict[str, Flag]:
        return {f.name: f for f in self.flags}

    def flag(self, name: str) -> Flag:
        try:
            return self.by_name()[name]
        except KeyError:
            raise KeyError(f"{self.name} has no flag named {name!r}") from None


LLAMA_CPP = Dialect("llama.cpp", LLAMA_CPP_FLAGS)
