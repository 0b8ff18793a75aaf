"""bmc.targets: our BIOS targets -> the board's attributes, from host data."""

from __future__ import annotations

import pytest

from bmc.errors import BmcError
from bmc.targets import targets_from, wanted_attributes

MAP = {
    "pcie_link_speed": {"gen5": {"PCIS1LinkSpeed": "Gen5", "PCIS3LinkSpeed": "Gen5"}},
    "nps": {"4": {"CbsDfCmnDramNps": "NPS4"}, "1": {"CbsDfCmnDramNps": "NPS1"}},
    "memory_profile": {"expo2": {"AiOverclockTuner": "EXPO II"}},
}


def test_defaults_are_the_runbook_targets():
    assert targets_from({}) == {"pcie_link_speed": "gen5", "nps": 4, "memory_profile": "expo2"}


def test_one_target_overridden_or_switched_off():
    targets = targets_from({"bios_targets": {"nps": 1, "memory_profile": ""}})
    assert targets == {"pcie_link_speed": "gen5", "nps": 1}
    assert wanted_attributes(targets, MAP) == {
        "PCIS1LinkSpeed": "Gen5",
        "PCIS3LinkSpeed": "Gen5",
        "CbsDfCmnDramNps": "NPS1",
    }


def test_nps_zero_is_a_target_not_a_switch_off():
    assert targets_from({"bios_targets": {"nps": 0}})["nps"] == 0


def test_a_target_value_without_mapping_names_the_key_to_set():
    with pytest.raises(BmcError) as error:
        wanted_attributes({"nps": 2}, MAP)
    assert str(error.value).startswith("no BIOS attribute is mapped for nps=2: find it with")
    assert 'bios_attribute_map.nps."2"' in str(error.value)


def test_contradicting_mappings_are_refused():
    clash = MAP | {"memory_profile": {"expo2": {"CbsDfCmnDramNps": "NPS1"}}}
    with pytest.raises(BmcError, match="mapped to 'NPS4' by nps and to 'NPS1' by memory_profile"):
        wanted_attributes({"nps": 4, "memory_profile": "expo2"}, clash)


def test_display_labels_and_value_spelling_resolve_against_the_registry():
    from bmc.targets import REFERENCE_MAP, attribute_map_from, resolve_against_registry

    reg = {
        "AiOverclockTuner": {"display_name": "Ai Overclock Tuner", "allowed": ["Auto", "EXPO I", "EXPO II"]},
        "CbsCmnEarlyLinkSpeedSHP": {"display_name": "Early Link Speed", "allowed": ["Auto", "Gen5"]},
    }
    wanted = {"display:ai overclock tuner": "EXPO II", "CbsCmnEarlyLinkSpeedSHP": "GEN5", "Other": "x"}
    assert resolve_against_registry(wanted, reg) == {
        "AiOverclockTuner": "EXPO II",
        "CbsCmnEarlyLinkSpeedSHP": "Gen5",  # the registry's spelling of the same value
        "Other": "x",  # unknown plain names are left to bios.validate (near matches there)
    }
    with pytest.raises(BmcError, match=r"no attribute labelled 'Ai Overclock Tunr' \(near: Ai Overclock Tun"):
        resolve_against_registry({"display:Ai Overclock Tunr": "EXPO II"}, reg)
    twice = {**reg, "Dup": {"display_name": "Ai Overclock Tuner"}}
    with pytest.raises(BmcError, match=r"2 attributes \(AiOverclockTuner, Dup\)"):
        resolve_against_registry({"display:Ai Overclock Tuner": "EXPO II"}, twice)
    # a host's map replaces the reference map per target, keeping the others
    merged = attribute_map_from({"bios_attribute_map": {"nps": {"4": {"X": "NPS4"}}}})
    assert merged["nps"] == {"4": {"X": "NPS4"}}
    assert merged["pcie_link_speed"] == REFERENCE_MAP["pcie_link_speed"]
