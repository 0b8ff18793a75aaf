"""pyinfra's own fact-fixture idiom: one JSON per case under ``hardware.<Fact>/`` (command, output,
fact), turned into tests by pyinfra-testing. The outputs are real captures (see facts_fixture_cases.py).
"""

from __future__ import annotations

import json

import pytest
from facts_fixture_cases import CASES, HERE, build, fixture_path
from pyinfra_testing.facts import make_fact_tests

for _fact in CASES:
    globals()[f"TestFact{_fact}"] = make_fact_tests("facts", f"hardware.{_fact}", HERE / f"hardware.{_fact}")


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
