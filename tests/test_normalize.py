"""Property-based and unit tests of the normalisers every value passes through
(``tap_heymarket.normalize``): timestamps, records, and pages decoded whole."""

from __future__ import annotations

import datetime
import json
import re
from unittest import mock

import jsonschema
import msgspec
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from tap_heymarket.fields import CONTACTS, Field, Kind, RecordSpec
from tap_heymarket.normalize import (
    TIMESTAMP_FORMAT,
    InvalidTimestampError,
    NormalizeReport,
    decode_contacts,
    decode_records,
    normalize_contact,
    normalize_record,
    normalize_timestamp,
)
from tap_heymarket.streams import ContactsStream

_OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59)
_INSTANTS = st.datetimes(
    min_value=datetime.datetime(1000, 1, 2, 1, 0),
    max_value=datetime.datetime(9999, 12, 30, 22, 0),
    timezones=st.just(datetime.timezone.utc),
)


def _rfc3339(instant: datetime.datetime, offset_minutes: int, digits: int, nanos: int) -> str:
    """``instant`` written with an offset and ``digits`` fractional digits (Go-style)."""
    local = instant.astimezone(datetime.timezone(datetime.timedelta(minutes=offset_minutes)))
    fraction = f"{local.microsecond:06d}{nanos:03d}"[:digits]
    sign = "+" if offset_minutes >= 0 else "-"
    zone = (
        "Z"
        if offset_minutes == 0
        else f"{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"
    )
    return local.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if digits else "") + zone


@settings(max_examples=300, deadline=None)
@given(
    instant=_INSTANTS,
    other=_INSTANTS,
    offset=_OFFSETS,
    digits=st.integers(0, 9),
    nanos=st.integers(0, 999),
)
def test_timestamp_normaliser_keeps_the_instant_to_the_microsecond_and_its_order(
    instant, other, offset, digits, nanos
):
    text = _rfc3339(instant, offset, digits, nanos)
    normalised = normalize_timestamp(text)

    assert normalised is not None and len(normalised) == 27
    parsed = datetime.datetime.strptime(normalised, TIMESTAMP_FORMAT).replace(
        tzinfo=datetime.timezone.utc
    )
    kept = 10 ** (6 - min(digits, 6))
    assert parsed == instant.replace(microsecond=instant.microsecond // kept * kept)
    assert normalize_timestamp(normalised) == normalised
    other_text = normalize_timestamp(_rfc3339(other, 0, 6, 0))
    if digits >= 6:
        assert (normalised < other_text) == (instant < other)


def test_timestamps_before_the_year_1000_keep_the_fixed_width_form():
    assert normalize_timestamp("0999-01-01T00:00:00+01:00") == "0998-12-31T23:00:00.000000Z"


@pytest.mark.parametrize(
    "value", ["9999-12-31T23:59:59-01:00", "9999-12-31T12:00:00-23:59", "0001-01-01T00:30:00+01:00"]
)
def test_date_times_out_of_range_once_in_utc_are_refused_with_the_normalisers_own_error(value):
    with pytest.raises(InvalidTimestampError, match="out of range once converted to UTC"):
        normalize_timestamp(value)


def test_go_zero_time_is_still_unset_in_any_offset_that_stays_in_range():
    assert normalize_timestamp("0001-01-01T00:00:00Z") is None
    assert normalize_timestamp("0001-01-01T00:00:00-05:00") is None


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.integers(), st.floats(), st.booleans(), st.none()))
def test_timestamp_normaliser_refuses_what_it_cannot_read_with_its_own_error(value):
    try:
        result = normalize_timestamp(value)
    except InvalidTimestampError:
        return
    assert result is None or re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", result)


def _arrays_and_objects_of(inner: st.SearchStrategy) -> st.SearchStrategy:
    """JSON arrays and objects of ``inner``: how ``st.recursive`` nests JSON values. A function,
    not a lambda, so that Hypothesis reads in its source that it uses its argument."""
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    _arrays_and_objects_of,
    max_leaves=12,
)


