"""What Go puts on the wire: RFC3339Nano times and JSON escaped the way encoding/json does it.

Heymarket is written in Go, so clients meet these exact bytes; the fake writes the same ones.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:Z|([+-])(\d{2}):(\d{2}))"
)
#: Go's encoding/json escapes these inside strings; so do we, so clients meet what Go writes.
_GO_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def format_go_time(dt: datetime) -> str:
    """Write ``dt`` like Go's RFC3339Nano in UTC: ``Z``, fractional digits trimmed of zeros."""
    if dt.tzinfo is None:
        raise ValueError("format_go_time needs an aware datetime")
    return format_us((dt - _EPOCH) // _US)


@functools.lru_cache(maxsize=8192)
def _day(days: int) -> str:
    return (_EPOCH.date() + timedelta(days=days)).isoformat()


@functools.cache
def _time_of_day(seconds: int) -> str:
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"T{hours:02d}:{minutes:02d}:{seconds:02d}"


def format_us(us: int) -> str:
    """Format µs since the epoch, Go-style; the hot path of generation, hence no datetime."""
    seconds, frac = divmod(us, 1_000_000)
    days, seconds = divmod(seconds, 86_400)
    text = _day(days) + _time_of_day(seconds)
    if frac:
        text += "." + f"{frac:06d}".rstrip("0")
    return text + "Z"


def parse_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 string (ns, as Go compares a ``date``)."""
    match = _RFC3339.fullmatch(text)
    if not match:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.group(1, 2, 3, 4, 5, 6))
    frac, sign, off_h, off_m = match.group(7, 8, 9, 10)
    offset = timedelta(0)
    if sign:
        if int(off_h) > 23 or int(off_m) > 59:
            raise ValueError(f"bad UTC offset in {text!r}")
        offset = timedelta(hours=int(off_h), minutes=int(off_m)) * (1 if sign == "+" else -1)
    base = datetime(year, month, day, hour, minute, second, tzinfo=timezone(offset))
    seconds = (base - _EPOCH) // timedelta(seconds=1)
    return seconds * 1_000_000_000 + int(((frac or "") + "000000000")[:9])


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (``Z`` or offset, any fraction) to an aware UTC datetime (µs)."""
    return _EPOCH + (parse_ns(text) // 1000) * _US


def go_json(value: Any) -> str:
    """Serialise compactly with raw UTF-8, escaping ``<>&`` like Go's encoder."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in _GO_ESCAPES:
        if char in text:
            text = text.replace(char, escaped)
    return text


def before_threshold_us(cursor_ns: int, inclusive: bool, whole_seconds: bool) -> int:
    """The µs bound ``T`` such that a "before" cursor keeps exactly the times (µs) below ``T``.

    Exclusive: ``time < cursor``; inclusive: ``time <= cursor``; in whole seconds, both sides
    are truncated to the second first.
    """
    if whole_seconds:
        return (cursor_ns // 1_000_000_000 + (1 if inclusive else 0)) * 1_000_000
    if inclusive:
        return cursor_ns // 1000 + 1
    return -(-cursor_ns // 1000)


def is_int(value: Any) -> bool:
    """Whether ``value`` is a JSON integer: Python's ``True`` is an int, but not in JSON."""
    return isinstance(value, int) and not isinstance(value, bool)
