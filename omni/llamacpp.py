"""The llama.cpp-family command line as data: `parse(argv) -> LlamaArgs`, `LlamaArgs.to_argv()`.

Why one model: the bench engines (asked-vs-applied readback), the xllamacpp wrapper (flags to
`CommonParams`), the report (where each tensor lives: `-ngl`, `-ot`, `--n-cpu-moe`, `-ts`), the
placement planner and deploys' llama-server rendering all read or write the same flags; each
used to carry its own spelling table and they drifted. The names and spellings follow llama.cpp's
`common/arg.cpp` at the pinned source (llama-cpp-python 0.3.36); a fork such as ik_llama.cpp is a
`Dialect` that adds its own flags (`LLAMA_CPP.extend(...)`) instead of copying this one.

The model keeps the command line's order (llama.cpp applies `-ot` and `--n-cpu-moe` overrides in
argv order, first match wins) and every flag it does not know, so `parse(argv).to_argv() == argv`
for any argv without `=`-joined values. Values follow llama.cpp's last-one-wins rule except for
repeatable flags (`-ot`), which accumulate. A malformed value is an `ArgError` with one line naming
the flag and what it accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Kind = Literal["int", "float", "str", "choice", "switch", "floats", "rules"]
ALL_LAYERS = 1 << 30  # -ngl all / auto / -1: every layer (a number larger than any model's layers)
# llama.cpp's LLM_FFN_EXPS_REGEX: the routed-expert tensors `--cpu-moe` / `--n-cpu-moe` keep on the CPU
EXPS_REGEX = r"\.ffn_(up|down|gate|gate_up)_(ch|)exps"
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
    """`PATTERN=BUFFER[,PATTERN=BUFFER...]` → ((regex, buffer type), ...), as llama.cpp splits it."""
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
_CUSTOM: dict[str, Callable[[str, str | None], Any]] = {"n_gpu_layers": _ngl}


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


@dataclass(frozen=True)
class Item:
    """One command-line entry: a known flag (`flag` set, `value` typed) or an unknown token."""

    token: str  # the spelling as written (or the raw unknown token)
    flag: Flag | None = None
    value: Any = None
    raw: str | None = None  # the value text as written; None for a switch given bare
    joined: bool = False  # written as --flag=value


@dataclass
class LlamaArgs:
    """A parsed llama.cpp-family command line: ordered items, typed access by field name.

    `args.n_gpu_layers`, `args.threads`, ... give the effective value (the last one given, else
    the `env` fallback, else None); `args.values("override_tensor")` every value of a repeatable
    flag; `args.unknown` the tokens no flag of the dialect claims (kept, in order, by `to_argv`).
    """

    items: list[Item] = field(default_factory=list)
    dialect: Dialect = LLAMA_CPP
    env_values: dict[str, Any] = field(default_factory=dict)  # field name → value from LLAMA_ARG_*
    problems: list[str] = field(default_factory=list)  # lenient parse: the one-line errors it skipped

    # -- reading ----------------------------------------------------------------------------
    def given(self, name: str) -> list[Item]:
        return [it for it in self.items if it.flag is not None and it.flag.name == name]

    def values(self, name: str) -> list[Any]:
        """Every value given for `name`, in argv order (env fallback when none is given)."""
        vals = [it.value for it in self.given(name)]
        if not vals and name in self.env_values:
            vals = [self.env_values[name]]
        return vals

    def get(self, name: str, default: Any = None) -> Any:
        """The effective value of `name` (llama.cpp's last-one-wins; switches that `sets` it count)."""
        self.dialect.flag(name)  # a misspelt name is a programming error, not "unset"
        found: Any = default
        hit = False
        for it in self.items:
            if it.flag is None:
                continue
            if it.flag.name == name:
                found, hit = it.value, True
            elif it.flag.sets and it.flag.sets[0] == name and it.value:
                found, hit = it.flag.sets[1], True
        if not hit and name in self.env_values:
            return self.env_values[name]
        return found

    def has(self, name: str) -> bool:
        return bool(self.given(name)) or name in self.env_values

    # -- the flags that matter, typed (a dialect's own flags read through `get` or attributes) --
    @property
    def model(self) -> str | None:
        return self.get("model")

    @property
    def host(self) -> str | None:
        return self.get("host")

    @property
    def port(self) -> int | None:
        return self.get("port")

    @property
    def n_gpu_layers(self) -> int | str | None:
        """A number, 'auto' or 'all' (None: not given, llama.cpp's default applies)."""
        return self.get("n_gpu_layers")

    @property
    def override_tensor(self) -> list[tuple[str, str]]:
        """Every -ot rule (regex, buffer type) in argv order."""
        return [rule for value in self.values("override_tensor") for rule in value]

    @property
    def cpu_moe(self) -> bool:
        return bool(self.get("cpu_moe"))

    @property
    def n_cpu_moe(self) -> int | None:
        return self.get("n_cpu_moe")

    @property
    def tensor_split(self) -> tuple[float, ...]:
        return self.get("tensor_split") or ()

    @property
    def split_mode(self) -> str | None:
        return self.get("split_mode")

    @property
    def main_gpu(self) -> int | None:
        return self.get("main_gpu")

    @property
    def threads(self) -> int | None:
        return self.get("threads")

    @property
    def threads_batch(self) -> int | None:
        return self.get("threads_batch")

    @property
    def ctx_size(self) -> int | None:
        return self.get("ctx_size")

    @property
    def parallel(self) -> int | None:
        return self.get("parallel")

    @property
    def batch_size(self) -> int | None:
        return self.get("batch_size")

    @property
    def ubatch_size(self) -> int | None:
        return self.get("ubatch_size")

    @property
    def flash_attn(self) -> str | None:
        return self.get("flash_attn")

    @property
    def fit(self) -> str | None:
        return self.get("fit")

    @property
    def kv_unified(self) -> bool | None:
        return self.get("kv_unified")

    @property
    def cache_type_k(self) -> str | None:
        return self.get("cache_type_k")

    @property
    def cache_type_v(self) -> str | None:
        return self.get("cache_type_v")

    @property
    def numa(self) -> str | None:
        return self.get("numa")

    @property
    def mlock(self) -> bool:
        return bool(self.get("mlock"))

    @property
    def no_mmap(self) -> bool:
        return bool(self.get("no_mmap"))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("items", "dialect", "env_values", "problems"):
            raise AttributeError(name)
        try:
            return self.get(name)
        except KeyError as err:
            raise AttributeError(str(err)) from None

    @property
    def unknown(self) -> list[str]:
        return [it.token for it in self.items if it.flag is None]

    @property
    def overrides(self) -> list[tuple[str, str]]:
        """Tensor buffer overrides in the order llama.cpp applies them (-ot, --cpu-moe, --n-cpu-moe
        interleaved as given; the env forms after them); the first matching pattern wins."""
        rules: list[tuple[str, str]] = []
        seen: set[str] = set()
        for it in self.items:
            if it.flag is None:
                continue
            seen.add(it.flag.name)
            rules += _overrides_of(it.flag.name, it.value)
        for name in ("override_tensor", "cpu_moe", "n_cpu_moe"):
            if name not in seen and name in self.env_values:
                rules += _overrides_of(name, self.env_values[name])
        return rules

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    # -- writing ----------------------------------------------------------------------------
    def set(self, name: str, value: Any, spelling: str | None = None) -> LlamaArgs:
        """Give `name` the value `value` (typed or text): replaces its earlier occurrences in
        place (appends when absent, or adds one more for a repeatable flag); None removes it.
        Text is checked (ArgError naming the flag) and written as given; `spelling` picks one of
        the flag's spellings (default: the one already used, else the first)."""
        flag = self.dialect.flag(name)
        if spelling is not None and spelling not in flag.spellings:
            raise KeyError(f"{spelling} is not a spelling of {name} ({', '.join(flag.spellings)})")
        raw: str | None = None
        if isinstance(value, str) and (flag.kind != "str" or flag.name in _CUSTOM):
            raw, value = value, _convert(flag, value, spelling or flag.spellings[0])
        if flag.kind == "switch" and value is False:
            value = None
        old = self.given(name)
        if value is None:
            self.items = [it for it in self.items if it not in old]
            return self
        token = spelling or (old[0].token if old else flag.spellings[0])
        new = Item(token, flag, value, None if flag.kind == "switch" else raw or flag.render(value))
        if flag.repeat or not old:
            self.items.append(new)
        else:
            at = self.items.index(old[0])
            self.items = [it for it in self.items if it not in old]
            self.items.insert(at, new)
        return self

    def add_raw(self, *tokens: str) -> LlamaArgs:
        """Append tokens verbatim (parsed: known flags become typed, the rest stay unknown)."""
        self.items += parse(list(tokens), self.dialect).items
        return self

    def to_argv(self) -> list[str]:
        out: list[str] = []
        for it in self.items:
            if it.flag is None or (it.flag.kind == "switch" and it.raw is None):
                out.append(it.token)
            elif it.joined:
                out.append(f"{it.token}={it.raw}")
            else:
                out += [it.token, it.raw if it.raw is not None else it.flag.render(it.value)]
        return out

    def copy(self) -> LlamaArgs:
        return replace(self, items=list(self.items), env_values=dict(self.env_values),
                       problems=list(self.problems))


def _overrides_of(name: str, value: Any) -> list[tuple[str, str]]:
    if name == "override_tensor":
        return list(value)
    if name == "cpu_moe" and value:
        return [(EXPS_REGEX, "CPU")]
    if name == "n_cpu_moe" and value:
        return [(rf"blk\.{i}{EXPS_REGEX}", "CPU") for i in range(int(value))]
    return []


def _convert(flag: Flag, raw: str, spelling: str) -> Any:
    custom = _CUSTOM.get(flag.name)
    return custom(raw, spelling) if custom else flag.convert(raw, spelling)


def parse(argv: Sequence[str], dialect: Dialect = LLAMA_CPP, env: Mapping[str, str] | None = None,
          lenient: bool = False) -> LlamaArgs:
    """The command line `argv` (no program name needed; one is kept as an unknown token).

    `env`: the launch environment; a flag absent from argv takes its `LLAMA_ARG_*` value, as
    llama.cpp does. `lenient`: a malformed value is recorded in `.problems` and kept as unknown
    tokens instead of raising (for reading argv that already ran, e.g. in the report).
    """
    spell = dialect.by_spelling()
    out = LlamaArgs(dialect=dialect)
    i = 0
    argv = [str(a) for a in argv]
    while i < len(argv):
        tok = argv[i]
        name, eq, inline = tok.partition("=")
        flag = spell.get(tok) or (spell.get(name) if eq and tok.startswith("-") else None)
        if flag is None:
            out.items.append(Item(tok))
            i += 1
            continue
        spelling = tok if tok in spell else name
        joined = spelling != tok
        if flag.kind == "switch":
            raw = inline if joined else None
            consumed = 1
        elif joined:
            raw, consumed = inline, 1
        elif i + 1 < len(argv):
            raw, consumed = argv[i + 1], 2
        else:
            problem = f"{spelling} needs a value; give it after the flag"
            if not lenient:
                raise ArgError(problem)
            out.problems.append(problem)
            out.items.append(Item(tok))
            i += 1
            continue
        try:
            value = True if flag.kind == "switch" and raw is None else _convert(flag, raw or "", spelling)
        except ArgError as err:
            if not lenient:
                raise
            out.problems.append(str(err))
            out.items += [Item(t) for t in argv[i:i + consumed]]
            i += consumed
            continue
        out.items.append(Item(spelling, flag, value, raw, joined))
        i += consumed
    for f in dialect.flags:
        text = (env or {}).get(f.env) if f.env else None
        if text in (None, "") or out.given(f.name):
            continue
        try:
            out.env_values[f.name] = _convert(f, str(text), f.env)
        except ArgError as err:
            if not lenient:
                raise
            out.problems.append(str(err))
    return out


def build(dialect: Dialect = LLAMA_CPP, **values: Any) -> LlamaArgs:
    """A command line from typed values in the given order: `build(model="m.gguf", threads=8)`."""
    args = LlamaArgs(dialect=dialect)
    for name, value in values.items():
        if dialect.flag(name).repeat and isinstance(value, list):
            for v in value:
                args.set(name, v)
        else:
            args.set(name, value)
    return args


def decode_rate(timings: Mapping[str, Any]) -> float | None:
    """A llama.cpp-family server's decode tokens/s from its `timings`: (predicted_n - 1) / predicted_ms.

    Why not its `predicted_per_second`: both engines time `predicted_ms` from the first sampled
    token (which comes out of the prompt's last batch) to the last, i.e. over predicted_n - 1
    decode steps, but ik_llama.cpp (and mainline before `server_slot_stats`) divides predicted_n
    by it: n/(n-1) too high (+9 % at 12 tokens, +1.6 % at 64), where the pinned mainline divides
    n - 1. Recomputed, both engines count what a streaming client counts: (tokens - 1) over the
    span from the first token to the last. Falls back to `predicted_per_second` without the two.
    """
    n, ms = timings.get("predicted_n"), timings.get("predicted_ms")
    if isinstance(n, int | float) and isinstance(ms, int | float) and n > 1 and ms > 0:
        return (n - 1) / ms * 1000
    pps = timings.get("predicted_per_second")
    return float(pps) if isinstance(pps, int | float) and pps > 0 else None
