"""Issue 19, classes 4, 6 and 7: every real format parses, a cut-short capture is refused, and no
mutation of a real capture makes a fact parser raise anything but its one-line ParseError (or take
more than 1 s or 256 MiB).

Captures: every file in tests/fixtures/hw (a superset of ../shared/fixtures/hw, copied verbatim, see
test_facts_captures.py), every pyinfra fact fixture under tests/facts/hardware.*/ (fed to the
fact's own ``process``, which must never raise at all), and every storage layout capture under
tests/deploys/storage/captures (fed to ``DiskLayout.process`` and the storage plan: never raises,
and a mangled capture never plans a write the real one would not; fail closed).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploys.host.storage import DEFAULTS, StorageRefusal
from deploys.host.storage.plan import plan_storage
from facts import gguf, hardware
from facts.files import SpaceAt, parse_space
from facts.parse import PARSERS, ParseError, parse
from facts.parse.common import MAX_CPUS, expand_cpulist
from facts.runtime import JsonFile, K3sVersions
from facts.stack import MemInfo, parse_meminfo
from facts.storage import DiskLayout, parse_layout

HW = Path(__file__).parents[1] / "fixtures" / "hw"
FACT_FIXTURES = Path(__file__).parents[1] / "facts"

#: capture file name fragment -> parser KIND (first match wins).
KINDS = (
    ("dmidecode", "dmidecode"), ("lsblk", "lsblk"), ("lspci", "lspci"), ("numactl", "numactl"),
    ("query-gpu-csv", "nvidia-smi-csv"), ("nvidia-smi-q", "nvidia-smi-q"), ("lscpu", "lscpu"),
    ("proc-cpuinfo", "cpuinfo"), ("driver-nvidia-version", "nvidia-version"),
    ("sysfs-node", "sysfs-node"), ("sysfs-pci", "sysfs-pci"),
)
#: Captures no fact parser reads (they feed other checks), so they are not fuzzed here.
UNPARSED = {"h200-os-release.txt", "h200-proc-meminfo.txt"}


def kind_of(name: str) -> str:
    return next(kind for fragment, kind in KINDS if fragment in name)


CAPTURES = sorted(path.name for path in HW.glob("*.txt") if path.name not in UNPARSED)
FACT_CASES = sorted((path.parent.name.removeprefix("hardware."), path.stem)
                    for path in FACT_FIXTURES.glob("hardware.*/*.json"))
STORAGE = Path(__file__).parents[1] / "deploys" / "storage" / "captures"
STORAGE_CASES = sorted((path.stem, layout) for path in STORAGE.glob("*.txt")
                       for layout in ("whole-disk", "append"))
CASES_RUN = {"parsers": 0, "facts": 0, "storage": 0, "other": 0}

TIME_LIMIT_S = 1.0
MEMORY_LIMIT = 256 * 2**20
EXAMPLES = 60


def bounded(call):
    """Run ``call`` under the issue's bounds: its result, and the ParseError it raised if any."""
    tracemalloc.start()
    started = time.perf_counter()
    error = None
    try:
        result = call()
    except ParseError as raised:
        result, error = None, raised
    finally:
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < TIME_LIMIT_S, f"took {elapsed:.2f} s"
    assert peak < MEMORY_LIMIT, f"peak {peak / 2**20:.0f} MiB"
    return result, error


# --- class 6: real formats --------------------------------------------------------------------------

H100_NN = """\
18:00.0 3D controller [0302]: NVIDIA Corporation GH100 [H100 SXM5 80GB] [10de:2330] (rev a1)
\tSubsystem: NVIDIA Corporation Device [10de:16c1]
\tNUMA node: 0
\t\tLnkCap:\tPort #0, Speed 32GT/s, Width x16, ASPM not supported
\t\tLnkSta:\tSpeed .GT/s, Width x16
"""


