"""The contacts stream: its schema, its first request, and its syncs against the fake over HTTP."""

from __future__ import annotations

import json
import subprocess

import pytest

from tap_heymarket.normalize import NormalizeReport, normalize_contact
from tap_heymarket.tap import TapHeymarket
from testbed.fake_heymarket import FakeHeymarket
from testbed.runs import is_bookmark_after_edits, run_tap, tap_command, tap_config

FAKE_CREDENTIALS = {"api_secret_id": "fake-secret-id", "api_secret_key": "fake-secret-key"}


def expected_records(fake: FakeHeymarket) -> dict[int, dict]:
    report = NormalizeReport()
    return {c["id"]: normalize_contact(c, report) for c in fake.contacts()}


def newest_updated(fake: FakeHeymarket) -> str:
    return max(record["updated"] for record in expected_records(fake).values())


def test_discovered_schema_types_every_vendor_field():
    catalog = TapHeymarket(config=FAKE_CREDENTIALS, setup_mapper=False).catalog_dict
    schema = catalog["streams"][0]["schema"]["properties"]
    types = {name: prop.get("type") for name, prop in schema.items()}

    assert json.dumps(catalog).count("fake-secret") == 0
    assert "integer" in types["id"] and "integer" in types["rev"]
    assert schema["updated"]["format"] == schema["created"]["format"] == "date-time"
    assert "array" in types["note"] and "items" not in schema["note"], "JSON arrays load as jsonb"
    assert "boolean" in types["shared"] and "object" in types["custom"]
    assert "array" in types["tags"]
    vendor_fields = {
        "avatar", "created", "creator_id", "custom", "display_name", "email", "external_id",
        "external_ref", "first", "id", "inbox_id", "last", "note", "op", "parent_id", "phone",
        "rev", "shared", "team_id", "type", "updated", "assigned_user_id", "tags",
    }  # fmt: skip
    assert vendor_fields <= set(schema)


@pytest.mark.parametrize(
    ("config", "state", "body"),
    [
        ({}, None, {"limit": 100, "page": 0, "ascending": True}),
        (
            {"page_size": 40, "start_date": "2024-03-01T12:00:00+02:00"},
            None,
            {"limit": 40, "page": 0, "ascending": True, "date": "2024-03-01T09:59:59Z"},
        ),
        (
            {"start_date": "2020-01-01T00:00:00Z"},
            {
                "bookmarks": {
                    "contacts": {
                        "replication_key": "updated",
                        "replication_key_value": "2024-06-30T08:15:42.123456Z",
                    }
                }
            },
            {"limit": 100, "page": 0, "ascending": True, "date": "2024-06-30T08:15:41Z"},
        ),
    ],
    ids=["all-history", "start-date-in-utc", "bookmark-beats-start-date"],
)
def test_first_request_body_follows_config_and_state(fake, config, state, body):
    run = run_tap(tap_config(fake, **config), state=state)

    assert run.returncode == 0, run.stderr
    assert fake.requests[0]["body"] == body


def test_full_sync_then_incremental_runs_emit_everything_once_then_only_changes(fake):
    first = run_tap(tap_config(fake))

    assert first.returncode == 0, first.stderr
    expected = expected_records(fake)
    assert {r["id"]: r for r in first.records} == expected
    assert len(first.records) == len(expected)
    assert first.bookmark == newest_updated(fake)

    second = run_tap(tap_config(fake), state=first.states[-1])
    assert second.returncode == 0, second.stderr
    assert all(r["updated"] == first.bookmark for r in second.records), "only the boundary"
    assert len(second.records) <= sum(
        1 for r in expected.values() if r["updated"] == first.bookmark
    )
    assert second.bookmark == first.bookmark

    changed = set(fake.update_contacts(7))
    third = run_tap(tap_config(fake), state=second.states[-1])
    assert third.returncode == 0, third.stderr
    boundary = {r["id"] for r in expected.values() if r["updated"] == first.bookmark}
    assert changed <= {r["id"] for r in third.records} <= changed | boundary
    current = expected_records(fake)
    assert all(r == current[r["id"]] for r in third.records)
    # The edits were made a moment before the run: the bookmark stops a whole second before the
    # run began, so that the next run reads again whatever was written around its start.
    assert is_bookmark_after_edits(third.bookmark, newest_updated(fake))