def _field_names(spec: RecordSpec) -> st.SearchStrategy:
    """The names of ``spec``'s fields, and others."""
    return st.sampled_from(sorted(spec.names)) | st.text(max_size=12)


def _loose_items(spec: RecordSpec) -> st.SearchStrategy:
    """What an ``OBJECT_ARRAY`` of ``spec`` might hold: objects with its items' keys and others,
    in any order, holding any JSON."""
    names = sorted({item.name for field in spec.fields for item in field.items} | {"x"})
    return st.lists(st.dictionaries(st.sampled_from(names), _JSON), max_size=3)


_FIELD_NAMES = _field_names(CONTACTS)
_NOTES = _loose_items(CONTACTS)


def _nullable(schema: dict) -> dict:
    """The stream schema as the normaliser alone must meet: the key and ``updated`` may be absent
    or null (the stream fills in ``updated`` and the account's ``team_id``, and drops, reporting
    them, contacts without ``id``)."""
    schema = json.loads(json.dumps(schema))
    for key in CONTACTS.key:
        schema["properties"][key]["type"] = [*schema["properties"][key]["type"], "null"]
    schema["required"] = []
    return schema


_SCHEMA = _nullable(ContactsStream.schema)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_FIELD_NAMES, _JSON | _NOTES, max_size=14))
def test_record_normaliser_always_returns_a_schema_valid_json_record(raw):
    report = NormalizeReport()
    record = normalize_contact(raw, report)

    jsonschema.validate(record, _SCHEMA)
    assert set(record) == set(raw) & CONTACTS.names, "no field invented, no known field dropped"
    assert "\\u0000" not in json.dumps(record), "PostgreSQL cannot store NUL"
    assert report.unknown_fields == set(raw) - CONTACTS.names


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "id": st.integers(1, 2**53),
            "rev": st.integers(0, 2**31),
            "shared": st.booleans(),
            "first": st.text(),
            "updated": _INSTANTS.map(lambda instant: _rfc3339(instant, 0, 6, 0)),
        }
    ),
    st.booleans(),
)
def test_record_normaliser_coerces_stringly_and_numeric_encodings_to_the_same_values(clean, encode):
    raw = dict(clean)
    if encode:
        raw.update(id=str(clean["id"]), rev=float(clean["rev"]), shared=int(clean["shared"]))
    report = NormalizeReport()
    record = normalize_contact(raw, report)

    assert record["id"] == clean["id"] and record["rev"] == clean["rev"]
    assert record["shared"] is clean["shared"]
    assert record["first"] == clean["first"].replace("\x00", "")
    assert report.nulled == {}


@pytest.mark.parametrize(
    "value", [2**63, -(2**63) - 1, 2.0**64, str(2**63), "+-5", "\u00b2", "1" * 5000]
)
def test_integer_fields_null_what_is_no_signed_64_bit_integer_naming_field_and_contact(value):
    report = NormalizeReport()

    record = normalize_contact({"id": 5, "rev": value, "note": [{"user_id": value}]}, report)

    assert record == {"id": 5, "rev": None, "note": [{"user_id": None}]}
    assert report.nulled == {"rev": 1, "note[].user_id": 1}
    assert len(report.warnings) == 2
    assert report.warnings[0].startswith("Contact 5: rev ")
    assert report.warnings[1].startswith("Contact 5: note[].user_id ")


def test_an_id_that_is_no_signed_64_bit_integer_leaves_the_contact_without_one():
    report = NormalizeReport()

    record = normalize_contact({"id": 2**63, "rev": "x"}, report)

    assert record == {"id": None, "rev": None}
    assert report.warnings[0].startswith("A contact without a usable id: id does not fit")
    assert report.warnings[1].startswith("A contact without a usable id: rev ")


_REPAIRED = "Contact 1: first held bytes or escapes that are not Unicode text; replaced by U+FFFD"


