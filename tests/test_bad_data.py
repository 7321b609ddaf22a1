"""Odd contacts from the API: coerced where safe, reported where not, never the end of a sync."""

from __future__ import annotations

import json
import re
import typing as t

import jsonschema
import pytest

from tap_heymarket.fields import CONTACTS
from testbed.fake_heymarket import FakeHeymarket
from testbed.runs import TapRun, run_tap, tap_config

LONG_NOTE = "Line one\n" + "x" * 1_000_000
ODD_TEXT = 'Zoë 🦄\u2028line\u2029sep\x01\x1f\x7f tab\there "quoted" \\ </script>'
#: id -> (raw contact, what must come out for the fields it checks).
ODD_CONTACTS: dict[int, tuple[dict, dict]] = {
    901: (
        {"id": "901", "updated": "2024-01-01T00:00:01Z", "shared": 1, "is_opted_out": 0},
        {"id": 901, "shared": True, "is_opted_out": False},
    ),
    902: (
        {"id": 902, "updated": "2024-01-01T00:00:02.123456789+02:00", "rev": "7", "team_id": 4.0},
        {"updated": "2023-12-31T22:00:02.123456Z", "rev": 7, "team_id": 4},
    ),
    903: (
        {"id": 903, "updated": "2024-01-01T00:00:03Z", "created": "0001-01-01T00:00:00Z"},
        {"created": None},
    ),
    904: (
        {"id": 904, "updated": "2024-01-01T00:00:04Z", "first": ODD_TEXT, "last": "a\x00b"},
        {"first": ODD_TEXT, "last": "ab"},
    ),
    905: (
        {
            "id": 905,
            "updated": "2024-01-01T00:00:05Z",
            "note": [{"text": LONG_NOTE, "date": "0001-01-01T00:00:00Z", "user_id": "3"}],
        },
        {"note": [{"text": LONG_NOTE, "date": None, "user_id": 3}]},
    ),
    906: (
        {
            "id": 906,
            "updated": "2024-01-01T00:00:06Z",
            "brand_new_field": {"nested": [1, 2]},
            "first": None,
            "email": 12345,
            "rev": "not a number",
            "custom": ["not", "an", "object"],
            "tags": "vip",
        },
        {"first": None, "email": "12345", "rev": None, "custom": None, "tags": ["vip"]},
    ),
    907: ({"id": 907}, {"updated": None}),
    908: ({"id": 908, "updated": None}, {"updated": None}),
    909: ({"id": 909, "updated": "last tuesday"}, {"updated": None}),
}


@pytest.fixture(scope="module")
def odd_run() -> tuple[FakeHeymarket, TapRun]:
    with FakeHeymarket(contacts=300, seed=21) as fake:
        for raw, _ in ODD_CONTACTS.values():
            fake.add_raw(raw)
        fake.add_raw({"first": "Nobody", "updated": "2024-01-01T00:00:10Z"})
        run = run_tap(tap_config(fake, page_size=50))
    return fake, run


def test_odd_contacts_are_coerced_into_valid_singer_json_without_stopping_the_sync(odd_run):
    fake, run = odd_run
    assert run.returncode == 0, run.stderr

    schema = next(m["schema"] for m in run.messages if m["type"] == "SCHEMA")
    by_id = {record["id"]: record for record in run.records}
    for record in run.records:
        jsonschema.validate(record, schema)
        assert set(record) <= CONTACTS.names
    for contact_id, (_, expected) in ODD_CONTACTS.items():
        assert {name: by_id[contact_id][name] for name in expected} == expected
    normal = {c["id"] for c in fake.contacts() if isinstance(c.get("id"), int) and c["id"] > 1000}
    assert normal <= set(by_id) and len(normal) == 300
    assert "brand_new_field" in run.stderr, "unknown fields are named in the log"
    assert re.search(r"synced as null: .*rev: 1", run.stderr)