def test_lspci_nn_3d_controller_is_a_gpu_and_unknown_speed_is_none() -> None:
    device = parse("lspci", H100_NN)["devices"][0]
    assert device["is_gpu"] is True
    assert device["cap_speed_gts"] == 32 and device["sta_speed_gts"] is None
    assert device["sta_width"] == 16 and device["downgraded"] is False


def test_bare_lnk_lines_as_grep_prints_them() -> None:
    text = ("\t\tLnkCap:\tPort #0, Speed 32GT/s, Width x16\n"
            "\t\tLnkSta:\tSpeed 16GT/s (downgraded), Width x16\n"
            "LnkCap:\tPort #0, Speed 16GT/s, Width x8\nLnkSta:\tSpeed unknown, Width x8\n")
    devices = parse("lspci", text)["devices"]
    assert [(d["cap_speed_gts"], d["sta_speed_gts"], d["downgraded"]) for d in devices] == [
        (32, 16, True), (16, None, False)]
    assert all(d["address"] is None and d["pci_address"] is None for d in devices)


def test_numactl_compressed_cpu_lists() -> None:
    text = "available: 1 nodes (0)\nnode 0 cpus: 0-15,32-47\nnode 0 size: 1000 MB\nnode 0 free: 10 MB\n"
    assert parse("numactl", text)["nodes"][0]["cpus"] == [*range(16), *range(32, 48)]


@pytest.mark.parametrize("kind,text", [
    ("numactl", "available: 1 nodes (0)\nnode 0 cpus: 0-4294967295\n"),
    ("sysfs-node", "/sys/devices/system/node/node0/cpulist:0-4294967295\n"),
    ("sysfs-node", "/sys/devices/system/node/node0/cpulist:0-8000,0-8000\n"),
    ("numactl", "available: 1 nodes (0)\nnode 0 cpus: " + "9" * 5000 + "\n"),
])
def test_cpu_list_bomb_is_refused_without_allocating(kind: str, text: str) -> None:
    _, error = bounded(lambda: parse(kind, text))
    assert error is not None and "\n" not in str(error)
    assert len(expand_cpulist(f"0-{MAX_CPUS - 1}")) == MAX_CPUS  # the largest real host still parses


def test_na_in_sysfs_and_nvidia_smi() -> None:
    node = parse("sysfs-node", "/sys/devices/system/node/node0/cpulist:N/A\n"
                               "/sys/devices/system/node/node0/distance:N/A\n")["nodes"][0]
    assert node["cpus"] == []
    pci = parse("sysfs-pci", "/sys/bus/pci/devices/0000:00:06.0/class:N/A\n"
                             "/sys/bus/pci/devices/0000:00:06.0/current_link_speed:N/A\n"
                             "/sys/bus/pci/devices/0000:00:06.0/numa_node:N/A\n")["devices"][0]
    assert pci["sta_speed_gts"] is None and pci["numa_node"] is None
    csv = "index, name, pci.bus_id, memory.total [MiB]\n0, H200, [N/A], N/A\n"
    gpu = parse("nvidia-smi-csv", csv)["gpus"][0]
    assert gpu["pci_address"] is None and gpu["memory_total_mib"] is None


def test_concatenated_csv_keeps_each_gpu_once() -> None:
    header = "index, name, uuid, pci.bus_id, memory.total [MiB]"
    text = (f"{header}\n0, H200, GPU-a, 00000000:00:06.0, 143771 MiB\n"
            f"{header}\n0, H200, GPU-a, 00000000:00:06.0, 143771 MiB\n"
            "1, H200, GPU-b, 00000000:00:07.0, 1 MiB\n")
    assert [gpu["uuid"] for gpu in parse("nvidia-smi-csv", text)["gpus"]] == ["GPU-a", "GPU-b"]


@pytest.mark.parametrize("size,expected", [("1.8T", round(1.8 * 2**40)), ("1,8T", round(1.8 * 2**40)),
                                           ("512M", 512 * 2**20), ("1.8TiB", round(1.8 * 2**40)),
                                           ("9" * 400 + "T", None), ("1.2.3G", None)])
