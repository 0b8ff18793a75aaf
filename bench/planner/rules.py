"""The `-ot` rules that put a placement's routed experts on their GPUs, checked against the real names."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bench.planner.model import EXPS, ModelTable, expert_kinds, whole_layers
from bench.planner.placement import Placement


def _alternation(numbers: Sequence[int | str]) -> str:
    if len(numbers) == 1:
        return str(numbers[0])
    return "(" + "|".join(map(str, numbers)) + ")"


def expert_rules(experts: dict[int, list[str]], buffers: dict[int, str]) -> list[tuple[str, str]]:
    """`-ot` rules: per GPU, whole expert layers as one alternation, single tensors by name; then CPU."""
    rules: list[tuple[str, str]] = []
    for g, names in experts.items():
        by_layer = expert_kinds(names)
        full = whole_layers(by_layer)
        if full:
            rules.append((rf"blk\.{_alternation(full)}{EXPS}", buffers[g]))
        for il in sorted(set(by_layer) - set(full)):
            kinds = sorted(by_layer[il])
            rules.append((rf"blk\.{il}\.ffn_{_alternation(kinds)}_exps\.", buffers[g]))  # type: ignore[arg-type]
    rules.append((EXPS, "CPU"))
    return rules


def check_rules(mt: ModelTable, placement: Placement) -> None:
    """Every rule matched against the real tensor names: each tensor lands where the plan says."""
    want = {n: f"CUDA{g}" for g, names in placement.experts.items() for n in names}
    compiled = [(re.compile(p), b) for p, b in placement.rules]
    for t in mt.model.tensors:
        hit = next((b for rx, b in compiled if rx.search(t.name)), None)
        expected = want.get(t.name, "CPU") if t.routed_expert else None
        if hit != expected:
            raise AssertionError(f"-ot rules put {t.name} on {hit}, the plan says {expected}")
