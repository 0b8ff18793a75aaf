"""pyinfra's own fact-fixture idiom: one JSON per case under ``hardware.<Fact>/`` (command, output,
fact). The outputs are real captures (see facts_fixture_cases.py).

Why not ``pyinfra_testing.make_fact_tests``: it imports ``pyinfra_cli``, whose ``__init__`` runs
gevent's ``monkey.patch_all()`` in the whole pytest process, turning every other test's threads and
sockets (the bench's load generator, the Redfish emulator) into greenlets. The loop below does what
it does: same JSON, same checks (command string, ``process`` of the output lines == ``fact``).
"""

from __future__ import annotations

import json

import pytest
from facts_fixture_cases import CASES, HERE, build, fixture_path
from pyinfra.api import StringCommand

from facts import hardware


@pytest.mark.parametrize(("fact", "case"), [(fact, case) for fact, cases in CASES.items() for case in cases])
def test_fact_fixture(fact: str, case: str) -> None:
    data = json.loads(fixture_path(fact, case).read_text())
    instance = getattr(hardware, fact)()
    assert StringCommand(instance.command()).get_raw_value() == data["command"]
    output = data["output"].splitlines() if isinstance(data["output"], str) else data["output"]
    got = json.loads(json.dumps(instance.process(output)))
    assert got == data["fact"]


@pytest.mark.parametrize(("fact", "case"), [(fact, case) for fact, cases in CASES.items() for case in cases])
def test_fixture_matches_its_capture(fact: str, case: str) -> None:
    """Fixture outputs are the capture files verbatim; regenerate with facts_fixture_cases.py if not."""
    stored = json.loads(fixture_path(fact, case).read_text())
    fresh = build(fact, case)
    assert stored["output"] == fresh["output"]
    assert stored["command"] == fresh["command"]


def test_every_fixture_file_is_a_known_case() -> None:
    on_disk = {(path.parent.name.removeprefix("hardware."), path.stem)
               for path in HERE.glob("hardware.*/*.json")}
    assert on_disk == {(fact, case) for fact, cases in CASES.items() for case in cases}