def test_lsblk_size_suffixes(size: str, expected: int | None) -> None:
    tree = parse("lsblk", f"NAME MAJ:MIN RM SIZE RO TYPE MOUNTPOINTS\nsda 8:0 0 {size} 0 disk\n")
    as_json = parse("lsblk", json.dumps({"blockdevices": [{"name": "sda", "type": "disk", "size": size}]}))
    assert tree["disks"][0]["size_bytes"] == as_json["disks"][0]["size_bytes"] == expected


@pytest.mark.parametrize("text", ['{"blockdevices": [5]}', '{"blockdevices": [{"children": 5}]}',
                                  '{"blockdevices": ' + "[" * 100000 + "]" * 100000 + "}"])
def test_lsblk_json_of_the_wrong_shape(text: str) -> None:
    _, error = bounded(lambda: parse("lsblk", text))
    assert error is not None


# --- class 4: cut-short captures ---------------------------------------------------------------------

def test_truncated_nvidia_smi_q_is_refused() -> None:
    lines = (HW / "nvidia-smi-q-8x-h100-sxm-gen5-x16.txt").read_text().splitlines()
    fifth = next(i for i, line in enumerate(lines) if line.startswith("GPU 00000000:9A"))
    with pytest.raises(ParseError, match="'Attached GPUs : 8' but 4 GPU sections"):
        parse("nvidia-smi-q", "\n".join(lines[:fifth]))
    with pytest.raises(ParseError, match="truncated"):  # cut inside the last GPU's section
        parse("nvidia-smi-q", "\n".join(lines[:fifth + 40]))
    assert len(parse("nvidia-smi-q", "\n".join(lines))["gpus"]) == 8


def test_header_only_or_headerless_csv_is_refused() -> None:
    lines = (HW / "h200-nvidia-smi-query-gpu-csv.txt").read_text().splitlines()
    header = next(line for line in lines if line.startswith("index"))
    with pytest.raises(ParseError, match="no GPU rows"):
        parse("nvidia-smi-csv", header + "\n")
    with pytest.raises(ParseError, match="not an nvidia-smi CSV header"):
        parse("nvidia-smi-csv", (HW / "h200-nvidia-smi-query-gpu-csv-noheader.txt").read_text())


def test_nvidia_gpus_fact_reports_a_header_only_capture_unavailable() -> None:
    fact = hardware.NvidiaGpus().process(["##omni:nvidia-smi", "index, name, pci.bus_id"])
    assert fact["available"] is False and "no GPU rows" in fact["reason"]


# --- class 7: fuzz -----------------------------------------------------------------------------------

HUGE = ["4294967295", "18446744073709551616", "9" * 30, "9" * 5000, "-1", "0-4294967295"]
GARBAGE = st.sampled_from(["\x00", "\x00\x00\xff", "N/A", "[N/A]", "\ufffd\ufffd", "{", "}", "[[[[", ":::",
                           "\t\t",
                           "GPU 00000000:ZZ:00.0", "node 0 cpus: 0-4294967295", "LnkSta: Speed .GT/s",
                           "Attached GPUs : 99", "Handle 0x0000, DMI type 17, 92 bytes", "Memory Device"])
UNKNOWN = st.sampled_from(["N/A", "[N/A]", "Unknown", ""])
_NUMBER = re.compile(r"\d+")
_VALUE = re.compile(r"(:\s*)(\S[^,]*)")


