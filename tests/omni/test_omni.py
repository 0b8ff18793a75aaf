"""The ground floor: one NUMA vocabulary, one atomic write, one line per validation error."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from omni.errors import error_location, one_line
from omni.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from omni.numa import check_numa, parse_numa
from omni.settings import SettingsError, YesNo, comma_list, flags, table, yes_no


@pytest.mark.parametrize(
    ("policy", "prefix", "flags"),
    [
        ("none", [], []),
        ("interleave=all", ["numactl", "--interleave=all"], []),
        ("interleave=0-3", ["numactl", "--interleave=0-3"], []),
        ("cpunodebind=0 membind=0", ["numactl", "--cpunodebind=0", "--membind=0"], []),
        ("numactl --interleave=0,1", ["numactl", "--interleave=0,1"], []),
        ("preferred=1 localalloc", ["numactl", "--preferred=1", "--localalloc"], []),
        ("--numa distribute", [], ["--numa", "distribute"]),
    ],
)
def test_one_vocabulary(policy: str, prefix: list[str], flags: list[str]):
    parsed = parse_numa(policy)
    assert (parsed.prefix, list(parsed.engine_flags)) == (prefix, flags)
    assert check_numa(policy) == policy


@pytest.mark.parametrize("policy", ["interleave=everything", "spread", "membind", "localalloc=1",
                                    "numactl", "cpunodebind=0 membind=x"])
def test_outside_the_vocabulary_is_one_line(policy: str):
    with pytest.raises(ValueError, match=r"is not understood: use \"none\", \"interleave=all\"") as err:
        parse_numa(policy)
    assert "\n" not in str(err.value)


def test_the_engine_flag_takes_only_llama_cpp_modes():
    with pytest.raises(ValueError, match="use --numa with one of distribute, isolate, numactl"):
        parse_numa("--numa spread")


def test_atomic_write_replaces_whole_files_with_the_asked_mode(tmp_path: Path):
    target = tmp_path / "deep" / "doc.json"
    atomic_write_json(target, {"b": 1, "a": [1, 2]}, sort_keys=True, mode=0o600)
    assert target.read_text() == json.dumps({"a": [1, 2], "b": 1}, indent=2) + "\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    atomic_write_text(target, "second\n")
    assert target.read_text() == "second\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in target.parent.iterdir()) == ["doc.json"]  # no temp file left


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path):
    target = tmp_path / "doc.json"
    atomic_write_text(target, "old\n")
    with pytest.raises(TypeError):
        atomic_write_json(target, {"not json": object()})
    assert target.read_text() == "old\n"
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "text, not bytes")  # fails inside the temp file
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["doc.json"]


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    port: int = Field(ge=1)
    numa: str = "none"

    @field_validator("numa")
    @classmethod
    def _numa(cls, value: str) -> str:
        return check_numa(value)


class _Doc(BaseModel):
    items: list[_Item]


def _error(data: dict) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        _Doc.model_validate(data)
    return err.value


def test_one_line_names_where_what_and_the_fix():
    err = _error({"items": [{"port": 1}, {"port": 0}]})
    assert error_location(err.errors()[0]) == "items[1].port"
    assert one_line(err, root=["stack"], fix="fix it in host data") == (
        "stack.items[1].port: Input should be greater than or equal to 1: fix it in host data")
    assert one_line(err, show_input=True).endswith("(got 0)")


def test_one_line_strips_pydantics_value_error_prefix_and_keeps_our_message():
    err = _error({"items": [{"port": 1, "numa": "spread"}]})
    line = one_line(err, show_input=True)
    assert line.startswith("items[0].numa: numa 'spread' is not understood")
    assert "Value error" not in line and "got" not in line and "\n" not in line


def test_an_empty_location_uses_the_callers_word():
    with pytest.raises(ValidationError) as err:
        _Doc.model_validate_json("not json")
    assert one_line(err.value, where="line").startswith("line: Invalid JSON")


class _Run(BaseModel):
    port: int = Field(22, ge=1, le=65535, description="<SSH port 1-65535>")
    confirm: YesNo = Field(False, description="yes|no")
    names: Annotated[list[str], BeforeValidator(comma_list)] = Field([], description="<a>,<b>")


def test_flags_read_the_models_keys_and_keep_defaults_for_unset_ones():
    run = flags(_Run, {"port": 2222, "confirm": "YES", "names": "a, b,,c", "other": object()})
    assert (run.port, run.confirm, run.names) == (2222, True, ["a", "b", "c"])
    assert flags(_Run, {"port": None, "confirm": "", "names": ""}) == _Run()
    assert [yes_no(v) for v in (True, 1, "on", "y", False, 0, "off", "n", None)] == [True] * 4 + [False] * 5


@pytest.mark.parametrize(("data", "needle"), [
    ({"port": "abc"}, "port: Input should be a valid integer, unable to parse string as an integer "
                      "(got 'abc'): pass --data port=<SSH port 1-65535>"),
    ({"confirm": "maybe"}, "confirm: 'maybe' is not yes or no: pass --data confirm=yes|no"),
    ({"confirm": [1]}, "confirm: '[1]' is not yes or no"),
    ({"names": [1]}, "names[0]: Input should be a valid string (got 1): pass --data names=<a>,<b>"),
])
def test_a_bad_flag_is_one_line_naming_the_key_and_the_fix(data, needle):
    with pytest.raises(SettingsError) as err:
        flags(_Run, data)
    assert str(err.value).startswith(needle) and "\n" not in str(err.value)


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = Field(3, ge=0)
    names: dict[str, str] = {"a": "A"}


def test_table_merges_over_the_models_defaults_and_names_a_bad_key():
    assert table(_Table, {"box": {"names": {"b": "B"}}}, "box") == _Table(names={"a": "A", "b": "B"})
    assert table(_Table, {}, "box") == _Table()
    for data, needle in [({"box": {"size": "x"}}, "box.size: Input should be a valid integer"),
                         ({"box": {"sise": 1}}, "box.sise: Extra inputs are not permitted"),
                         ({"box": "on"}, "box: is a str, not a table")]:
        with pytest.raises(SettingsError) as err:
            table(_Table, data, "box")
        assert str(err.value).startswith(needle) and "\n" not in str(err.value)