@pytest.mark.parametrize(
    ("written", "read"),
    [
        (b"Ann\xed\xa0\x80e", "Ann\ufffde"),  # a lone surrogate as (invalid) UTF-8
        (b"a\xffb\xc3", "a\ufffdb\ufffd"),  # a byte no UTF-8 has, a sequence cut short
        (b"Ann\\ud800e", "Ann\ufffde"),  # a lone surrogate as a JSON escape
        (b"\\uDFFF\\ud800\\u0041", "\ufffd\ufffdA"),  # low then high: both lone
        (b"\\\\ud800 \xff", "\\ud800 \ufffd"),  # an escaped backslash: text, no escape
        (b"\\ud83e\\udd84 \\ud800", "\U0001f984 \ufffd"),  # a surrogate pair is good text
    ],
)
def test_text_that_is_not_unicode_is_read_with_the_replacement_character(written, read):
    other = '{"id":2,"first":"sent as \ufffd"}'.encode()
    content = b'[{"id":1,"first":"' + written + b'"},' + other + b"]"
    report = NormalizeReport()

    records = decode_contacts(content, report)

    assert records == [{"id": 1, "first": read}, {"id": 2, "first": "sent as \ufffd"}]
    assert report.warnings == [_REPAIRED], "only the repaired value is reported"


def test_repaired_text_in_keys_field_names_and_quoted_values_shows_the_replacement_character():
    content = b'[{"id":1,"custom":{"k\xff":"v"},"new\xff":1,"updated":"2024\xff"}]'
    report = NormalizeReport()

    records = decode_contacts(content, report)

    assert records == [{"id": 1, "updated": None, "custom": {"k\ufffd": "v"}}]
    assert report.unknown_fields == {"new\ufffd"}
    assert report.warnings == [
        "Contact 1: updated '2024\ufffd' is not an RFC 3339 date-time; replaced by null",
        "Contact 1: custom held bytes or escapes that are not Unicode text; replaced by U+FFFD",
    ]


@pytest.mark.parametrize("content", [b'[{"id":1,"first":"a\xff"', b"\xff[]", b"<html>\xff"])
def test_a_page_unreadable_even_with_its_text_repaired_is_refused_for_a_retry(content):
    assert decode_contacts(content, NormalizeReport()) is None


_TOO_BIG = "a number too large to read"


@pytest.mark.parametrize(
    ("written", "read", "warnings"),
    [
        (b'"rev":1e400', {"rev": None}, [f"rev is 1e400, {_TOO_BIG}; replaced by null"]),
        (
            b'"creator_id":-' + b"9" * 4300,
            {"creator_id": None},
            [f"creator_id is -99999999999... (4300 digits), {_TOO_BIG}; replaced by null"],
        ),
        (b'"first":1E+400', {"first": None}, [f"first is 1E+400, {_TOO_BIG}; replaced by null"]),
        (b'"shared":1e400', {"shared": None}, [f"shared is 1e400, {_TOO_BIG}; replaced by null"]),
        (
            b'"updated":-1e400',
            {"updated": None},
            [f"updated is -1e400, {_TOO_BIG}; replaced by null"],
        ),
        (
            b'"custom":{"a":{"b":[1e400,2]},"c":1e999}',
            {"custom": {"a": {"b": [None, 2]}, "c": None}},
            [
                f"custom holds 1e400, {_TOO_BIG}; that value replaced by null",
                f"custom holds 1e999, {_TOO_BIG}; that value replaced by null",
            ],
        ),
        (b'"custom":1e400', {"custom": None}, [f"custom is 1e400, {_TOO_BIG}; replaced by null"]),
        (b'"custom":[1e400]', {"custom": None}, ["custom is not an object; replaced by null"]),
        (
            b'"tags":[1e400,"vip"]',
            {"tags": [None, "vip"]},
            [f"tags holds 1e400, {_TOO_BIG}; that value replaced by null"],
        ),
        (b'"tags":1e400', {"tags": None}, [f"tags is 1e400, {_TOO_BIG}; replaced by null"]),
        (
            b'"note":[{"user_id":1e400,"text":"hi","x":1e400},1e400,{"text":[1e400]}]',
            {"note": [{"user_id": None, "text": "hi"}, {"text": None}]},
            [
                "note[] is not an object; left out",
                "note[].text is not text; replaced by null",
                f"note[].user_id is 1e400, {_TOO_BIG}; replaced by null",
            ],
        ),
        (b'"note":1e400', {"note": None}, [f"note is 1e400, {_TOO_BIG}; replaced by null"]),
        (b'"brand_new":[1e400]', {}, []),
    ],
)
def test_numbers_too_large_to_read_become_null_naming_the_contact_and_the_field(
    written, read, warnings
):
    content = b'[{"id":1,' + written + b'},{"id":2,"rev":3,"custom":{"big":1e308}}]'
    report = NormalizeReport()

    records = decode_contacts(content, report)

    assert records == [{"id": 1, **read}, {"id": 2, "rev": 3, "custom": {"big": 1e308}}]
    assert report.warnings == [f"Contact 1: {line}" for line in warnings]
    assert report.unknown_fields == ({"brand_new"} if b"brand_new" in written else set())