@st.composite
def mutated(draw, text: str) -> str:
    """The capture with 1-4 edits a broken capture or a hostile file would have."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            lines = [""]
        op = draw(st.sampled_from(["truncate", "duplicate", "drop", "garbage", "huge", "na", "bytes"]))
        at = draw(st.integers(0, len(lines) - 1))
        if op == "truncate":
            joined = "\n".join(lines)
            lines = joined[:draw(st.integers(0, len(joined)))].splitlines()
        elif op == "duplicate":
            end = draw(st.integers(at, min(len(lines), at + 60)))
            lines[end:end] = lines[at:end] * draw(st.integers(1, 50))
        elif op == "drop":
            del lines[at:at + draw(st.integers(1, 30))]
        elif op == "garbage":
            lines.insert(at, draw(GARBAGE) + draw(st.text(max_size=20)))
        elif op == "huge":
            lines[at] = _NUMBER.sub(lambda _m: draw(st.sampled_from(HUGE)), lines[at], count=1)
        elif op == "na":
            lines[at] = _VALUE.sub(lambda m: m.group(1) + draw(UNKNOWN), lines[at], count=1)
        else:
            lines[at] = draw(st.binary(max_size=40)).decode("utf-8", errors="replace")
    return "\n".join(lines)


FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("name", CAPTURES)
def test_every_capture_parses_unmutated(name: str) -> None:
    kind = kind_of(name)
    text = (HW / name).read_text()
    expect = next((line for line in text.splitlines() if line.startswith("# expect:")), "")
    if re.search(r"must (fail|refuse)|`parse \S+` fails", expect):  # kept to prove the refusal
        with pytest.raises(ParseError):
            parse(kind, text)
    else:
        assert parse(kind, text)


@pytest.mark.parametrize("name", CAPTURES)
def test_fuzz_parser_on_mutated_capture(name: str) -> None:
    kind = kind_of(name)
    parser = PARSERS[kind]

    @FUZZ
    @given(st.data())
    def run(data) -> None:
        text = data.draw(mutated((HW / name).read_text()))
        CASES_RUN["parsers"] += 1
        result, error = bounded(lambda: parser(text))
        if error is not None:
            assert "\n" not in str(error) and str(error).strip(), repr(error)
        else:
            json.dumps(result)  # plain JSON-able data

    run()


@pytest.mark.parametrize(("fact", "case"), FACT_CASES)
def test_fuzz_fact_process_on_mutated_fixture(fact: str, case: str) -> None:
    stored = json.loads((FACT_FIXTURES / f"hardware.{fact}" / f"{case}.json").read_text())
    output = stored["output"] if isinstance(stored["output"], str) else "\n".join(stored["output"])

    @FUZZ
    @given(st.data())
    def run(data) -> None:
        lines = data.draw(mutated(output)).splitlines()
        CASES_RUN["facts"] += 1
        result, error = bounded(lambda: getattr(hardware, fact)().process(lines))
        assert error is None, f"{fact}.process raised {error}"
        assert isinstance(result["available"], bool)
        if not result["available"]:
            assert result["reason"] and "\n" not in result["reason"]
        json.dumps(result)

    run()


# --- storage: the layout that decides whether a disk is formatted -------------------------------------

LOOP = {"name": "loop0", "path": "/dev/loop0", "type": "loop", "model": None, "serial": None,
        "size_bytes": 2**30}


def storage_lines(name: str) -> list[str]:
    return [line for line in (STORAGE / f"{name}.txt").read_text().splitlines() if not line.startswith("# ")]


def storage_ops(layout: dict, kind: str) -> list[str] | None:
    """The partition/format operations the plan would run on ``layout``; None when it refuses."""
    cfg = {**DEFAULTS, "layout": kind, "mountpoint": "/tmp/omni/cap/nvme", "min_size_gib": 0.5}
    try:
        return [name for name, _ in plan_storage(LOOP, layout, [], cfg).commands]
    except StorageRefusal as refusal:
        assert str(refusal).strip() and "\n" not in str(refusal), repr(refusal)
        return None


@pytest.mark.parametrize(("name", "kind"), STORAGE_CASES)
def test_storage_capture_parses_clean(name: str, kind: str) -> None:
    assert parse_layout(storage_lines(name))["problems"] == []


#: Before the fix these raised ValueError, IndexError and AttributeError out of the fact.
@pytest.mark.parametrize(("section", "body", "rc_line", "needle"), [
    ("sfdisk", ["{}"], "##rc abc", "ends in '##rc abc', not an exit status"),
    ("sfdisk", ["{}"], "##rc ", "ends in '##rc', not an exit status"),
    ("wipefs", ["[]"], "##rc 0", "wipefs -n -J printed no signature list ([])"),
    ("wipefs", ['["signatures"]'], "##rc 0", "printed no signature list"),
    ("lsblk", ['[{"name": "loop0"}]'], "##rc 0", "lsblk -J printed no tree of one disk"),
    ("lsblk", ['{"blockdevices": [{"name": "loop0", "children": 5}]}'], "##rc 0", "printed no tree"),
    ("partwipefs /dev/loop0p1", ["[1, 2]"], "##rc 0", "'##partwipefs /dev/loop0p1' is not wipefs's JSON"),
])
def test_malformed_storage_section_is_a_refusal_not_a_traceback(section, body, rc_line, needle) -> None:
    """Each regression replaces one section of the real blank capture, which alone reads as blank."""
    lines = storage_lines("blank")
    head = section.split()[0]
    start = lines.index(f"##{head}") if head != "partwipefs" else lines.index("##lsblk")
    end = lines.index("##rc 0", start) + 1 if head != "partwipefs" else start  # partwipefs: inserted
    mangled = [*lines[:start], f"##{section}", *body, rc_line, *lines[end:]]
    layout = DiskLayout().process(mangled)
    assert any(needle in problem for problem in layout["problems"]), layout["problems"]
    assert all(problem and "\n" not in problem for problem in layout["problems"])
    json.dumps(layout)
    assert storage_ops(layout, "whole-disk") is None
    assert storage_ops(DiskLayout().process(lines), "whole-disk")  # the real blank capture is taken


@pytest.mark.parametrize("cut", ["##lsblk", "##holders", "##swaps", "##blkid", "##mounts"])
def test_a_blank_capture_missing_a_section_is_not_blank(cut: str) -> None:
    """The kernel's view (holders, swap, partitions) missing is not "nothing in use": fail closed."""
    lines = storage_lines("blank")
    start = lines.index(cut)
    layout = parse_layout([*lines[:start], *lines[lines.index("##rc 0", start) + 1:]])
    assert f"no '{cut}' section" in layout["problems"][0] and storage_ops(layout, "whole-disk") is None