def test_state_is_emitted_every_few_pages_with_a_bookmark_that_never_runs_ahead(fake):
    run = run_tap(tap_config(fake, page_size=50))

    assert run.returncode == 0, run.stderr
    emitted_so_far: list[str] = []
    bookmarks = []
    for message in run.messages:
        if message["type"] == "RECORD" and message["stream"] == "contacts":
            emitted_so_far.append(message["record"]["updated"])
        elif message["type"] == "STATE":
            value = message["value"]["bookmarks"]["contacts"].get("replication_key_value")
            if value is not None:
                assert value == max(emitted_so_far), "bookmark must be the newest emitted updated"
                bookmarks.append(value)
    assert len(bookmarks) >= 1000 // (50 * 5), "a STATE at least every 5 pages"
    extracted = [
        m["time_extracted"]
        for m in run.messages
        if m["type"] == "RECORD" and m["stream"] == "contacts"
    ]
    assert extracted == sorted(extracted), "time_extracted is when the record's page arrived"
    contacts_requests = [r for r in fake.requests if r["path"] == "/v2/contacts/list"]
    assert 1 < len(set(extracted)) <= len(contacts_requests)


def test_start_date_applies_only_without_a_bookmark(fake):
    records = sorted(expected_records(fake).values(), key=lambda r: (r["updated"], r["id"]))
    middle = records[len(records) // 2]["updated"]

    run = run_tap(tap_config(fake, start_date=middle))

    assert run.returncode == 0, run.stderr
    assert {r["id"] for r in run.records} == {r["id"] for r in records if r["updated"] >= middle}


@pytest.mark.parametrize(
    ("exclusive", "tie_size", "latency"),
    [
        (False, 0, 0),
        (True, 0, 0),
        (False, 250, 0),
        (True, 250, 0),
        (False, 0, 0.05),
        (True, 250, 0.05),
    ],
    ids=[
        "date-inclusive",
        "date-exclusive",
        "inclusive-250-tie",
        "exclusive-250-tie",
        "requests-in-flight",
        "requests-in-flight-exclusive-250-tie",
    ],
)
def test_no_contact_is_lost_while_contacts_change_between_every_two_requests(
    exclusive, tie_size, latency
):
    with FakeHeymarket(
        contacts=900, seed=17, tie_groups=1 if tie_size else 0, tie_size=tie_size
    ) as fake:
        fake.date_exclusive = exclusive
        fake.date_precision = "second" if exclusive else "full"
        fake.latency = latency
        at_start = {c["id"]: c["updated"] for c in fake.contacts()}
        fake.changes_per_request = 4
        fake.creates_per_request = 1

        run = run_tap(tap_config(fake, page_size=30 if latency else 100))

        assert run.returncode == 0, run.stderr
        emitted = {r["id"] for r in run.records}
        changed = {c["id"] for c in fake.contacts() if at_start.get(c["id"]) != c["updated"]}
        missing = set(at_start) - emitted
        assert missing <= changed, "a contact unchanged since the start was lost"
        keys = [(r["updated"], r["id"]) for r in run.records]
        assert keys == sorted(keys)
        assert len(keys) == len(set(keys)), "a contact version is emitted once"
        if latency:
            assert fake.max_in_flight > 1, "a slow API gets several requests at once"
        # A contact changed during the run, once the run had passed it or not, is dated after
        # the run's start: the next run, from the bookmark, reads it.
        fake.changes_per_request = fake.creates_per_request = 0
        rerun = run_tap(tap_config(fake, page_size=100), state=run.states[-1])
        assert rerun.returncode == 0, rerun.stderr
        assert missing <= rerun.ids


def test_deselected_properties_and_stream_maps_still_apply(fake, tmp_path):
    catalog = TapHeymarket(config=FAKE_CREDENTIALS, setup_mapper=False).catalog_dict
    for entry in catalog["streams"][0]["metadata"]:
        if entry["breadcrumb"] == ["properties", "email"]:
            entry["metadata"]["selected"] = False
        if entry["breadcrumb"] == []:
            entry["metadata"]["selected"] = True
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))

    deselected = run_tap(tap_config(fake), "--catalog", str(tmp_path / "catalog.json"))
    mapped = run_tap(
        tap_config(
            fake, stream_maps={"contacts": {"phone": "__NULL__", "first_upper": "first.upper()"}}
        )
    )

    assert deselected.returncode == 0, deselected.stderr
    assert mapped.returncode == 0, mapped.stderr
    assert deselected.records and all("email" not in r for r in deselected.records)
    assert mapped.records
    for record in mapped.records:
        assert "phone" not in record
        assert record["first_upper"] == record["first"].upper()


def test_discovery_needs_no_config():
    done = subprocess.run(
        [*tap_command(), "--discover"], capture_output=True, text=True, check=False, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert sorted(s["tap_stream_id"] for s in json.loads(done.stdout)["streams"]) == [
        "contacts",
        "conversations",
        "custom_fields",
        "inboxes",
        "messages",
        "surveys",
        "tags",
        "team_members",
        "templates",
    ]
