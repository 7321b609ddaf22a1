"""Records follow the schema the tap announces: a narrowed catalog, flattening."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tap_heymarket.normalize import NormalizeReport, normalize_contact
from testbed.fake_heymarket import FakeHeymarket
from testbed.runs import TapRun, run_tap, tap_config


def discovered_catalog(fake: FakeHeymarket) -> dict[str, Any]:
    """The catalog ``--discover`` prints, as a user would save and edit it."""
    discovery = run_tap(tap_config(fake), "--discover")
    assert discovery.returncode == 0, discovery.stderr
    return json.loads(discovery.stdout)


def run_with_catalog(fake: FakeHeymarket, catalog: dict[str, Any], path: Path) -> TapRun:
    path.write_text(json.dumps(catalog))
    run = run_tap(tap_config(fake), "--catalog", str(path))
    assert run.returncode == 0, run.stderr
    assert run.records
    return run


def undeclared_keys(run: TapRun) -> set[str]:
    """Record keys that no SCHEMA message of the run declares: what a target drops."""
    declared = {
        name
        for message in run.messages
        if message["type"] == "SCHEMA"
        for name in message["schema"]["properties"]
    }
    return {key for record in run.records for key in record} - declared


def test_a_catalog_that_leaves_out_a_property_gets_records_without_it(fake, tmp_path):
    catalog = discovered_catalog(fake)
    unchanged = run_with_catalog(fake, catalog, tmp_path / "discovered.json")
    del catalog["streams"][0]["schema"]["properties"]["custom"]
    narrowed = run_with_catalog(fake, catalog, tmp_path / "narrowed.json")

    assert all("custom" in record for record in unchanged.records)
    assert not any("custom" in record for record in narrowed.records)
    assert undeclared_keys(narrowed) == set()
    assert [r["id"] for r in narrowed.records] == [r["id"] for r in unchanged.records]
    assert narrowed.bookmark == unchanged.bookmark


def test_a_catalog_of_a_few_properties_still_moves_the_bookmark_it_leaves_out(fake, tmp_path):
    catalog = discovered_catalog(fake)
    stream = catalog["streams"][0]
    kept = ("id", "phone")
    stream["schema"]["properties"] = {name: stream["schema"]["properties"][name] for name in kept}
    run = run_with_catalog(fake, catalog, tmp_path / "narrowed.json")

    assert all(set(record) == set(kept) for record in run.records)
    assert len(run.ids) == len(fake.contacts())
    report = NormalizeReport()
    assert run.bookmark == max(normalize_contact(c, report)["updated"] for c in fake.contacts())


@pytest.mark.parametrize("depth", [1, 3])
def test_flattened_records_keep_custom_fields_note_and_tags_as_declared_json(fake, depth):
    run = run_tap(tap_config(fake, flattening_enabled=True, flattening_max_depth=depth))

    assert run.returncode == 0, run.stderr
    assert run.records
    assert undeclared_keys(run) == set()
    report = NormalizeReport()
    expected = {c["id"]: normalize_contact(c, report) for c in fake.contacts()}
    assert any(expected[record["id"]]["custom"] for record in run.records)
    for record in run.records:
        contact = expected[record["id"]]
        for name in ("custom", "note", "tags"):
            value = record[name]
            assert (None if value is None else json.loads(value)) == contact[name], name
