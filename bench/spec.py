"""Sweep spec: a TOML file validated by pydantic, with one-line errors that name the key and the fix.

Why strict (`extra="forbid"` everywhere): a misspelt axis silently sweeping nothing costs a user
hours of 281 GB model launches. Everything is checked before the first launch.
"""

from __future__ import annotations

import re
import shlex
import shutil
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bench.genmodel.shape import ModelShape
from bench.objective import DEFAULT, PRUNING, Objective, parse_objective, spec_objective
from omni.errors import error_location, one_line
from omni.numa import check_numa, parse_numa
from omni.secrets import is_secret_name, redact_text

ENGINES = ("llama-server", "xllamacpp", "ik_llama", "ktransformers", "ktransformers-sglang", "sglang", "vllm")
LLAMA_CPP_ENGINES = ("llama-server", "xllamacpp", "ik_llama")  # they take llama.cpp's --numa flag
WORKLOAD_AXES = ("input_tokens", "output_tokens", "concurrency")
AxisValue = str | int | float | bool | list[str]
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%|[KMGT]i?B|B)?\s*$", re.IGNORECASE)


class SpecError(Exception):
    """A bad spec: the message is one line naming the key and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSpec(_Strict):
    binary: str = ""  # llama-server path (default: found on PATH); python for python engines
    model: str = ""  # model file (or directory for KTransformers' --gguf_path)
    generate: ModelShape | None = None  # generate (and cache) a random-weight GGUF instead of `model`
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)  # 0: a free port per launch
    args: list[str] = Field(default_factory=list)  # base argv, appended after the engine's own flags
    env: dict[str, str] = Field(default_factory=dict)
    numa: str = "none"  # base NUMA prefix (an axis of the same name overrides it)
    health_timeout_s: float = Field(600, gt=0)
    stop_timeout_s: float = Field(30, gt=0)
    extra: dict[str, str] = Field(default_factory=dict)  # engine template extras (e.g. optimize_config)

    @field_validator("numa")
    @classmethod
    def _numa(cls, v: str) -> str:
        return check_numa(v)

    @model_validator(mode="after")
    def _model_source(self) -> ServerSpec:
        if self.model and self.generate:
            raise ValueError("set either server.model or [server.generate], not both")
        if not self.model and not self.generate:
            raise ValueError("set server.model (a GGUF path) or add a [server.generate] table")
        return self


class WorkloadSpec(_Strict):
    input_tokens: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [128], min_length=1)
    output_tokens: list[Annotated[int, Field(ge=2)]] = Field(default_factory=lambda: [64], min_length=1)
    concurrency: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [1], min_length=1)
    requests: int = Field(8, ge=1)  # measured requests per cell (at least `concurrency` are sent)
    warmup: int = Field(1, ge=0)  # warm-up requests per cell, excluded from the stats
    repeats: int = Field(1, ge=1)
    endpoint: Literal["completions", "chat"] = "completions"
    request_timeout_s: float = Field(600, gt=0)
    max_retries: int = Field(3, ge=0)  # fresh-connection retries after a dropped keep-alive connection
    extra_body: dict[str, Any] = Field(default_factory=dict)  # merged into every request
    seed: int = 0


class MemorySpec(_Strict):
    # The guard must look often enough to catch a loading model (GB/s): at most every 5 s, never inf.
    interval_s: float = Field(0.25, gt=0, le=5, allow_inf_nan=False)
    oom_floor: str = "5%"  # MemAvailable floor: "5%" of MemTotal or a size such as "8GiB"
    release_timeout_s: float = Field(60, gt=0)
    gpu: bool = True  # sample per-GPU memory through NVML when a driver is present

    @field_validator("oom_floor")
    @classmethod
    def _floor(cls, v: str) -> str:
        floor = parse_size(v, total=2**40)
        if floor <= 0 or (floor >= 2**40 and str(v).strip().endswith("%")):
            raise ValueError(f"oom_floor {v!r} turns the OOM guard off: give a floor above 0 and below 100%, "
                             "such as \"5%\" or \"16GiB\"")
        return v


class ReportSpec(_Strict):
    """The report's settings (`bench/report/options.py: ReportOptions`, same keys and bounds).

    Why optional with no defaults here: the report merges this table under `report.toml` and its
    command-line flags, and owns the defaults; the sweep only checks the table before a launch.
    """

    min_decode_tps: float | None = Field(None, gt=0)  # decode goal, tokens/s per request
    min_headroom_gb: float | None = Field(None, ge=0)  # host MemAvailable to keep, GB (10^9 B)
    target_mem_gb: float | None = Field(None, gt=0)  # MemTotal of the box judged (default: the sweep host)
    objective: str | None = None  # decode | throughput@N | throughput:ttft_p90<MS | decode_per_gb

    @field_validator("objective")
    @classmethod
    def _objective(cls, value: str | None) -> str | None:
        if value is not None:
            parse_objective(value)
        return value
    host_bandwidth_gbps: float | None = Field(None, gt=0)  # measured host RAM bandwidth, GB/s
    # measured GPU memory bandwidth, GB/s: one number for every GPU, or a list per GPU index
    gpu_bandwidth_gbps: list[Annotated[float, Field(gt=0)]] | None = None
    memory_channels: int | None = Field(None, ge=1)  # memory channels in use
    # VRAM a placement may use per GPU, GiB (`bench plan --vram-budget`; a list per GPU index)
    vram_budget_gib: list[Annotated[float, Field(gt=0)]] | None = None

    @field_validator("gpu_bandwidth_gbps", "vram_budget_gib", mode="before")
    @classmethod
    def _scalar_is_every_gpu(cls, value: Any) -> Any:
        return [value] if isinstance(value, int | float) and not isinstance(value, bool) else value


class PlacementSpec(_Strict):
    """Where one `args.placement` axis value came from (written by `python -m bench plan`)."""

    label: str = ""
    args: list[str]  # the axis value it describes
    source: Literal["planner", "fit", "template", "grid", "manual"]
    predicted_decode_tps: float | None = Field(None, gt=0)


class Spec(_Strict):
    name: str = Field("sweep", pattern=r"^[A-Za-z0-9_.-]+$")
    engine: Literal[ENGINES]  # type: ignore[valid-type]
    strategy: str = "grid"
    description: str = ""
    server: ServerSpec
    axes: dict[str, list[AxisValue]] = Field(default_factory=dict)
    workload: WorkloadSpec = Field(default_factory=WorkloadSpec)
    exclude: list[dict[str, AxisValue | list[AxisValue]]] = Field(default_factory=list)
    memory: MemorySpec = Field(default_factory=MemorySpec)
    strategy_options: dict[str, Any] = Field(default_factory=dict)
    report: ReportSpec = Field(default_factory=ReportSpec)  # thresholds for the HTML report
    placement: list[PlacementSpec] = Field(default_factory=list)  # source + prediction per placement

    @field_validator("axes")
    @classmethod
    def _axes(cls, axes: dict[str, list[AxisValue]]) -> dict[str, list[AxisValue]]:
        for key, values in axes.items():
            check_axis_key(key)
            if not values:
                raise ValueError(f"axis {key!r} is empty: give it at least one value or remove it")
            if len({repr(v) for v in values}) != len(values):
                raise ValueError(f"axis {key!r} repeats a value: list each value once")
            if key == "numa":
                for v in values:
                    check_numa(str(v))
        return axes

    @model_validator(mode="before")
    @classmethod
    def _one_objective(cls, data: Any) -> Any:
        """The older `[strategy_options] objective` table becomes `[report] objective` (one objective
        ranks launches and recommends); one with no equivalent is a one-line error naming the fix."""
        if not isinstance(data, dict) or not isinstance(data.get("strategy_options"), dict) \
                or "objective" not in data["strategy_options"]:
            return data
        text = spec_objective(data)
        options = {k: v for k, v in data["strategy_options"].items() if k != "objective"}
        report = data.get("report") if isinstance(data.get("report"), dict) else {}
        return {**data, "strategy_options": options, "report": {**report, "objective": text}}

    @model_validator(mode="after")
    def _strategy(self) -> Spec:
        from bench.strategies import parse_strategy

        parse_strategy(self.strategy, self.strategy_options)  # ValueError: one line naming the knob
        obj = self.objective
        if self.strategy in PRUNING and obj.kind == "throughput_at" \
                and obj.concurrency not in self.workload.concurrency:
            raise ValueError(f"objective {obj.text!r} ranks the {self.strategy} strategy's launches, but "
                             f"concurrency {obj.concurrency} is not in workload.concurrency "
                             f"{self.workload.concurrency}: add it or pick another objective")
        if self.strategy in PRUNING and obj.kind == "decode_per_gb" and not self.memory.gpu:
            raise ValueError(f"objective {obj.text!r} ranks the {self.strategy} strategy's launches by GPU "
                             "memory, which memory.gpu = false does not measure: set it true or pick "
                             "another objective")
        return self

    @property
    def objective(self) -> Objective:
        """What "best" means for this sweep: it prunes race/halving launches and ranks the report."""
        return parse_objective(self.report.objective or DEFAULT)

    @model_validator(mode="after")
    def _numa_engine_flag(self) -> Spec:
        if self.engine in LLAMA_CPP_ENGINES:
            return self
        for policy in [self.server.numa, *map(str, self.axes.get("numa", []))]:
            if parse_numa(policy).engine_flags:
                raise ValueError(
                    f"numa {policy!r} is llama.cpp's own flag, which engine {self.engine} does not have: "
                    "use a numactl policy such as \"interleave=all\""
                )
        return self

    @model_validator(mode="after")
    def _rules(self) -> Spec:
        known = set(self.axes) | set(WORKLOAD_AXES)
        for i, rule in enumerate(self.exclude):
            if not rule:
                raise ValueError(f"exclude[{i}] is empty: name at least one axis and its value(s)")
            for key in rule:
                if key not in known:
                    raise ValueError(
                        f"exclude[{i}] names {key!r}, which is not an axis: use one of {sorted(known)}"
                    )
        return self


def check_axis_key(key: str) -> None:
    """Axis keys: a CLI flag ("--threads", "-ngl"), "env.NAME", "numa", or "args.LABEL" (raw argv)."""
    if key == "numa" or key.startswith("-"):
        return
    if key.startswith("env.") and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key[4:]):
        if is_secret_name(key[4:]):  # its values would be the configuration's label and axis column
            raise ValueError(f"axis {key!r} is a secret: set it once in [server] env, never sweep over it")
        return
    if key.startswith("args.") and key[5:]:
        return
    raise ValueError(
        f"axis {key!r} is not a flag, env or prefix: write it as \"--flag\", \"env.NAME\", \"numa\" "
        f"or \"args.LABEL\""
    )


def numa_prefix(value: str, strict: bool = True) -> list[str]:
    """`numactl` argv prefix for a NUMA policy ("none" → no prefix). Not strict (dry-run): render
    it even where numactl is missing."""
    if not parse_numa(value).numactl_options:
        return []
    exe = shutil.which("numactl") or ("" if strict else "numactl")
    if not exe:
        raise SpecError(
            f"numa {value!r} needs numactl, which is not installed: `sudo apt-get install numactl` "
            f"or sweep numa = [\"none\"] only"
        )
    return [exe, *parse_numa(value).numactl_options]


def parse_size(text: str, total: int) -> int:
    """'5%' of `total`, or '8GiB' / '512MB' / '1073741824' in bytes."""
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(f"{text!r} is not a size: use a percentage such as \"5%\" or bytes such as \"8GiB\"")
    number, unit = float(m.group(1)), (m.group(2) or "B").upper()
    if unit == "%":
        return int(total * number / 100)
    scale = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
    scale |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
    return int(number * scale[unit])


def axis_argv(key: str, value: AxisValue) -> list[str]:
    """The argv fragment an axis value contributes (flags and raw args axes only)."""
    if key.startswith("args."):
        return list(value) if isinstance(value, list) else shlex.split(str(value))
    if value is False or value == "":
        return []
    if value is True:
        return [key]
    if isinstance(value, list):
        return [key, *map(str, value)]
    return [key, str(value)]


def _one_line(err: ValidationError) -> str:
    e = err.errors()[0]
    loc, kind = error_location(e), e["type"]
    if kind == "extra_forbidden" and loc.startswith("report."):
        return (f"unknown key {loc!r}: the report understands {', '.join(ReportSpec.model_fields)} "
                f"(see docs/report.md)")
    if kind == "extra_forbidden":
        return f"unknown key {loc!r}: remove it or fix its spelling (see docs/bench.md)"
    if kind == "missing":
        return f"missing key {loc!r}: add it to the spec"
    if kind == "literal_error" and loc == "engine":
        return f"engine {e.get('input')!r} is not supported: use one of {', '.join(ENGINES)}"
    if kind == "too_short":
        return f"{loc} is empty: give it at least one value"
    return one_line(err, show_input=True)


def secret_values(spec_text: str) -> tuple[str, ...]:
    """The values of the spec's secret ``[server] env`` variables (HF_TOKEN...), to keep them out of files."""
    try:
        env = tomllib.loads(spec_text).get("server", {}).get("env", {})
    except (tomllib.TOMLDecodeError, AttributeError):
        return ()
    if not isinstance(env, dict):
        return ()
    return tuple(str(value) for name, value in env.items() if is_secret_name(str(name)) and value)


def redact_spec(spec_text: str) -> str:
    """The spec text as shown in a report or log: secret env values as ``***``."""
    return redact_text(spec_text, secret_values(spec_text))


def parse_spec(data: dict[str, Any]) -> Spec:
    try:
        return Spec.model_validate(data)
    except ValidationError as err:
        raise SpecError(f"bad spec: {_one_line(err)}") from None


def load_spec(path: Path) -> Spec:
    """Read and validate a spec file; model paths are resolved relative to the spec file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SpecError(f"cannot read spec {path}: {err.strerror}; check the path") from None
    except UnicodeDecodeError as err:
        raise SpecError(f"spec {path} is not UTF-8 text (byte {err.start}): give a TOML sweep spec "
                        "(see bench/specs/)") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"spec {path} is not valid TOML ({err}); fix the syntax there") from None
    spec = parse_spec(data)
    if spec.server.model and not Path(spec.server.model).is_absolute():
        resolved = (path.parent / spec.server.model).resolve()
        if resolved.exists() or not Path(spec.server.model).exists():
            spec.server.model = str(resolved)
    return spec