def test_an_id_too_large_to_read_leaves_the_contact_without_one():
    report = NormalizeReport()

    records = decode_contacts(b'[{"id":' + b"1" * 4301 + b',"first":"Ann"}]', report)

    assert records == [{"id": None, "first": "Ann"}]
    assert report.warnings == [
        f"A contact without a usable id: id is 111111111111... (4301 digits), {_TOO_BIG}; "
        "replaced by null"
    ]


def test_only_numbers_too_large_to_read_change_in_a_page_that_has_one():
    content = (
        b'[{"id":1,"rev":1e400,"first":"say \\"1e400\\" 1e400\\\\","last":"1e400",'
        b'"custom":{"1e400":1e308,"b":-' + b"9" * 4299 + b',"c":1e-400,"d":[1.5,-0,true]}}]'
    )
    report = NormalizeReport()

    records = decode_contacts(content, report)

    assert records == [
        {
            "id": 1,
            "rev": None,
            "first": 'say "1e400" 1e400\\',
            "last": "1e400",
            "custom": {"1e400": 1e308, "b": -int("9" * 4299), "c": 0.0, "d": [1.5, 0, True]},
        }
    ]
    assert report.warnings == [f"Contact 1: rev is 1e400, {_TOO_BIG}; replaced by null"]


@pytest.mark.parametrize(
    "content",
    [
        b'[{"id":1,"first":"a\xff","rev":1e400,"last":"b\\u0000"}]',
        b'[{"id":1,"rev":1e400,"first":"a\xff","last":"b\\u0000"}]',
        b'[{"id":1,"rev":1e400,"last":"b\\u0000","first":"a\\ud800"}]',
    ],
)
def test_a_number_too_large_to_read_next_to_text_that_is_not_unicode_and_a_nul(content):
    report = NormalizeReport()

    records = decode_contacts(content, report)

    assert records == [{"id": 1, "rev": None, "first": "a\ufffd", "last": "b"}]
    assert sorted(report.warnings) == [
        "Contact 1: first held bytes or escapes that are not Unicode text; replaced by U+FFFD",
        f"Contact 1: rev is 1e400, {_TOO_BIG}; replaced by null",
    ]


@pytest.mark.parametrize(
    "content", [b'[{"id":1,"rev":1e400', b'{"id":1,"rev":1e400}', b"[1e400]", b"[{}, 1e400]"]
)
def test_a_page_unreadable_even_without_its_numbers_too_large_is_refused_for_a_retry(content):
    assert decode_contacts(content, NormalizeReport()) is None


_TIMESTAMP_TEXT = (
    st.builds(_rfc3339, _INSTANTS, _OFFSETS, st.integers(0, 9), st.integers(0, 999))
    | st.sampled_from(
        [
            "0001-01-01T00:00:00Z",
            "",
            "last tuesday",
            "9999-12-31T23:59:59-01:00",
            "0001-01-01T00:30:00+01:00",
        ]
    )
    | st.none()
)
_TEXT = st.text() | st.none()
_INT = st.integers(-(2**63), 2**63 - 1) | st.none()
_BEYOND_64_BITS = st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**30])


