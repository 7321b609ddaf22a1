"""A response as a value: endpoints, faults and the rate limiter build one, the server writes it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from testbed.fake_heymarket.wire import go_json

JSON = "application/json"
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Reply:
    """Status, body and extra headers of one response (the server adds the standard ones)."""

    status: int
    body: bytes
    ctype: str = JSON
    headers: tuple[tuple[str, str], ...] = ()
    #: Send half the body, then drop the connection (the ``cut`` fault).
    cut: bool = False


def json_reply(status: int, value: Any) -> Reply:
    """``value`` as the Go service writes it: compact, raw UTF-8, ``<>&`` escaped."""
    return Reply(status, go_json(value).encode("utf-8", "surrogatepass"))


def error_reply(status: int, error: str, message: str) -> Reply:
    """The API's error object, ``{"error": ..., "message": ...}``."""
    return json_reply(status, {"error": error, "message": message})


def gateway_error(error: str, message: str) -> bytes:
    """The error object as a gateway in front of the API writes it: spaced, ASCII-escaped JSON.

    Used for 429s and faults, so their bytes differ from the Go service's, as they would.
    """
    return json.dumps({"error": error, "message": message}).encode()