def test_contacts_without_id_or_updated_are_reported_never_silently_dropped(odd_run):
    _, run = odd_run
    assert run.returncode == 0, run.stderr

    undated = [line for line in run.stderr.splitlines() if "no usable updated time" in line]
    assert len(undated) == 1 and "3 contacts" in undated[0]
    assert all(str(contact_id) in undated[0] for contact_id in (907, 908, 909))
    unkeyed = [line for line in run.stderr.splitlines() if "no usable id" in line]
    assert len(unkeyed) == 1 and "1 contacts" in unkeyed[0] and "page=" in unkeyed[0]
    assert "ERROR" in unkeyed[0]


#: Date-times that leave the range of a date-time once converted to UTC: id -> (raw contact,
#: what must come out for the fields it checks).
OUT_OF_RANGE_TIMES: dict[int, tuple[dict, dict]] = {
    951: ({"id": 951, "updated": "9999-12-31T23:59:59-01:00"}, {"updated": None}),
    952: (
        {"id": 952, "updated": "2024-01-01T00:00:22Z", "created": "0001-01-01T00:30:00+01:00"},
        {"created": None},
    ),
    953: (
        {
            "id": 953,
            "updated": "2024-01-01T00:00:23Z",
            "note": [{"date": "9999-12-31T23:59:59-01:00", "text": "hi", "user_id": 3}],
        },
        {"note": [{"date": None, "text": "hi", "user_id": 3}]},
    ),
}
#: Integers no signed 64-bit column can hold, next to the extremes one can.
BIG_INTEGERS: dict[int, tuple[dict, dict]] = {
    954: (
        {
            "id": 954,
            "updated": "2024-01-01T00:00:24Z",
            "creator_id": 2**63,
            "team_id": -(2**63) - 1,
            "inbox_id": 2**63 - 1,
            "parent_id": -(2**63),
        },
        # team_id, a key, is then the account's (the fake's GET /v1/team).
        {"creator_id": None, "team_id": 4242, "inbox_id": 2**63 - 1, "parent_id": -(2**63)},
    ),
    955: (
        {"id": 955, "updated": "2024-01-01T00:00:25Z", "note": [{"text": "hi", "user_id": 2**64}]},
        {"note": [{"text": "hi", "user_id": None}]},
    ),
}
TOO_BIG_ID = 2**63
#: Contacts whose JSON holds text that is not Unicode, as the fake stores it: id -> (JSON, what
#: must come out). A lone surrogate character goes out as the invalid UTF-8 bytes ED A0 80 (or
#: ED B2 80); ``\ud800`` is the six-character JSON escape.
BAD_TEXT: dict[int, tuple[str, dict]] = {
    961: (
        '{"id":961,"updated":"2024-01-01T00:00:31Z","first":"Ann\ud800e"}',
        {"first": "Ann\ufffde"},
    ),
    962: (
        '{"id":962,"updated":"2024-01-01T00:00:32Z","last":"Lee\\ud800",'
        '"custom":{"12":"gold\\udfff"},"display_name":"\\ud83e\\udd84"}',
        {"last": "Lee\ufffd", "custom": {"12": "gold\ufffd"}, "display_name": "🦄"},
    ),
    963: (
        '{"id":963,"updated":"2024-01-01T00:00:33Z","first":"\ufffd kept",'
        '"note":[{"text":"x\udc80y","user_id":3}]}',
        {"first": "\ufffd kept", "note": [{"text": "x\ufffdy", "user_id": 3}]},
    ),
}

#: Numbers no float or Python integer can hold (more than 4,300 characters), in typed fields and
#: in free-form JSON: id -> (JSON, what must come out). ``unknown`` is no schema field: dropped.
HUGE_INTEGER = "1" * 4301
TOO_BIG_NUMBERS: dict[int, tuple[str, dict]] = {
    971: (
        '{"id":971,"updated":"2024-01-01T00:00:51Z","rev":1e400,"creator_id":'
        + HUGE_INTEGER
        + ',"first":"Ann","unknown":-1E+400}',
        {"rev": None, "creator_id": None, "first": "Ann"},
    ),
    972: (
        '{"id":972,"updated":"2024-01-01T00:00:52Z","custom":{"12":-1e400,"13":"gold",'
        '"14":[7,1e999]},"tags":["vip",-' + "9" * 5000 + "]}",
        {"custom": {"12": None, "13": "gold", "14": [7, None]}, "tags": ["vip", None]},
    ),
    973: (
        '{"id":973,"updated":"2024-01-01T00:00:53Z","email":"1e400",'
        '"note":[{"text":"hi","user_id":1e400},{"text":1' + "0" * 400 + ".5}]}",
        {"email": "1e400", "note": [{"text": "hi", "user_id": None}, {"text": None}]},
    ),
}
#: A contact whose id itself is such a number: it cannot be keyed, so it is reported.
TOO_BIG_NUMBER_ID = '{"id":1e400,"updated":"2024-01-01T00:00:54Z","first":"Huge id"}'


