"""The layers, checked: every module's imports (``ast``, no code run) against who may import whom.

    omni                      the ground floor: imports nothing of ours
    facts, bmc                stand on omni only (and themselves)
    bench, deploys, evals     on top: omni, facts, bmc and each other; inventory.py with them
    benchmarks                harness benchmarks, beside the product: may import bench and below
    tests                     may import anything; nothing imports tests or benchmarks

``importlib.import_module("pkg...")`` with a literal (or an f-string's literal start) counts as an
import, so loading a module by name cannot hide an uphill edge. A new top-level package fails here
until it is given a place in :data:`ALLOWED`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_BELOW_TOP = {"omni", "facts", "bmc"}
_TOP = {"bench", "deploys", "evals", "inventory"}
#: package -> the packages of ours it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "omni": set(),
    "facts": {"omni"},
    "bmc": {"omni"},
    **{name: _BELOW_TOP | _TOP for name in _TOP},
    "benchmarks": _BELOW_TOP | {"bench"},
    "tests": _BELOW_TOP | _TOP | {"benchmarks", "tests"},
}
OURS = set(ALLOWED)
SKIP = {".venv", ".git", "reports", "backups", "build", "node_modules", ".carry", ".snap"}


def modules(root: Path) -> Iterator[tuple[str, Path]]:
    """(top-level package or module name, file) for every Python file of ours under ``root``."""
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(part in SKIP or part.startswith(".") for part in rel.parts[:-1]):
            continue
        if rel.parts[0] == "scripts":
            continue
        yield (rel.parts[0] if len(rel.parts) > 1 else rel.stem), rel


def _dynamic_name(call: ast.Call) -> str | None:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name != "import_module" or not call.args:
        return None
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
        return str(arg.values[0].value)
    return None


def imported_tops(rel: Path, source: str) -> Iterator[tuple[int, str]]:
    """(line, top-level name) of every absolute, relative or importlib import in one file."""
    package = list(rel.parts[:-1])  # the package this module lives in
    for node in ast.walk(ast.parse(source, str(rel))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.lineno, (node.module or "").split(".")[0]
            else:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                parts = [*base, *(node.module or "").split(".")] if base or node.module else []
                if parts and parts[0]:
                    yield node.lineno, parts[0]
        elif isinstance(node, ast.Call) and (name := _dynamic_name(node)):
            yield node.lineno, name.split(".")[0]


def violations(root: Path) -> list[str]:
    """One line per uphill or sideways import that :data:`ALLOWED` does not permit."""
    found = []
    for top, rel in modules(root):
        if top not in ALLOWED:
            found.append(f"{rel}: package {top!r} has no layer: add it to ALLOWED in tests/test_layers.py")
            continue
        for line, target in imported_tops(rel, (root / rel).read_text()):
            if target in OURS and target != top and target not in ALLOWED[top]:
                found.append(f"{rel}:{line}: {top} imports {target}, which {top} may not import "
                             f"(allowed: {', '.join(sorted(ALLOWED[top])) or 'nothing of ours'})")
    return found


def test_every_import_runs_downhill():
    assert violations(ROOT) == []


def test_the_ground_floor_and_facts_and_bmc_exist_and_are_walked():
    walked = {top for top, _ in modules(ROOT)}
    assert {"omni", "facts", "bmc", "deploys", "bench", "evals", "tests"} <= walked


@pytest.mark.parametrize(
    ("rel", "source", "needle"),
    [
        ("facts/bad.py", "from deploys.hostdata import host_data\n", "facts imports deploys"),
        ("bmc/bad.py", "import bench.spec\n", "bmc imports bench"),
        ("omni/bad.py", "def f():\n    from facts import hardware\n", "omni imports facts"),
        ("facts/sub/bad.py", "from ...deploys import markers\n", "facts imports deploys"),
        ("facts/bad.py", "import importlib\nimportlib.import_module('deploys.core.markers')\n",
         "facts imports deploys"),
        ("bench/bad.py", "from benchmarks import overhead\n", "bench imports benchmarks"),
        ("deploys/bad.py", "from tests import servers\n", "deploys imports tests"),
        ("newpkg/bad.py", "import os\n", "package 'newpkg' has no layer"),
    ],
)
def test_an_uphill_import_fails(tmp_path: Path, rel: str, source: str, needle: str):
    module = tmp_path / rel
    module.parent.mkdir(parents=True)
    module.write_text(source)
    (tmp_path / "omni").mkdir(exist_ok=True)
    (tmp_path / "omni" / "fine.py").write_text("import json\nfrom omni import numa\n")
    (tmp_path / "deploys").mkdir(exist_ok=True)
    fine = "from omni.numa import parse_numa\nfrom facts import hardware\n"
    (tmp_path / "deploys" / "fine.py").write_text(fine)
    found = violations(tmp_path)
    assert len(found) == 1 and needle in found[0], found
    assert found[0].startswith(f"{rel}:")


def test_the_package_ships_the_layers_and_not_the_benchmarks_or_tests():
    import tomllib

    from setuptools import find_packages

    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    shipped = set(find_packages(str(ROOT), include=find["include"]))
    assert {"omni", "facts", "bmc", "bench", "bench.report", "deploys", "deploys.host", "evals"} <= shipped
    assert not {p for p in shipped if p.split(".")[0] in {"benchmarks", "tests"}}
