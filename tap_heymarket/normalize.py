"""Turn what the API sends into records that match the stream's schema exactly.

Doing the type work here, once per field with known types, is what lets the stream skip the
SDK's generic per-value conformance pass (see ``ContactsStream.TYPE_CONFORMANCE_LEVEL``).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import logging
import re
import reprlib
import types
import typing as t

import msgspec

from tap_heymarket.fields import CONTACTS, Field, Kind, RecordSpec

#: Every date-time leaves the tap in this one fixed-width UTC form, so that comparing two of
#: them as strings (the SDK does, for the bookmark) agrees with comparing the instants.
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))",
)
#: A UTC date-time as Go writes it, fields in range (the date is checked apart, see ``_is_date``).
_GO_UTC = re.compile(
    r"\d{4}-\d{2}-\d{2}T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.(\d{1,6})\d*)?Z", re.ASCII
)
_UTC = datetime.timezone.utc
_encode = msgspec.json.Encoder().encode
#: How JSON writes a NUL character: absent from a value's encoding, the value has no NUL.
_NUL_ESCAPE = b"\\u0000"
_logger = logging.getLogger(__name__)


class InvalidTimestampError(ValueError):
    """A value that should be an RFC 3339 date-time is not one."""


def normalize_timestamp(value: object) -> str | None:
    """Return ``value`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC, or None when it is unset.

    Go writes a variable number of fractional digits (``:05Z``, ``:05.5Z``, ``:05.123456789Z``)
    and ``0001-01-01T00:00:00Z`` for a zero time. Digits past the microsecond are truncated,
    never rounded, so a normalised value is never later than the instant it stands for.
    """
    if type(value) is str and (fixed := _go_fixed_width(value)) is not None:
        return fixed
    if value is None or value == "":
        return None
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        msg = f"{reprlib.repr(value)} is not an RFC 3339 date-time"
        raise InvalidTimestampError(msg)
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    try:
        instant = datetime.datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=_UTC,
        )
    except ValueError as exc:
        msg = f"{reprlib.repr(value)} is not a valid date-time ({exc})"
        raise InvalidTimestampError(msg) from exc
    if not zulu:
        offset = datetime.timedelta(hours=int(off_h), minutes=int(off_m))
        try:
            instant -= offset if sign == "+" else -offset
        except OverflowError:
            msg = f"{reprlib.repr(value)} is out of range once converted to UTC"
            raise InvalidTimestampError(msg) from None
    if year == "0001" and month == "01" and day == "01":
        return None  # Go's zero time: the API's way of saying "unset"
    return f"{instant.year:04d}{instant.strftime(TIMESTAMP_FORMAT[2:])}"  # %Y would not pad 999


#: What replaces the ``Z`` of a Go UTC timestamp of each length with a fraction of 0 to 5 digits
#: to make it fixed-width (the fraction padded to 6 digits); 27 characters are that width already.
_WIDEN = {20: ".000000Z", 22: "00000Z", 23: "0000Z", 24: "000Z", 25: "00Z", 26: "0Z"}
#: ``_is_date`` of the dates met so far: contacts' timestamps share few, and a dict reads faster
#: than a cache's call.
_DATES: dict[str, bool] = {}
_go_utc = _GO_UTC.fullmatch


def _go_fixed_width(value: str) -> str | None:
    """``value`` in the fixed-width form if it is a UTC date-time as Go writes it, else None.

    What Go sends: already UTC, so only the fraction's width changes (digits past the
    microsecond cut). The same text as ``normalize_timestamp`` gives without a datetime; the
    hot path, as every contact has two of these.
    """
    if _go_utc(value) is None:
        return None
    day = value[:10]
    valid = _DATES.get(day)
    if valid is None:
        valid = _is_date(day)
        if len(_DATES) >= 4096:
            _DATES.clear()
        _DATES[day] = valid
    if not valid:
        return None
    size = len(value)
    if size == 27:
        return value
    return value[:-1] + _WIDEN[size] if size < 27 else value[:26] + "Z"


def _is_date(text: str) -> bool:
    """Whether ``YYYY-MM-DD`` is a real date from year 1000 on (``%Y`` pads no further)."""
    try:
        return datetime.date.fromisoformat(text).year >= 1000
    except ValueError:
        return False


def query_date(timestamp: str) -> str:
    """The ``date`` to send so the answer surely includes every contact updated at ``timestamp``.

    Whether Heymarket's ``date`` is inclusive or exclusive, and at which precision it compares,
    is not documented: one whole second earlier, at whole seconds, is inside the range under
    every reading (re-reading a few contacts is cheap, losing one is not).
    """
    instant = datetime.datetime.strptime(timestamp, TIMESTAMP_FORMAT).replace(
        microsecond=0, tzinfo=_UTC
    )
    return (instant - datetime.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def widen(query: str) -> str:
    """A whole-second query date in the fixed-width form, for comparing with record timestamps."""
    return f"{query[:19]}.000000Z"


_TRUE = frozenset(("true", "t", "1", "yes"))
_FALSE = frozenset(("false", "f", "0", "no"))
#: What a warehouse's ``bigint`` holds: target-postgres fails the whole batch on a larger integer.
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class _Uncoercible(ValueError):
    """A value that cannot become the schema's type without guessing; the message says why."""


def _integer(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        number = int(value)  # True is 1
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        try:
            number = int(value.strip())
        except ValueError:  # "+-5", "²", or more digits than Python converts
            raise _Uncoercible("is not an integer") from None
    else:
        raise _Uncoercible("is not an integer")
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise _Uncoercible("does not fit a signed 64-bit integer")
    return number


def _boolean(value: object) -> bool | None:
    if value is None or type(value) is bool:
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Uncoercible("is not true or false")


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return _without_nul(value) if "\x00" in value else value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _Uncoercible("is not text")


def _without_nul(text: str) -> str:
    # PostgreSQL cannot store NUL in text or jsonb; it is never meaningful in a record.
    return text.replace("\x00", "")


def _clean_json(value: object) -> object:
    """Nested free-form JSON (custom fields, tags) with NUL characters removed from strings.

    Nearly always there is no NUL: one C-speed encode proves it, and the value (decoded JSON,
    so its keys are strings already) is used as it is instead of being copied node by node.
    """
    try:
        if _NUL_ESCAPE not in _encode(value):
            return value
    except TypeError:
        pass  # not plain JSON: walk it
    return _map_strings(value, _without_nul)


def _map_strings(value: object, fix: t.Callable[[str], str]) -> object:
    """A copy of nested JSON with ``fix`` applied to every string in it, keys included."""
    if isinstance(value, str):
        return fix(value)
    if isinstance(value, dict):
        return {fix(str(k)): _map_strings(v, fix) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, fix) for v in value]
    return value


@dataclasses.dataclass
class NormalizeReport:
    """What the normaliser had to change or could not use, so the sync can say so."""

    nulled: dict[str, int] = dataclasses.field(default_factory=dict)
    unknown_fields: set[str] = dataclasses.field(default_factory=set)
    #: One line per value changed, naming the record and the field, so that it can be found
    #: and fixed at the source. ``decode_records`` logs a page's as warnings; not merged, as
    #: a run needs only the counts.
    warnings: list[str] = dataclasses.field(default_factory=list)

    def null(self, name: str, whose: str, why: str, *, outcome: str = "replaced by null") -> None:
        """Count a value that had to be replaced by null, and say whose it was and why."""
        self.nulled[name] = self.nulled.get(name, 0) + 1
        self.warnings.append(f"{whose}: {name} {why}; {outcome}")

    def repaired(self, name: str, whose: str) -> None:
        """Say whose value held text that is not Unicode, now U+FFFD in its place."""
        self.warnings.append(
            f"{whose}: {name} held bytes or escapes that are not Unicode text; replaced by U+FFFD"
        )

    def merge(self, other: NormalizeReport) -> None:
        """Add what ``other`` (one page's report) counted."""
        for name, count in other.nulled.items():
            self.nulled[name] = self.nulled.get(name, 0) + count
        self.unknown_fields |= other.unknown_fields


_Int64 = t.Annotated[int, msgspec.Meta(ge=_INT64_MIN, le=_INT64_MAX)]
#: What the typed decoder takes for each kind as it is (or, a timestamp, to make fixed-width).
_TYPED: dict[Kind, t.Any] = {
    Kind.INTEGER: _Int64,
    Kind.STRING: str,
    Kind.BOOLEAN: bool,
    Kind.TIMESTAMP: str,
    Kind.JSON_OBJECT: dict[str, t.Any],
    Kind.JSON_ARRAY: list[t.Any],
}
#: How the normaliser reads a value of each scalar kind, raising when it cannot.
_CONVERTERS: dict[Kind, t.Callable[[object], object]] = {
    Kind.INTEGER: _integer,
    Kind.STRING: _text,
    Kind.BOOLEAN: _boolean,
    Kind.TIMESTAMP: normalize_timestamp,
}
#: The type in which a value of each kind is taken as it is (text without NUL, an integer of 64
#: bits): most values already are what they should be, and need no call to a converter.
_EXACT: dict[Kind, type] = {Kind.INTEGER: int, Kind.STRING: str, Kind.BOOLEAN: bool}
_UNSET = msgspec.UNSET
#: Fields the schema lacks that a typed decoder learns to skip, at most (see ``decode_typed``).
MAX_UNKNOWN_FIELDS = 32
_Step = t.Callable[[object, str, NormalizeReport, dict[str, t.Any]], object]


class _Codec:
    """How records of one ``RecordSpec`` are decoded and normalised, worked out once from it.

    Fields are read kind by kind, in tight loops: integers (``id`` first, so that a warning about
    any other field names the record), text, booleans, timestamps, then the JSON fields; each
    kind's by name, about the order Heymarket writes them in, which the typed decoder reads
    fastest. Records carry them in that order, from both decoders.
    """

    def __init__(self, spec: RecordSpec) -> None:
        self.noun = spec.noun
        self.kinds = {field.name: field.kind for field in spec.fields}
        fields = sorted(spec.fields, key=lambda field: (field.name != "id", field.name))
        self.integers = _names(fields, Kind.INTEGER)
        self.strings = _names(fields, Kind.STRING)
        self.booleans = _names(fields, Kind.BOOLEAN)
        self.timestamps = _names(fields, Kind.TIMESTAMP)
        steps: dict[Kind, _Step] = {
            Kind.JSON_OBJECT: self._to_json_object,
            Kind.JSON_ARRAY: self._to_json_array,
            Kind.OBJECT_ARRAY: self._to_object_array,
        }
        #: The JSON fields, each with how ``normalize`` reads it.
        self.json = tuple(
            (field.name, steps[field.kind]) for field in fields if field.kind in steps
        )
        #: Per ``OBJECT_ARRAY`` field, its items' fields in the table's order: key, the type a
        #: value is taken as it is in (None: a timestamp, always rewritten), converter, and
        #: name in warnings.
        self.items = {
            field.name: tuple(
                (
                    item.name,
                    _EXACT.get(item.kind),
                    _CONVERTERS[item.kind],
                    f"{field.name}[].{item.name}",
                )
                for item in field.items
            )
            for field in fields
            if field.items
        }
        self.item_keys = {
            name: frozenset(key for key, *_ in items) for name, items in self.items.items()
        }
        #: Per ``OBJECT_ARRAY`` field with timestamps in its items: their keys and names.
        self.item_timestamps = tuple(
            (name, stamps)
            for name, items in self.items.items()
            if (stamps := tuple((key, label) for key, exact, _, label in items if exact is None))
        )
        order = (*self.integers, *self.strings, *self.booleans, *self.timestamps)
        typed = {field.name: self._typed(field) for field in fields}
        self._struct_name = f"_{_capitalized(spec.noun)}"
        self._struct_fields = [
            (name, typed[name] | msgspec.UnsetType | None, _UNSET)
            for name in (*order, *(name for name, _ in self.json))
        ]
        #: The typed decoder, and the fields it skips that the schema does not have.
        self.fast = self._fast_decoder(())

    def _fast_decoder(self, unknown: tuple[str, ...]) -> _FastDecoder:
        """A decoder of pages of records exactly as the schema types them, bar ``unknown`` fields.

        Anything else fails to decode, a field neither declared nor in ``unknown`` too (so that
        it can be named). ``unknown`` fields are read as raw JSON and left out of the records.
        """
        slots: list[str] = []
        for _ in unknown:
            slot = f"_unknown{len(slots)}"
            while slot in self.kinds:
                slot += "_"
            slots.append(slot)
        record = msgspec.defstruct(
            self._struct_name,
            [
                *self._struct_fields,
                *((slot, msgspec.Raw | msgspec.UnsetType, _UNSET) for slot in slots),
            ],
            rename=dict(zip(slots, unknown, strict=True)),
            forbid_unknown_fields=True,
        )
        decode = msgspec.json.Decoder(types.GenericAlias(list, (record,))).decode
        return _FastDecoder(unknown, tuple(zip(slots, unknown, strict=True)), decode)

    def decode_typed(
        self, content: bytes, report: NormalizeReport
    ) -> list[dict[str, t.Any]] | None:
        """The page's records if every value has its schema type (``finish`` done), else None.

        A field the schema lacks does not count: its name is learnt from the decoder's error,
        the page read again by a decoder that skips it, and the records are reported as
        ``normalize`` reports them. Up to ``MAX_UNKNOWN_FIELDS`` names are learnt, for good:
        Heymarket adds fields over time, and every page then carries them.
        """
        while True:
            fast = self.fast
            try:
                typed = fast.decode(content)
            except msgspec.ValidationError as exc:
                name = _unknown_field(str(exc))
                if name is None or name in fast.unknown or len(fast.unknown) >= MAX_UNKNOWN_FIELDS:
                    return None
                try:
                    learnt = self._fast_decoder((*fast.unknown, name))
                except ValueError:  # a name msgspec cannot match on ('"', '\\', controls)
                    return None
                # Another thread may have learnt a name meanwhile: it only costs a decode.
                self.fast = learnt
                continue
            except (msgspec.DecodeError, UnicodeDecodeError):
                return None
            return self.finish(typed, fast.slots, report)

    @staticmethod
    def _typed(field: Field) -> t.Any:
        """The type the typed decoder requires of ``field``'s values (null aside)."""
        if field.kind is not Kind.OBJECT_ARRAY:
            return _TYPED[field.kind]
        # A TypedDict, not a Struct: it drops unknown keys and keeps the API's key order,
        # as ``_to_object_array`` does.
        item_type = t.TypedDict(  # type: ignore[misc]
            f"_{field.name}_item",
            {item.name: _TYPED[item.kind] | None for item in field.items},
            total=False,
        )
        return list[item_type]

    def whose(self, record: dict[str, t.Any]) -> str:
        """How a warning names ``record``: by its ``id``, read first."""
        key = record.get("id")
        if key is None:
            return f"A {self.noun} without a usable id"
        return f"{_capitalized(self.noun)} {key}"

    def coerce(
        self,
        convert: t.Callable[[object], object],
        value: object,
        name: str,
        report: NormalizeReport,
        record: dict[str, t.Any],
    ) -> object:
        """``convert(value)``, or None, reported with whose it was (``record``'s)."""
        try:
            return convert(value)
        except (_Uncoercible, InvalidTimestampError) as exc:
            report.null(name, self.whose(record), str(exc))
            return None

    def normalize(self, raw: dict[str, t.Any], report: NormalizeReport) -> dict[str, t.Any]:
        """See ``normalize_record``."""
        record: dict[str, t.Any] = {}
        coerce = self.coerce
        for name in self.integers:
            if name in raw:
                value = raw[name]
                record[name] = (
                    value
                    if type(value) is int and _INT64_MIN <= value <= _INT64_MAX
                    else coerce(_integer, value, name, report, record)
                )
        for name in self.strings:
            if name in raw:
                value = raw[name]
                record[name] = (
                    value
                    if type(value) is str and "\x00" not in value
                    else coerce(_text, value, name, report, record)
                )
        for name in self.booleans:
            if name in raw:
                value = raw[name]
                record[name] = (
                    value if type(value) is bool else coerce(_boolean, value, name, report, record)
                )
        for name in self.timestamps:
            if name in raw:
                record[name] = coerce(normalize_timestamp, raw[name], name, report, record)
        for name, step in self.json:
            if name in raw:
                record[name] = step(raw[name], name, report, record)
        if len(record) < len(raw):
            report.unknown_fields.update(name for name in raw if name not in self.kinds)
        return record

    def _to_json_object(
        self, value: object, name: str, report: NormalizeReport, record: dict[str, t.Any]
    ) -> object:
        if isinstance(value, dict):
            return _clean_json(value)
        if value is not None:
            report.null(name, self.whose(record), "is not an object")
        return None

    def _to_json_array(
        self, value: object, name: str, report: NormalizeReport, record: dict[str, t.Any]
    ) -> object:
        return _clean_json(value if isinstance(value, list) or value is None else [value])

    def _to_object_array(
        self, value: object, name: str, report: NormalizeReport, record: dict[str, t.Any]
    ) -> object:
        if value is None:
            return None
        if not isinstance(value, list):
            report.null(name, self.whose(record), "is not a list")
            return None
        fields = self.items[name]
        known = self.item_keys[name]
        items = []
        for raw in value:
            if not isinstance(raw, dict):
                report.null(f"{name}[]", self.whose(record), "is not an object", outcome="left out")
                continue
            # Keys in the API's order, as the typed decoder keeps them; read in the table's, as
            # ``finish`` rewrites the timestamps.
            item: dict[str, t.Any] = {key: val for key, val in raw.items() if key in known}
            for key, exact, convert, label in fields:
                if key not in item:
                    continue
                item_value = item[key]
                value_type = type(item_value)
                if value_type is exact and (
                    (value_type is str and "\x00" not in item_value)
                    or (value_type is int and _INT64_MIN <= item_value <= _INT64_MAX)
                    or value_type is bool
                ):
                    continue
                item[key] = self.coerce(convert, item_value, label, report, record)
            items.append(item)
        return items

    def finish(
        self,
        typed: list[msgspec.Struct],
        skipped: tuple[tuple[str, str], ...],
        report: NormalizeReport,
    ) -> list[dict[str, t.Any]]:
        """Typed records as dicts, their timestamps fixed-width.

        Without the fields they lack, nor the ``skipped`` ones (slot and name), which are
        reported when present.

        What ``coerce`` and ``normalize_timestamp`` do, written out for the form Go sends:
        each call less per record shows on the fast path.
        """
        records: list[dict[str, t.Any]] = []
        append = records.append
        stamps = self.timestamps
        item_stamps = self.item_timestamps
        widen = _WIDEN
        dates = _DATES
        for struct in typed:
            record = _as_dict(struct)
            for slot, name in skipped:
                if record.pop(slot) is not _UNSET:
                    report.unknown_fields.add(name)
            if _UNSET in record.values():
                record = {name: value for name, value in record.items() if value is not _UNSET}
            # Typed, so each timestamp is text, or None when null or absent (left as it is).
            for name in stamps:
                value = record.get(name)
                if value is None:
                    continue
                if _go_utc(value) is None or not dates.get(value[:10]):
                    record[name] = self._timestamp(value, name, report, record)
                elif (size := len(value)) != 27:
                    record[name] = value[:-1] + widen[size] if size < 27 else value[:26] + "Z"
            for name, pairs in item_stamps:
                for item in record.get(name) or ():
                    for key, label in pairs:
                        value = item.get(key)
                        if value is None:
                            continue
                        if _go_utc(value) is None or not dates.get(value[:10]):
                            item[key] = self._timestamp(value, label, report, record)
                        elif (size := len(value)) != 27:
                            item[key] = value[:-1] + widen[size] if size < 27 else value[:26] + "Z"
            append(record)
        return records

    def _timestamp(
        self, value: object, name: str, report: NormalizeReport, record: dict[str, t.Any]
    ) -> str | None:
        """``normalize_timestamp(value)``, or None, reported with whose it was (``record``'s)."""
        try:
            return normalize_timestamp(value)
        except InvalidTimestampError as exc:
            report.null(name, self.whose(record), str(exc))
            return None


class _FastDecoder(t.NamedTuple):
    """A typed page decoder, and the fields the schema lacks that it skips."""

    unknown: tuple[str, ...]
    #: Each skipped field's attribute in the decoded records, and its name.
    slots: tuple[tuple[str, str], ...]
    decode: t.Callable[[bytes], list[msgspec.Struct]]


#: How msgspec names the first field it met that a record's Struct lacks, in a page's record.
_UNKNOWN_FIELD_ERROR = re.compile(
    r"Object contains unknown field `(.*)` - at `\$\[\d+\]`", re.DOTALL
)


def _unknown_field(error: str) -> str | None:
    """The field a typed decoder's ``error`` says a record has and the schema lacks, if any."""
    match = _UNKNOWN_FIELD_ERROR.fullmatch(error)
    return None if match is None else match[1]


def _names(fields: list[Field], kind: Kind) -> tuple[str, ...]:
    """The names of the ``fields`` of ``kind``, in their order."""
    return tuple(field.name for field in fields if field.kind is kind)


def _capitalized(noun: str) -> str:
    return noun[:1].upper() + noun[1:]


@functools.cache
def _codec(spec: RecordSpec) -> _Codec:
    return _Codec(spec)


def normalize_record(
    spec: RecordSpec, raw: dict[str, t.Any], report: NormalizeReport
) -> dict[str, t.Any]:
    """A schema-exact copy of one record; values that cannot be used become null and are counted.

    ``id`` (and a required timestamp) may come out as None: the caller decides what such a record
    means.
    """
    return _codec(spec).normalize(raw, report)


def normalize_contact(raw: dict[str, t.Any], report: NormalizeReport) -> dict[str, t.Any]:
    """One contact, as ``normalize_record`` makes it."""
    return normalize_record(CONTACTS, raw, report)


_decode_any = msgspec.json.Decoder().decode
_as_dict = msgspec.structs.asdict

#: Bytes that are not UTF-8, as ``surrogateescape`` decodes them.
_NOT_UTF8 = re.compile(r"[\udc80-\udcff]+")
#: In JSON text: an escaped backslash or a surrogate pair (both left as they are), or a lone
#: surrogate (six characters), which no decoder can make a string of.
_SURROGATE_ESCAPES = re.compile(
    r"\\(?:\\|u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|u[dD][89a-fA-F][0-9a-fA-F]{2})"
)
_REPLACEMENT = "\ufffd"


def decode_records(
    spec: RecordSpec, content: bytes, report: NormalizeReport
) -> list[dict[str, t.Any]] | None:
    """A page of records from the API's JSON, each as ``normalize_record`` makes it.

    None when the JSON is not an array of objects. A page whose values all have their schema
    types (nearly every page) is decoded straight into typed records, which checks every value
    in C; only the timestamps are then rewritten. Fields the schema lacks are skipped there and
    reported (see ``_Codec.decode_typed``). Any other page (a NUL in a string, a value to
    coerce) goes through ``normalize_record`` one record at a time. The two give the same
    records and reports: the tests hold them to it.

    Text that is not Unicode, or a number no float or integer can hold, would make the page
    unreadable on every attempt: it is read again with U+FFFD in place of that text, and null
    in place of that number. Each value changed is logged as a warning.
    """
    logged = len(report.warnings)
    records = _decode_page(spec, content, report)
    if records is None:
        records = _decode_repaired(spec, content, report)
    for message in report.warnings[logged:]:
        _logger.warning(message)
    return records


def decode_contacts(content: bytes, report: NormalizeReport) -> list[dict[str, t.Any]] | None:
    """A page of contacts, as ``decode_records`` reads it."""
    return decode_records(CONTACTS, content, report)


def _decode_page(
    spec: RecordSpec, content: bytes, report: NormalizeReport
) -> list[dict[str, t.Any]] | None:
    if _NUL_ESCAPE not in content:
        records = _codec(spec).decode_typed(content, report)
        if records is not None:
            return records
    try:
        page = _decode_any(content)
    except msgspec.ValidationError:  # untyped, only a number out of range fails this way
        return _decode_with_numbers_nulled(spec, content, report)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if not _is_page(page):
        return None
    normalize = _codec(spec).normalize
    return [normalize(raw, report) for raw in page]


def _is_page(page: object) -> t.TypeGuard[list[dict[str, t.Any]]]:
    return isinstance(page, list) and all(type(item) is dict for item in page)


#: In JSON text: a string (left as it is), or a number.
_STRING_OR_NUMBER = re.compile(
    rb'"[^"\\]*(?:\\.[^"\\]*)*"|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)', re.DOTALL
)


def _decode_with_numbers_nulled(
    spec: RecordSpec, content: bytes, report: NormalizeReport
) -> list[dict[str, t.Any]] | None:
    """The page with null for each number no float or integer can hold; None if it still fails.

    Such a number (``1e400``, or an integer of more than 4,300 digits, Python's limit) would
    make the page unreadable on every attempt. Each first becomes a string the page does not
    hold, a marker and the number's index, so that the value can be found again, set to null
    and reported with its record and field.
    """
    marker = _unused_character(content.decode("utf-8", "surrogateescape"))
    if marker is None:
        return None
    numbers: list[bytes] = []

    def mark(match: re.Match[bytes]) -> bytes:
        number = match[1]
        if number is None:
            return match[0]  # a string
        try:
            _decode_any(number)
        except msgspec.ValidationError:
            numbers.append(number)
            return f'"\\u{ord(marker):04x}{len(numbers) - 1}"'.encode()
        return number

    marked = _STRING_OR_NUMBER.sub(mark, content)
    if not numbers:
        return None
    try:
        page = _decode_any(marked)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if not _is_page(page):
        return None
    codec = _codec(spec)
    encoded = marker.encode()
    records = []
    for raw in page:
        found: list[tuple[str, bool, int]] = []
        if encoded in _encode(raw):
            _null_marked(codec, raw, marker, found)
        record = codec.normalize(raw, report)
        for name, nested, index in found:
            report.null(
                name,
                codec.whose(record),
                f"{'holds' if nested else 'is'} {_preview(numbers[index])}, "
                "a number too large to read",
                outcome="that value replaced by null" if nested else "replaced by null",
            )
        records.append(record)
    return records


def _null_marked(
    codec: _Codec, raw: dict[str, t.Any], marker: str, found: list[tuple[str, bool, int]]
) -> None:
    """Put null in ``raw`` (a record) for each marked number; list those the record would carry.

    Each is listed as its field's name, whether it was nested in the field's value, and the
    number's index. A number where ``normalize_record`` takes nothing (a field the schema lacks,
    an item's unknown key) is not listed, nor one in a value it replaces by null and reports
    (a JSON object that is not one, text or an integer that is a list or an object).
    """

    def index_of(value: object) -> int | None:
        if type(value) is str and value[:1] == marker:
            return int(value[1:])
        return None

    def nulled(value: object, listed_as: str | None, *, nested: bool = False) -> object:
        """``value`` with null for its numbers, each listed under ``listed_as`` unless None."""
        if (index := index_of(value)) is not None:
            if listed_as is not None:
                found.append((listed_as, nested, index))
            return None
        if isinstance(value, dict):
            return {key: nulled(item, listed_as, nested=True) for key, item in value.items()}
        if isinstance(value, list):
            return [nulled(item, listed_as, nested=True) for item in value]
        return value

    def scalar(value: object, listed_as: str | None) -> object:
        """A value of a typed field: listed only if it is itself such a number."""
        return nulled(value, listed_as if index_of(value) is not None else None)

    for name, value in raw.items():
        kind = codec.kinds.get(name)
        if kind is Kind.OBJECT_ARRAY and isinstance(value, list):
            fields = codec.item_keys[name]
            raw[name] = [
                {
                    key: scalar(field_value, f"{name}[].{key}" if key in fields else None)
                    for key, field_value in item.items()
                }
                if isinstance(item, dict)
                else nulled(item, None)
                for item in value
            ]
        elif kind is Kind.JSON_ARRAY or (kind is Kind.JSON_OBJECT and isinstance(value, dict)):
            raw[name] = nulled(value, name)
        else:
            raw[name] = scalar(value, None if kind is None else name)


def _preview(number: bytes) -> str:
    """A number as a warning quotes it: whole when short, else its start and its length."""
    text = number.decode()
    if len(text) <= 24:
        return text
    return f"{text[:12]}... ({sum(c.isdigit() for c in text)} digits)"


def _decode_repaired(
    spec: RecordSpec, content: bytes, report: NormalizeReport
) -> list[dict[str, t.Any]] | None:
    """The page with U+FFFD for its text that is not Unicode; None if it has none, or still fails.

    That text (each run of bytes that are not UTF-8, each lone surrogate escape) first becomes
    a marker, a character the page does not hold, so that only the values repaired are reported
    and not those where Heymarket itself sent U+FFFD.
    """
    text = content.decode("utf-8", "surrogateescape")
    marker = _unused_character(text)
    if marker is None:
        return None
    marked = _SURROGATE_ESCAPES.sub(
        lambda match: marker if len(match[0]) == 6 else match[0], _NOT_UTF8.sub(marker, text)
    )
    if marked == text:
        return None
    first = len(report.warnings)
    records = _decode_page(spec, marked.encode(), report)
    if records is None:
        return None

    def unmark(value: str) -> str:
        return value.replace(marker, _REPLACEMENT)

    quoted = repr(marker)[1:-1]  # as a warning quoting a timestamp shows it: the page has neither
    report.warnings[first:] = [
        unmark(line).replace(quoted, _REPLACEMENT) for line in report.warnings[first:]
    ]
    report.unknown_fields = set(map(unmark, report.unknown_fields))
    whose = _codec(spec).whose
    encoded = marker.encode()
    for record in records:
        if encoded in _encode(record):
            for name, value in record.items():
                repaired = _map_strings(value, unmark)
                if repaired != value:
                    record[name] = repaired
                    report.repaired(name, whose(record))
    return records


def _unused_character(text: str) -> str | None:
    """A private-use character that ``text`` holds neither as itself nor as a JSON escape."""
    lowered = text.lower()
    return next(
        (
            chr(code)
            for code in range(0xE000, 0xF900)
            if chr(code) not in text and f"\\u{code:x}" not in lowered
        ),
        None,
    )