def _records(
    spec: RecordSpec,
    integers: st.SearchStrategy,
    text: st.SearchStrategy,
    json_values: st.SearchStrategy = _JSON,
) -> st.SearchStrategy:
    """Records of ``spec`` with every value of its schema type but for ``integers``, ``text`` and
    the ``json_values`` in free-form JSON: any field may be missing; the timestamps vary in form,
    a few strings hold a NUL, and typed objects' keys come in any order."""
    values = {
        Kind.INTEGER: integers,
        Kind.STRING: text,
        Kind.BOOLEAN: st.booleans() | st.none(),
        Kind.TIMESTAMP: _TIMESTAMP_TEXT,
        Kind.JSON_OBJECT: st.dictionaries(st.text(), json_values, max_size=3) | st.none(),
        Kind.JSON_ARRAY: st.lists(json_values, max_size=3) | st.none(),
    }

    def of(field: Field) -> st.SearchStrategy:
        if field.kind is not Kind.OBJECT_ARRAY:
            return values[field.kind]
        item = st.fixed_dictionaries({}, optional={i.name: values[i.kind] for i in field.items})
        in_any_order = item.flatmap(lambda keyed: st.permutations(list(keyed.items())).map(dict))
        return st.lists(in_any_order, max_size=2) | st.none()

    return st.fixed_dictionaries({}, optional={field.name: of(field) for field in spec.fields})


def _pages(spec: RecordSpec) -> st.SearchStrategy:
    """Pages of records of ``spec`` with, now and then, one whose values do not all have their
    schema types: an integer beyond 64 bits, an odd value, an unknown field, not even an object."""
    return st.lists(
        _records(spec, _INT, _TEXT)
        | _records(spec, _INT | _BEYOND_64_BITS, _TEXT)
        | st.dictionaries(_field_names(spec), _JSON | _loose_items(spec), max_size=6)
        | st.sampled_from([[], "contact", 7]),
        max_size=6,
    )


#: Contacts whose values all have their schema types (what Heymarket sends).
_TYPED_CONTACTS = _records(CONTACTS, _INT, _TEXT)


class _TooBig:
    """A number no float or integer can hold, as JSON text."""

    def __init__(self, text: str) -> None:
        self.text = text


#: What ``_as_json`` writes in place of a ``_TooBig``, then replaces by the number's text.
_TOO_BIG_PLACEHOLDER = re.compile(r'"\\u0000too big ([-+.\deE]+)\\u0000"')


def _as_json(page: list, *, escaped: bool = False) -> bytes:
    """The page as the API would send it (JSON has no infinities: such pages are not drawn).

    Lone surrogates go out as JSON escapes if ``escaped``, else as the bytes a lax encoder writes.
    A ``_TooBig`` goes out as its number.
    """
    try:
        text = json.dumps(
            page,
            ensure_ascii=escaped,
            allow_nan=False,
            default=lambda value: f"\x00too big {value.text}\x00",
        )
        return _TOO_BIG_PLACEHOLDER.sub(r"\1", text).encode("utf-8", "surrogatepass")
    except ValueError:
        assume(False)
        raise


#: A record shaped unlike a contact, with a noun of its own: objects with two timestamps each,
#: an id declared last. Made up, to show that nothing in the decoders is a contact's.
_OTHER_SHAPE = RecordSpec(
    "message",
    Field(
        "receipts",
        Kind.OBJECT_ARRAY,
        items=(
            Field("read", Kind.TIMESTAMP),
            Field("by", Kind.INTEGER),
            Field("delivered", Kind.TIMESTAMP),
            Field("seen", Kind.BOOLEAN),
        ),
    ),
    Field("flagged", Kind.BOOLEAN),
    Field("date", Kind.TIMESTAMP),
    Field("custom", Kind.JSON_OBJECT),
    Field("media", Kind.JSON_ARRAY),
    Field("text", Kind.STRING),
    Field("id", Kind.INTEGER, required=True, nullable=False),
)


