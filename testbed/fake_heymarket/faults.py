"""Faults a client must survive: error pages, cut connections, hangs, truncated JSON.

They are queued for the next sync requests, or drawn at random at ``fail_rate`` (seeded, so a run
is reproducible); the server applies them, as they replace or damage any endpoint's answer.
"""

from __future__ import annotations

import collections
import dataclasses
import random
import threading
from collections.abc import Iterable, Sequence

from testbed.fake_heymarket.reply import HTML, Reply, gateway_error

FAULT_KINDS = frozenset(
    {
        "429",
        "500",
        "500-html",
        "502",
        "503",
        "cut",
        "hang",
        "json-truncated",
        "html-200",
        "error-object-200",
        "401",
        "403",
    }
)

_HTML_500 = (
    b"<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head>"
    b"<body><h1>Internal Server Error</h1><p>The server encountered an internal error and was "
    b"unable to complete your request.</p></body></html>"
)
_HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
_HTML_200 = (
    b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Heymarket | Sign in'
    b"</title></head><body><h1>We&rsquo;ll be right back</h1><p>Heymarket is undergoing "
    b'scheduled maintenance.</p><form action="/login" method="post"><input name="email">'
    b'<input name="password" type="password"><button>Sign in</button></form></body></html>'
)

#: Faults that replace the answer outright.
CANNED: dict[str, Reply] = {
    "500": Reply(500, gateway_error("server_error", "internal server error")),
    "500-html": Reply(500, _HTML_500, HTML),
    "502": Reply(502, _HTML_502, HTML),
    "503": Reply(503, gateway_error("unavailable", "service temporarily unavailable")),
    "html-200": Reply(200, _HTML_200, HTML),
    "error-object-200": Reply(200, gateway_error("server_error", "could not list contacts")),
    "401": Reply(401, gateway_error("unauthorized", "token revoked")),
    "403": Reply(403, gateway_error("denied", "this key may not list contacts")),
}


class FaultQueue:
    """The faults still to give: queued ones in order, then ones drawn at ``fail_rate``."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._queued: collections.deque[str] = collections.deque()
        self._lock = threading.Lock()

    def queue(self, kinds: Iterable[str]) -> int:
        """Queue ``kinds`` for the next sync requests; returns how many are now queued."""
        kinds = list(kinds)
        unknown = set(kinds) - FAULT_KINDS
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}")
        with self._lock:
            self._queued.extend(kinds)
            return len(self._queued)

    def next(self, fail_rate: float, fail_kinds: Sequence[str]) -> str | None:
        """The fault for the request being answered, or None."""
        with self._lock:
            if self._queued:
                return self._queued.popleft()
            if fail_rate > 0 and self._rng.random() < fail_rate:
                return self._rng.choice(fail_kinds)
            return None


def spoil(reply: Reply, fault: str | None) -> Reply:
    """Damage a good answer in transit: half its JSON, or half of it and a dropped connection."""
    if reply.status != 200:
        return reply
    if fault == "json-truncated":
        return dataclasses.replace(reply, body=reply.body[: max(1, len(reply.body) // 2)])
    if fault == "cut":
        return dataclasses.replace(reply, cut=True)
    return reply