def test_signatures_dropped_from_wipefs_are_caught_by_blkid() -> None:
    """The one edit that made ext4 read as blank: its wipefs object cut out, the JSON still valid."""
    lines = storage_lines("ext4-whole-disk")
    start = lines.index("##wipefs")
    first = lines.index("      {", start)
    dropped = [*lines[:first], *lines[lines.index("      }", first) + 1:]]
    layout = parse_layout(dropped)
    assert layout["signatures"] == [] and "blkid -p does (TYPE=ext4" in layout["problems"][0]
    assert storage_ops(layout, "whole-disk") is None


def test_a_partition_cut_from_the_table_is_a_disagreement_with_the_kernel() -> None:
    """Found by the fuzz: the ESP's entry dropped from sfdisk's JSON (still valid JSON) made the OS
    disk plan our partition as number 1, the ESP's number."""
    lines = storage_lines("os-disk-fresh")
    first = lines.index("         {")
    dropped = [*lines[:first], *lines[lines.index("         },{", first) + 1:]]
    dropped.insert(first, "         {")
    layout = parse_layout(dropped)
    assert [p["node"] for p in layout["table"]["partitions"]] == ["/dev/loop0p2"]
    assert any("but the kernel knows /dev/loop0p1, /dev/loop0p2" in p and "partx -u /dev/loop0" in p
               for p in layout["problems"])
    assert storage_ops(layout, "append") is None