def _check_page_decoder_matches_the_normaliser(spec: RecordSpec, page: list) -> None:
    content = _as_json(page)
    report, reference_report = NormalizeReport(), NormalizeReport()

    records = decode_records(spec, content, report)

    if not all(isinstance(raw, dict) for raw in page):
        assert records is None, "not a JSON array of objects: the request is retried"
        return
    reference = [normalize_record(spec, raw, reference_report) for raw in page]
    # Compared as encoded JSON, so that field order and int/bool/float types count too.
    assert msgspec.json.encode(records) == msgspec.json.encode(reference)
    assert report == reference_report


@settings(max_examples=400, deadline=None)
@given(_pages(CONTACTS))
def test_page_decoder_gives_exactly_the_per_contact_normalisers_records_and_report(page):
    _check_page_decoder_matches_the_normaliser(CONTACTS, page)


@settings(max_examples=200, deadline=None)
@given(_pages(_OTHER_SHAPE))
# Typed, so decoded fast: warnings in the table's order, whatever the order of the keys.
@example([{"id": 1, "date": "bad", "receipts": [{"delivered": "worse", "read": "worst"}]}])
def test_page_decoder_and_normaliser_agree_on_records_shaped_unlike_contacts(page):
    _check_page_decoder_matches_the_normaliser(_OTHER_SHAPE, page)


def _check_typed_page_skips_the_normaliser(spec: RecordSpec, page: list) -> None:
    if "\\u0000" in json.dumps(page):
        return  # a NUL to strip: the per-record normaliser's job
    content = _as_json(page)

    with (
        mock.patch("tap_heymarket.normalize._Codec.normalize", side_effect=AssertionError),
        mock.patch("tap_heymarket.normalize._decode_repaired", side_effect=AssertionError),
        mock.patch(
            "tap_heymarket.normalize._decode_with_numbers_nulled", side_effect=AssertionError
        ),
    ):
        records = decode_records(spec, content, NormalizeReport())

    assert [record.get("id") for record in records] == [raw.get("id") for raw in page]


@settings(max_examples=100, deadline=None)
@given(st.lists(_TYPED_CONTACTS, max_size=6))
def test_pages_of_schema_typed_contacts_skip_the_per_contact_normaliser(page):
    _check_typed_page_skips_the_normaliser(CONTACTS, page)


@settings(max_examples=50, deadline=None)
@given(st.lists(_records(_OTHER_SHAPE, _INT, _TEXT), max_size=6))
def test_pages_of_schema_typed_records_of_another_shape_skip_the_normaliser(page):
    _check_typed_page_skips_the_normaliser(_OTHER_SHAPE, page)


#: Text with lone surrogates: what a JSON escape or a UTF-8 encoder that lets them through writes.
_SURROGATE_TEXT = st.text(
    st.characters(categories=["Cs"]) | st.characters(categories=["L", "Nd", "P"]), max_size=6
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_records(CONTACTS, _INT, _SURROGATE_TEXT | st.none()), max_size=4), st.booleans())
def test_text_that_is_not_unicode_never_makes_a_page_unreadable(page, escaped):
    records = decode_contacts(_as_json(page, escaped=escaped), NormalizeReport())

    assert records is not None
    assert [record.get("id") for record in records] == [contact.get("id") for contact in page]
    json.dumps(records, ensure_ascii=False).encode()  # no surrogate left to fail a target


_TOO_BIG_NUMBERS = st.sampled_from(
    ["1e400", "-1E+400", "1" * 4301, "-" + "9" * 4300, "1" + "0" * 400 + ".5"]
).map(_TooBig)
_JSON_WITH_TOO_BIG = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | _TOO_BIG_NUMBERS,
    _arrays_and_objects_of,
    max_leaves=12,
)


