"""deploys/bmc/iso_record.py: the verified-ISO record the BMC phases check before booting an image."""

import json

import pytest

from deploys.bmc import iso_record

SHA = "a" * 64
ENTRY = {
    "name": "ubuntu.iso",
    "url": "https://example.invalid/ubuntu.iso",
    "served_url": "http://192.0.2.5:8080/ubuntu.iso",
    "sha256": SHA.upper(),
    "size_bytes": "1024",
}


def test_round_trip_by_name_and_urls(tmp_path):
    path = tmp_path / "rec.json"
    row = iso_record.record_verified(ENTRY, path)
    assert row["sha256"] == SHA and row["size_bytes"] == 1024 and row["verified_at"]
    for key in ("ubuntu.iso", ENTRY["url"], ENTRY["served_url"]):
        assert iso_record.require_verified(key, SHA, path)["name"] == "ubuntu.iso"
    assert json.loads(path.read_text())["version"] == 1
    assert not list(tmp_path.glob(".rec.json.*")), "temporary file left behind"


def test_unrecorded_and_mismatched_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("OMNI_ISO_RECORD", str(tmp_path / "env.json"))
    with pytest.raises(iso_record.IsoRecordError, match=r"not recorded as verified .*env.json: run phase 0"):
        iso_record.require_verified("ubuntu.iso")
    iso_record.record_verified(ENTRY)
    with pytest.raises(iso_record.IsoRecordError, match="differs from the verified"):
        iso_record.require_verified("ubuntu.iso", "b" * 64)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("sha256", "xyz", "not 64 hex digits"), ("sha256", None, "lacks sha256"), ("url", "", "lacks url")],
)
def test_bad_entries_are_refused(tmp_path, field, value, message):
    with pytest.raises(iso_record.IsoRecordError, match=message):
        iso_record.record_verified(dict(ENTRY, **{field: value}), tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


def test_corrupt_record_names_the_fix(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{not json")
    with pytest.raises(iso_record.IsoRecordError, match=r"unreadable .*delete it, rerun phase 0"):
        iso_record.load(path)
