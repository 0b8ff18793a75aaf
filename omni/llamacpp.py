"""The llama.cpp-family command line as data: `parse(argv) -> LlamaArgs`, `LlamaArgs.to_argv()`.

Why one model: the bench engines (asked-vs-applied readback), the xllamacpp wrapper (flags to
`CommonParams`), the report (where each tensor lives: `-ngl`, `-ot`, `--n-cpu-moe`, `-ts`), the
placement planner and deploys' llama-server rendering all read or write the same flags. Which flags
exist and how their values are spelled is omni/llama_flags.py (`LLAMA_CPP`, a fork's `Dialect`);
what the tensor-placing flags mean is omni/llama_overrides.py.

The model keeps the command line's order (llama.cpp applies `-ot` and `--n-cpu-moe` overrides in
argv order, first match wins) and every flag it does not know, so `parse(argv).to_argv() == argv`
for any argv without `=`-joined values. Values follow llama.cpp's last-one-wins rule except for
repeatable flags (`-ot`), which accumulate. A malformed value is an `ArgError` with one line naming
the flag and what it accepts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from omni.llama_flags import CUSTOM_CONVERTERS, LLAMA_CPP, ArgError, Dialect, Flag, convert_value
from omni.llama_overrides import ordered_overrides


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
        given = ((it.flag.name, it.value) for it in self.items if it.flag is not None)
        return ordered_overrides(given, self.env_values)

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
        if isinstance(value, str) and (flag.kind != "str" or flag.name in CUSTOM_CONVERTERS):
            raw, value = value, convert_value(flag, value, spelling or flag.spellings[0])
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
            switch = flag.kind == "switch" and raw is None
            value = True if switch else convert_value(flag, raw or "", spelling)
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
            out.env_values[f.name] = convert_value(f, str(text), f.env)
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