def test_a_probe_about_another_device_is_refused() -> None:
    layout = parse_layout([line.replace('"/dev/loop0"', '"/dev/loop7"') for line in storage_lines("blank")])
    assert "different devices (/dev/loop0, /dev/loop7)" in layout["problems"][0]
    renamed = parse_layout([line.replace("loop0", "loop7") for line in storage_lines("blank")])
    assert renamed["problems"] == [] and renamed["device"] == "/dev/loop7"
    assert storage_ops(renamed, "whole-disk") is None  # a clean probe, but of /dev/loop7, not loop0


@pytest.mark.parametrize(("name", "kind"), STORAGE_CASES)
def test_fuzz_storage_layout_never_plans_a_write_the_capture_does_not(name: str, kind: str) -> None:
    """A mangled capture parses (never raises), and the plan on it either refuses or runs a subset of
    the operations the real capture plans: a disk that is not blank never reads as blank, and a
    mangled blank capture is refused unless the edit changed nothing the decision reads."""
    lines = storage_lines(name)
    expected = storage_ops(DiskLayout().process(lines), kind)

    @FUZZ
    @given(st.data())
    def run(data) -> None:
        mangled = data.draw(mutated("\n".join(lines))).splitlines()
        CASES_RUN["storage"] += 1
        layout, _ = bounded(lambda: DiskLayout().process(mangled))
        json.dumps(layout)
        assert all(problem and "\n" not in problem for problem in layout["problems"])
        ops = storage_ops(layout, kind)
        if expected is None:
            assert ops is None, f"{name} is refused as captured but planned {ops} when mangled"
        else:
            assert ops is None or set(ops) <= set(expected), f"{name} mangled planned {ops}, not {expected}"

    run()


# --- the other facts/ parsers: the same int() and JSON-shape traps ----------------------------------

PHASE4 = Path(__file__).parents[1] / "deploys" / "phase4" / "fixtures"


def sh(command: str) -> list[str]:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60,
                          check=True).stdout.splitlines()


def model_probe_output(folder: Path) -> list[str]:
    """The GGUF probe's real output on a tiny GGUF (v3, one kv: general.architecture = deepseek2)."""
    key, val = b"general.architecture", b"deepseek2"
    head = (b"GGUF" + (3).to_bytes(4, "little") + (0).to_bytes(8, "little") + (1).to_bytes(8, "little")
            + len(key).to_bytes(8, "little") + key + (8).to_bytes(4, "little")
            + len(val).to_bytes(8, "little") + val)
    (folder / "m.gguf").write_bytes(head + bytes(4096 - len(head)))
    return sh(gguf.command(str(folder / "m.gguf")))


def judged_model(lines: list[str]) -> dict:
    probe = gguf.parse(lines)
    problems = gguf.judge_model(probe, 4096, "deepseek2", 0.1)
    assert all(isinstance(p, str) and "\n" not in p for p in problems)
    return {"probe": probe, "problems": problems}


def other_captures(tmp: Path) -> dict:
    """Real output per parser: phase 4 fixtures, the H200's /proc/meminfo, and two probes run here."""
    return {
        "JsonFile": (JsonFile().process,
                     (PHASE4 / "daemon-json-after-nvidia-ctk.json").read_text().splitlines()),
        "K3sVersions": (K3sVersions().process, [
            "binary=" + (PHASE4 / "k3s-version-v1.35.4.txt").read_text().splitlines()[1], "running:",
            *(PHASE4 / "apiserver-version-v1.35.0.json").read_text().splitlines()]),
        "MemInfo": (MemInfo().process, (HW / "h200-proc-meminfo.txt").read_text().splitlines()[2:]),
        "SpaceAt": (SpaceAt().process, sh(SpaceAt().command(str(tmp)))),
        "gguf": (judged_model, model_probe_output(tmp)),
    }


