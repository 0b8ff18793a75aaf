"""Where llama.cpp puts tensors: the buffer-override rules of `-ot`, `--cpu-moe` and `--n-cpu-moe`.

Why one home: the report (which tensor lives where), the planner's rules and the parsed command
line must agree on llama.cpp's semantics: `--cpu-moe` is the routed-expert regex on the CPU,
`--n-cpu-moe N` the same for layers 0..N-1, and all of them apply in argv order with the first
matching pattern winning. The `PATTERN=BUFFER[,...]` text of one `-ot` is the `rules` kind of
omni/llama_flags.py (`parse_overrides`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# llama.cpp's LLM_FFN_EXPS_REGEX: the routed-expert tensors `--cpu-moe` / `--n-cpu-moe` keep on the CPU
EXPS_REGEX = r"\.ffn_(up|down|gate|gate_up)_(ch|)exps"
OVERRIDE_FLAGS = ("override_tensor", "cpu_moe", "n_cpu_moe")  # the flags that place tensors


def overrides_of(name: str, value: Any) -> list[tuple[str, str]]:
    """The (regex, buffer type) rules one flag's typed value stands for (none for other flags)."""
    if name == "override_tensor":
        return list(value)
    if name == "cpu_moe" and value:
        return [(EXPS_REGEX, "CPU")]
    if name == "n_cpu_moe" and value:
        return [(rf"blk\.{i}{EXPS_REGEX}", "CPU") for i in range(int(value))]
    return []


def ordered_overrides(given: Iterable[tuple[str, Any]],
                      env_values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every rule in the order llama.cpp applies them: the flags `given` (name, typed value) in argv
    order, then the `LLAMA_ARG_*` forms of those not given; the first matching pattern wins."""
    rules: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in given:
        seen.add(name)
        rules += overrides_of(name, value)
    for name in OVERRIDE_FLAGS:
        if name not in seen and name in env_values:
            rules += overrides_of(name, env_values[name])
    return rules