def _run_with(
    *raw: dict,
    raw_json: dict[int, tuple[str, dict]] | None = None,
    unkeyed_json: tuple[str, ...] = (),
) -> TapRun:
    """A sync of 300 ordinary contacts plus ``raw`` ones, ``raw_json`` ones and ``unkeyed_json``
    ones (exact JSON of contacts without an integer id)."""
    with FakeHeymarket(contacts=300, seed=22) as fake:
        ordinary = {contact["id"] for contact in fake.contacts()}  # before any it cannot parse
        for contact in raw:
            fake.add_raw(contact)
        for contact_id, (text, _) in (raw_json or {}).items():
            fake.add_raw_json(text, _updated(text), contact_id)
        for text in unkeyed_json:
            fake.add_raw_json(text, _updated(text), None)
        run = run_tap(tap_config(fake, page_size=50))
    assert ordinary - {TOO_BIG_ID} <= run.ids, "every other contact synced"
    return run


def _updated(text: str) -> str:
    """The ``updated`` of one contact's JSON (integers kept as text: some are too long)."""
    return json.loads(text, parse_int=str)["updated"]


@pytest.fixture(scope="module")
def out_of_range_times_run() -> TapRun:
    return _run_with(*(raw for raw, _ in OUT_OF_RANGE_TIMES.values()))


@pytest.fixture(scope="module")
def big_integers_run() -> TapRun:
    return _run_with(
        *(raw for raw, _ in BIG_INTEGERS.values()),
        {"id": TOO_BIG_ID, "updated": "2024-01-01T00:00:41Z", "first": "Big"},
    )


@pytest.fixture(scope="module")
def bad_text_run() -> TapRun:
    return _run_with(raw_json=BAD_TEXT)


@pytest.fixture(scope="module")
def too_big_numbers_run() -> TapRun:
    return _run_with(raw_json=TOO_BIG_NUMBERS, unkeyed_json=(TOO_BIG_NUMBER_ID,))


def _warnings(run: TapRun, contact_id: int | str, field: str) -> list[str]:
    """WARNING lines naming both the contact and the field."""
    return [
        line
        for line in run.stderr.splitlines()
        if "WARNING" in line and f"ontact {contact_id}:" in line and f" {field} " in line
    ]


def _check_synced(run: TapRun, expected: dict[int, tuple[t.Any, dict]]) -> None:
    """The run completed with a bookmark, and each contact's checked fields came out as expected."""
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and "retry " not in run.stderr
    assert run.bookmark is not None
    by_id = {record["id"]: record for record in run.records}
    for contact_id, (_, fields) in expected.items():
        assert {name: by_id[contact_id][name] for name in fields} == fields


def test_date_times_out_of_range_in_utc_become_null_with_a_warning(out_of_range_times_run):
    run = out_of_range_times_run
    _check_synced(run, OUT_OF_RANGE_TIMES)

    for contact_id, field in [(951, "updated"), (952, "created"), (953, "note[].date")]:
        assert _warnings(run, contact_id, field), f"no warning for {field} of {contact_id}"
    undated = [line for line in run.stderr.splitlines() if "no usable updated time" in line]
    assert len(undated) == 1 and "951" in undated[0], "reported like any contact without a time"


def test_integers_beyond_64_bits_become_null_with_a_warning(big_integers_run):
    run = big_integers_run
    _check_synced(run, BIG_INTEGERS)

    for contact_id, field in [(954, "creator_id"), (954, "team_id"), (955, "note[].user_id")]:
        assert _warnings(run, contact_id, field), f"no warning for {field} of {contact_id}"
    assert not _warnings(run, 954, "inbox_id") and not _warnings(run, 954, "parent_id")

    def integers(value: object) -> list[int]:
        if isinstance(value, dict):
            return [i for v in value.values() for i in integers(v)]
        if isinstance(value, list):
            return [i for v in value for i in integers(v)]
        return [value] if type(value) is int else []

    assert all(-(2**63) <= i < 2**63 for record in run.records for i in integers(record))