#: Before the fix each of these raised out of the fact (ValueError, RecursionError, TypeError).
@pytest.mark.parametrize(("call", "expected"), [
    (lambda: parse_space(["free=\u00b2", "hf=/usr/bin/hf"]), {"free": None, "hf": "/usr/bin/hf"}),
    (lambda: parse_space(["free=" + "9" * 5000]), {"free": None, "hf": None}),
    (lambda: parse_meminfo(["MemTotal: " + "9" * 5000 + " kB", "MemFree: 1 kB"]), {"MemFree": 1024}),
    (lambda: JsonFile().process(["[" * 100000]), {"__invalid__": "[" * 100000}),
    (lambda: K3sVersions().process(["binary=", "running:", '{"a":' * 100000]),
     {"binary": None, "running": None}),
    (lambda: K3sVersions().process(["binary=", "running:", "[1]"]), {"binary": None, "running": None}),
    (lambda: gguf.parse(['{"a":' * 100000])["error"], "no answer from python3 on the host"),
])
def test_other_fact_parsers_are_total(call, expected) -> None:
    assert call() == expected


@pytest.mark.parametrize("answer", [
    '{"exists": true, "files": [], "missing": [], "total_bytes": "4096", "architecture": null, '
    '"error": null}',
    '{"exists": true, "files": 5, "missing": [], "total_bytes": 4096, "architecture": null, "error": null}',
    '{"exists": 1, "files": [], "missing": [], "total_bytes": true, "architecture": null, "error": null}',
    '{"exists": true, "files": [null], "missing": [], "total_bytes": -1, "architecture": 7, "error": []}',
    '{"exists": true}',
])
def test_a_malformed_model_probe_answer_is_an_error_not_a_traceback(answer: str) -> None:
    judged = judged_model([answer])
    assert judged["probe"]["exists"] is None
    assert "the model probe's answer is malformed" in judged["probe"]["error"]
    assert judged["problems"] == ["model file absent"]


def test_other_captures_parse_unmutated(tmp_path: Path) -> None:
    parsed = {name: call(lines) for name, (call, lines) in other_captures(tmp_path).items()}
    assert parsed["JsonFile"]["runtimes"]["nvidia"]["path"] == "nvidia-container-runtime"
    assert parsed["K3sVersions"] == {"binary": "v1.35.4+k3s1", "running": "v1.35.0"}
    assert parsed["MemInfo"]["MemTotal"] == 131981020 * 1024
    assert isinstance(parsed["SpaceAt"]["free"], int)
    assert parsed["gguf"]["problems"] == [] and parsed["gguf"]["probe"]["architecture"] == "deepseek2"


@pytest.mark.parametrize("name", ["JsonFile", "K3sVersions", "MemInfo", "SpaceAt", "gguf"])
def test_fuzz_other_fact_parsers(name: str, tmp_path: Path) -> None:
    call, lines = other_captures(tmp_path)[name]

    @FUZZ
    @given(st.data())
    def run(data) -> None:
        mangled = data.draw(mutated("\n".join(lines))).splitlines()
        CASES_RUN["other"] += 1
        result, error = bounded(lambda: call(mangled))
        assert error is None
        json.dumps(result)

    run()


def test_fuzz_case_count(capsys) -> None:
    """Runs last in this module: how many mutated captures the two fuzz tests above tried."""
    total = sum(CASES_RUN.values())
    with capsys.disabled():
        print(f"\nfuzz: {CASES_RUN['parsers']} mutated captures through the parsers, "
              f"{CASES_RUN['facts']} through the facts' process(), {CASES_RUN['storage']} storage "
              f"layouts through DiskLayout.process() and the plan, {CASES_RUN['other']} through the other "
              f"facts/ parsers, {total} in all")
    if total:  # 0 when run alone (-k): nothing to count
        assert CASES_RUN["parsers"] >= EXAMPLES * len(CAPTURES) // 2
