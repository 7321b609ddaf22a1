"""Each stream's fields are declared once: its schema, typed decoder and normaliser follow them."""

from __future__ import annotations

from unittest import mock

import pytest

from tap_heymarket.fields import ACCOUNT_KEY, CONTACTS, Field, Kind, RecordSpec
from tap_heymarket.normalize import (
    NormalizeReport,
    decode_contacts,
    decode_records,
    normalize_record,
)
from tap_heymarket.tap import TapHeymarket

#: The one edit a new contact field takes: a line in the ``CONTACTS`` table.
NICKNAME = Field("nickname", Kind.STRING, "What they go by")
WITH_NICKNAME = RecordSpec(CONTACTS.noun, *CONTACTS.fields, NICKNAME)
PAGE = b'[{"id":1,"updated":"2024-01-01T00:00:00Z","nickname":"Al"}]'


def test_a_new_field_is_in_the_schema():
    properties = WITH_NICKNAME.json_schema()["properties"]

    assert properties["nickname"] == {"type": ["string", "null"], "description": "What they go by"}
    assert list(properties) == [*CONTACTS.json_schema()["properties"], "nickname"]


def test_a_new_field_is_read_by_the_typed_decoder_without_the_per_record_normaliser():
    with mock.patch("tap_heymarket.normalize._Codec.normalize", side_effect=AssertionError):
        records = decode_records(WITH_NICKNAME, PAGE, NormalizeReport())

    assert records == [{"id": 1, "updated": "2024-01-01T00:00:00.000000Z", "nickname": "Al"}]


def test_a_new_field_is_typed_by_the_normaliser():
    report = NormalizeReport()

    records = decode_records(
        WITH_NICKNAME, b'[{"id":1,"nickname":["Al"]},{"id":2,"nickname":7}]', report
    )

    assert records == [{"id": 1, "nickname": None}, {"id": 2, "nickname": "7"}]
    assert report.warnings == ["Contact 1: nickname is not text; replaced by null"]
    assert report.unknown_fields == set()


def test_a_field_not_declared_is_reported_and_left_out():
    report = NormalizeReport()

    records = decode_contacts(PAGE, report)

    assert records == [{"id": 1, "updated": "2024-01-01T00:00:00.000000Z"}]
    assert report.unknown_fields == {"nickname"}


def test_warnings_name_a_record_by_its_table_s_noun_and_its_id_wherever_declared():
    spec = RecordSpec("message", Field("date", Kind.TIMESTAMP), Field("id", Kind.INTEGER))
    report = NormalizeReport()

    normalize_record(spec, {"id": 5, "date": "soon"}, report)
    normalize_record(spec, {"date": "later"}, report)

    assert report.warnings == [
        "Message 5: date 'soon' is not an RFC 3339 date-time; replaced by null",
        "A message without a usable id: date 'later' is not an RFC 3339 date-time; "
        "replaced by null",
    ]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ((Field("id", Kind.INTEGER), Field("id", Kind.STRING)), "declared twice"),
        ((Field("id", Kind.STRING),), "id must be an integer"),
        ((Field("notes", Kind.OBJECT_ARRAY),), "an OBJECT_ARRAY, and only one, has items"),
        ((Field("text", Kind.STRING, items=(Field("a", Kind.STRING),)),), "and only one"),
        (
            (Field("notes", Kind.OBJECT_ARRAY, items=(Field("a", Kind.JSON_ARRAY),)),),
            "items are integers, text, booleans or timestamps",
        ),
    ],
)
def test_a_table_the_decoders_cannot_follow_is_refused(fields, problem):
    with pytest.raises(ValueError, match=problem):
        RecordSpec("thing", *fields)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ((Field("id", Kind.INTEGER, required=True, nullable=False),), "team_id: not a declared"),
        (
            (
                Field("id", Kind.INTEGER, required=True, nullable=False),
                Field("team_id", Kind.STRING, required=True, nullable=False),
            ),
            "team_id: not a declared integer field",
        ),
        (
            (Field("id", Kind.INTEGER), Field("team_id", Kind.INTEGER, required=True)),
            "must be required and never null",
        ),
    ],
)
def test_a_key_that_could_be_missing_or_null_is_refused(fields, problem):
    with pytest.raises(ValueError, match=problem):
        RecordSpec("thing", *fields, key=ACCOUNT_KEY)


def test_every_stream_is_keyed_by_its_account_and_id_as_its_table_declares():
    streams = TapHeymarket(config={"api_key": "k"}, validate_config=False).streams.values()
    for stream in streams:
        assert tuple(stream.primary_keys) == ACCOUNT_KEY == ("team_id", "id"), stream.name
        assert stream.schema["properties"]["team_id"]["type"] == ["integer"], stream.name