def test_an_id_beyond_64_bits_is_reported_as_a_contact_without_a_usable_id(big_integers_run):
    run = big_integers_run
    assert run.returncode == 0, run.stderr

    assert TOO_BIG_ID not in run.ids and "Big" not in {r.get("first") for r in run.records}
    unkeyed = [line for line in run.stderr.splitlines() if "no usable id" in line]
    assert len(unkeyed) == 1 and "ERROR" in unkeyed[0] and "1 contacts" in unkeyed[0]
    assert _warnings(run, "without a usable id", "id")


def test_text_that_is_not_unicode_gets_the_replacement_character_with_a_warning(bad_text_run):
    run = bad_text_run
    _check_synced(run, BAD_TEXT)

    for contact_id, field in [(961, "first"), (962, "last"), (962, "custom"), (963, "note")]:
        assert _warnings(run, contact_id, field), f"no warning for {field} of {contact_id}"
    assert not _warnings(run, 962, "display_name"), "a valid surrogate pair is good text"
    assert not _warnings(run, 963, "first"), "a U+FFFD Heymarket sent is not a repair"


def test_numbers_too_large_to_read_become_null_with_a_warning(too_big_numbers_run):
    run = too_big_numbers_run
    _check_synced(run, TOO_BIG_NUMBERS)

    for contact_id, field in [
        (971, "rev"),
        (971, "creator_id"),
        (972, "custom"),
        (972, "tags"),
        (973, "note[].user_id"),
        (973, "note[].text"),
    ]:
        assert _warnings(run, contact_id, field), f"no warning for {field} of {contact_id}"
    assert len(_warnings(run, 972, "custom")) == 2, "one warning per value"
    assert not _warnings(run, 971, "unknown"), "a field that is not synced loses nothing"
    assert not _warnings(run, 973, "email")
    assert "unknown" in run.stderr, "still named as a field the schema lacks"
    assert re.search(r"synced as null: .*creator_id: 1.*rev: 1", run.stderr)
    unkeyed = [line for line in run.stderr.splitlines() if "no usable id" in line]
    assert len(unkeyed) == 1 and "ERROR" in unkeyed[0] and "1 contacts" in unkeyed[0]
    assert _warnings(run, "without a usable id", "id")
    assert "Huge id" not in {record.get("first") for record in run.records}


@pytest.mark.parametrize("start_date", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+01:00"])
def test_a_start_date_out_of_range_fails_in_one_line_naming_it_before_any_request(start_date):
    with FakeHeymarket(contacts=10, seed=23) as fake:
        run = run_tap(tap_config(fake, start_date=start_date))

    assert run.returncode != 0
    assert fake.requests == []
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert errors and errors[0].split("| ")[-1].startswith("start_date:"), run.stderr
    assert sum("start_date" in line for line in run.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("bookmark", "problem"),
    [
        ("garbage", "is not an RFC 3339 date-time"),
        ("99999-01-01T00:00:00Z", "is not an RFC 3339 date-time"),
        ("9999-12-31T23:59:59-01:00", "is out of range once converted to UTC"),
        (20240101, "is not an RFC 3339 date-time"),
        ("2999-01-01T00:00:00Z", "is in the future"),
    ],
)
def test_an_unusable_bookmark_in_the_state_fails_in_one_line_naming_the_state(bookmark, problem):
    state = {
        "bookmarks": {"contacts": {"replication_key": "updated", "replication_key_value": bookmark}}
    }
    with FakeHeymarket(contacts=10, seed=24) as fake:
        run = run_tap(tap_config(fake), state=state)

    assert run.returncode != 0
    assert fake.requests == []
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if "Sync failed" in line]
    assert len(errors) == 1, run.stderr
    assert f"Sync failed: state: the contacts bookmark {bookmark!r} {problem}" in errors[0]
    assert errors[0].endswith("; fix or clear the state")