def _too_big_as_null(value: object) -> object:
    if isinstance(value, _TooBig):
        return None
    if isinstance(value, dict):
        return {key: _too_big_as_null(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_too_big_as_null(item) for item in value]
    return value


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        _records(CONTACTS, _INT | _TOO_BIG_NUMBERS, _TEXT | _TOO_BIG_NUMBERS, _JSON_WITH_TOO_BIG)
        | st.dictionaries(_FIELD_NAMES, _JSON_WITH_TOO_BIG, max_size=6),
        min_size=1,
        max_size=4,
    )
)
def test_numbers_too_large_to_read_are_read_as_null_and_never_make_a_page_unreadable(page):
    report, reference_report = NormalizeReport(), NormalizeReport()

    records = decode_contacts(_as_json(page), report)

    reference = [normalize_contact(_too_big_as_null(raw), reference_report) for raw in page]
    assert msgspec.json.encode(records) == msgspec.json.encode(reference)
    assert report.unknown_fields == reference_report.unknown_fields
    remaining = iter(report.warnings)
    assert all(line in remaining for line in reference_report.warnings), "none lost, same order"
    added = len(report.warnings) - len(reference_report.warnings)
    assert added == sum(report.nulled.values()) - sum(reference_report.nulled.values())
    assert sum(_TOO_BIG in line for line in report.warnings) == added
    too_big = json.dumps(page, default=lambda value: "\x00too big\x00").count("too big")
    carried = sum(
        isinstance(value, _TooBig)
        for raw in page
        for name, value in raw.items()
        if name in CONTACTS.names
    )
    assert carried <= added <= too_big


#: Names of fields Heymarket might add: none of the schema's, none msgspec cannot match on.
_NEW_FIELD_NAMES = st.text(
    st.characters(exclude_characters='"\\', exclude_categories=["Cc", "Cs"]), min_size=1
).filter(lambda name: name not in CONTACTS.names)


def _without_the_normaliser():
    """A context in which a page that falls back to the per-record normaliser fails the test."""
    return mock.patch("tap_heymarket.normalize._Codec.normalize", side_effect=AssertionError)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(_TYPED_CONTACTS, st.dictionaries(_NEW_FIELD_NAMES, _JSON, max_size=2)),
        min_size=1,
        max_size=6,
    )
)
def test_pages_with_fields_the_schema_lacks_stay_on_the_typed_decoder(page):
    raws = [{**contact, **new} for contact, new in page]
    if "\\u0000" in json.dumps(raws):
        return  # a NUL to strip: the per-record normaliser's job
    # A table of its own, so that its decoder has learnt no field yet (it keeps what it learns).
    contacts = RecordSpec(CONTACTS.noun, *CONTACTS.fields)
    report, reference_report = NormalizeReport(), NormalizeReport()

    with _without_the_normaliser():
        records = decode_records(contacts, _as_json(raws), report)

    reference = [normalize_record(contacts, raw, reference_report) for raw in raws]
    assert msgspec.json.encode(records) == msgspec.json.encode(reference)
    assert report == reference_report
    assert report.unknown_fields == {name for _, new in page for name in new}


def test_a_field_the_schema_lacks_is_learnt_once_and_reported_on_every_page_holding_it():
    spec = RecordSpec("contact", Field("id", Kind.INTEGER), Field("updated", Kind.TIMESTAMP))
    pages = [
        b'[{"id":1,"loyalty_tier":"gold","updated":"2024-05-06T07:08:09.5Z"},{"id":2}]',
        b'[{"id":3,"loyalty_tier":{"since":2020}},{"id":4,"score":[1,2],"loyalty_tier":null}]',
        b'[{"id":5,"updated":"2024-05-06T07:08:09Z"}]',
    ]
    reports = [NormalizeReport() for _ in pages]

    with _without_the_normaliser():
        records = [
            decode_records(spec, page, report) for page, report in zip(pages, reports, strict=True)
        ]

    assert records == [
        [{"id": 1, "updated": "2024-05-06T07:08:09.500000Z"}, {"id": 2}],
        [{"id": 3}, {"id": 4}],
        [{"id": 5, "updated": "2024-05-06T07:08:09.000000Z"}],
    ]
    assert [report.unknown_fields for report in reports] == [
        {"loyalty_tier"},
        {"loyalty_tier", "score"},
        set(),
    ]


@pytest.mark.parametrize("name", ['say "hi"', "back\\slash", "tab\there"])
def test_a_field_name_the_typed_decoder_cannot_learn_is_read_by_the_normaliser(name):
    page = json.dumps([{"id": 1, name: 1, "updated": "2024-05-06T07:08:09Z"}]).encode()
    report = NormalizeReport()

    records = decode_contacts(page, report)

    assert records == [{"id": 1, "updated": "2024-05-06T07:08:09.000000Z"}]
    assert report.unknown_fields == {name}


def test_past_the_most_fields_learnt_a_page_with_another_goes_to_the_normaliser():
    spec = RecordSpec("contact", Field("id", Kind.INTEGER))
    report = NormalizeReport()

    with mock.patch("tap_heymarket.normalize.MAX_UNKNOWN_FIELDS", 1):
        with _without_the_normaliser():
            first = decode_records(spec, b'[{"id":1,"a":1}]', NormalizeReport())
        second = decode_records(spec, b'[{"id":2,"a":1,"b":2}]', report)

    assert first == [{"id": 1}]
    assert second == [{"id": 2}]
    assert report.unknown_fields == {"a", "b"}


@settings(max_examples=200, deadline=None)
@given(
    instants=st.lists(_INSTANTS, min_size=1, max_size=4),
    digits=st.lists(st.integers(0, 9), min_size=3, max_size=3),
)
def test_go_timestamps_of_0_to_9_fraction_digits_decode_fast_to_the_fixed_width_form(
    instants, digits
):
    """As Heymarket writes them (0 to 6 digits; Go may write up to 9): UTC, ``Z``. Each becomes
    the instant cut to the microsecond, as the per-contact normaliser makes it."""
    written = [
        [_rfc3339(instant, 0, count, 999) for count in digits] for instant in instants
    ]  # updated, created, a note's date
    page = [
        {"id": index, "updated": u, "created": c, "note": [{"date": d, "user_id": 1}]}
        for index, (u, c, d) in enumerate(written)
    ]
    report = NormalizeReport()

    with _without_the_normaliser():
        records = decode_contacts(_as_json(page), report)

    for record, texts, instant in zip(records, written, instants, strict=True):
        for value, text in zip(
            (record["updated"], record["created"], record["note"][0]["date"]), texts, strict=True
        ):
            count = len(text) - 21 if "." in text else 0
            cut = instant.microsecond // 10 ** (6 - min(count, 6)) * 10 ** (6 - min(count, 6))
            assert value == instant.replace(microsecond=cut).strftime(TIMESTAMP_FORMAT)
            assert value == normalize_timestamp(text)
    assert report == NormalizeReport()


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00Z",  # Go's zero time: unset
        "0999-12-31T23:59:59.5Z",  # before the year 1000
        "2023-02-29T00:00:00Z",  # no such day
        "2024-02-29T12:00:00.123Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T12:00:60Z",
        "2024-01-01T12:00:00.Z",
        "2024-01-01T12:00:00.1234567890123Z",
        "2024-01-01t12:00:00z",
        "2024-01-01 12:00:00Z",
        "2024-01-01T12:00:00+00:00",
        "2024-01-01T12:00:00.5-07:30",
        "\uff12\uff10\uff12\uff14-01-01T12:00:00Z",  # digits, but not ASCII ones
        "",
        "soon",
    ],
)
def test_timestamps_read_fast_are_what_the_normaliser_makes_of_them(text):
    page = [{"id": 1, "updated": text, "note": [{"date": text}]}]
    report, reference_report = NormalizeReport(), NormalizeReport()

    with _without_the_normaliser():
        records = decode_contacts(_as_json(page), report)

    assert records == [normalize_contact(page[0], reference_report)]
    assert report == reference_report
