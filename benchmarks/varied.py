"""A second data set for the CPU-bound case, unlike the fake's own, on a plain HTTP server.

    python -m benchmarks.varied --contacts 50000 --seed 1 [--unknown-field]

Contacts in their own shapes (fields in another order than the fake's; a custom field on two
contacts in three, a note on one in four, a tag object on one in five, ``last`` null on one in
six; Go-style timestamps with 0 to 6 fraction digits, each count as likely), each serialised
once, served by the standard library's ``ThreadingHTTPServer`` with no auth check, faults or
rate limit: the least a server can cost per request, so the clients' own work is what the case
times. ``--unknown-field`` gives every contact a field the tap's schema does not know
(``loyalty_tier``), as Heymarket may add one any day.

``POST /v2/contacts/list`` answers ``limit``/``page`` of the contacts updated at or after
``date`` (to the microsecond), sorted by ``(updated, id)``, oldest first unless ``ascending`` is
false; ``POST /v1/contacts/count`` answers the count as a JSON string, as documented; anything
else is a 404. Prints ``READY <url>`` and answers stdin lines as ``benchmarks.serve`` does.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import datetime
import json
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LIST_PATH, COUNT_PATH = "/v2/contacts/list", "/v1/contacts/count"
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_ZERO_TIME = "0001-01-01T00:00:00Z"
_FIRST = ("Ava", "Bo", "Chen", "Dário", "Eun-ji", "Farah", "Gus", "Hélène", "Ivo", "Jaz")
_LAST = ("Adeyemi", "Brandt", "Castillo", "Dvořák", "Eklund", "Fischer", "Gómez", "Hart")
_TAGS = ("gold", "silver", "bronze", "prospect", "churned", "vip ⭐", "b2b", "trial")
_NOTES = ("Asked for a callback.", "Wants the\nyearly plan", "Paid late twice", "🎉 signed")


def go_time(us: int, rng: random.Random) -> str:
    """``us`` µs since the epoch as Go writes it, with 0 to 6 fraction digits (as likely each).

    Go trims trailing zeros, so a value with ``d`` digits has a last digit that is not 0: the
    instant is ``us`` cut to ``d`` digits, with that digit made non-zero.
    """
    seconds, fraction = divmod(us, 1_000_000)
    text = (_EPOCH + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    digits = rng.randrange(7)
    if digits:
        kept = fraction // 10 ** (6 - digits)
        kept += 1 if kept % 10 == 0 else 0
        text += f".{kept:0{digits}d}"
    return text + "Z"


def parse_us(text: str) -> int:
    """µs since the epoch of a Go-style UTC timestamp (what ``go_time`` writes, or whole seconds)."""
    head, _, fraction = text.rstrip("Zz").partition(".")
    instant = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.timezone.utc)
    whole = (instant - _EPOCH) // datetime.timedelta(seconds=1)
    return whole * 1_000_000 + int((fraction or "0")[:6].ljust(6, "0"))


def contacts(n: int, seed: int, *, unknown_field: bool = False) -> list[tuple[int, int, bytes]]:
    """``n`` contacts as ``(updated µs, id, JSON)``, sorted by ``(updated, id)``."""
    rng = random.Random(seed)
    r, pick = rng.random, rng.randrange
    us = 1_650_000_000_000_000
    out = []
    for index in range(n):
        us += pick(1, 90_000_000) if r() < 0.95 else 0  # now and then a tie
        cid = 7_000_000 + index * 3 + pick(3)
        updated = go_time(us, rng)
        updated_us = parse_us(updated)
        first, last = _FIRST[pick(len(_FIRST))], _LAST[pick(len(_LAST))]
        contact: dict[str, object] = {
            "id": cid,
            "team_id": 4242,
            "phone": f"1{pick(200, 990)}{pick(10**7):07d}",
            "first": first,
            "last": None if r() < 1 / 6 else last,
            "display_name": f"{first} {last}",
            "email": f"{first.lower()}.{cid}@example.org" if r() < 0.7 else "",
            "updated": updated,
            "created": _ZERO_TIME if r() < 0.05 else go_time(us - pick(10**13), rng),
            "op": ("create", "update", "import")[pick(3)],
            "rev": pick(1, 40),
            "type": "contact",
            "shared": r() < 0.5,
            "is_opted_out": r() < 0.03,
            "inbox_id": (101, 102, 103)[pick(3)],
            "creator_id": pick(0, 9) * 1000,
            "assigned_user_id": 0 if r() < 0.5 else 3000 + pick(9),
            "parent_id": 0,
            "avatar": "",
            "external_id": f"ext-{cid}" if r() < 0.3 else "",
            "external_ref": "",
            "custom": {"12": ("Gold", "Silver")[pick(2)], "47": f"{pick(100)}"}
            if r() < 2 / 3
            else {},
            "note": [
                {
                    "date": go_time(us - pick(10**11), rng),
                    "id": f"{rng.getrandbits(48):012x}",
                    "name": "Sam Agent",
                    "text": _NOTES[pick(len(_NOTES))],
                    "user_id": 3001,
                }
            ]
            if r() < 0.25
            else [],
            "tags": [
                {
                    "id": 500 + (tag := pick(len(_TAGS))),
                    "tag": _TAGS[tag],
                    "color": f"#{tag * 1234567 % 0xFFFFFF:06x}",
                    "team_id": 4242,
                    "created": go_time(1_600_000_000_000_000, rng),
                    "updated": go_time(1_610_000_000_000_000 + tag, rng),
                    "rev": 1,
                }
            ]
            if r() < 0.2
            else [],
        }
        if unknown_field:
            contact["loyalty_tier"] = "gold"
        text = json.dumps(contact, ensure_ascii=False, separators=(",", ":")).encode()
        out.append((updated_us, cid, text))
    out.sort(key=lambda entry: entry[:2])
    return out


class Store:
    """The contacts, each serialised once: a page is a bisect, a slice and a join."""

    def __init__(self, entries: list[tuple[int, int, bytes]]) -> None:
        self.keys = [updated for updated, _, _ in entries]
        self.texts = [text for _, _, text in entries]

    def page(self, body: dict) -> bytes:
        limit, page = int(body.get("limit", 100)), int(body.get("page", 0))
        date = body.get("date")
        start = bisect.bisect_left(self.keys, parse_us(date)) if date else 0
        texts = self.texts[start:]
        if body.get("ascending") is False:
            texts = texts[::-1]
        return b"[" + b",".join(texts[page * limit : (page + 1) * limit]) + b"]"


class Traffic:
    """What the server saw since it was last asked (``benchmarks.serve``'s summary)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._reset()

    def _reset(self) -> None:
        self.times: list[float] = []
        self.paths: collections.Counter[str] = collections.Counter()
        self.statuses: collections.Counter[str] = collections.Counter()
        self.max_in_flight = self._in_flight

    def begin(self, path: str) -> None:
        with self._lock:
            self.times.append(time.time())
            self.paths[path] += 1
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def end(self, status: int) -> None:
        with self._lock:
            self._in_flight -= 1
            self.statuses[str(status)] += 1

    def take(self) -> dict:
        with self._lock:
            summary = {
                "requests": len(self.times),
                "paths": dict(self.paths),
                "status_counts": dict(self.statuses),
                "first": min(self.times, default=0.0),
                "last": max(self.times, default=0.0),
                "max_in_flight": self.max_in_flight,
                "max_in_window": 0,
            }
            self._reset()
        return summary


def handler(store: Store, traffic: Traffic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Heymarket

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

        def do_POST(self) -> None:
            traffic.begin(self.path)
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if self.path == LIST_PATH:
                status, payload = 200, store.page(body)
            elif self.path == COUNT_PATH:
                status, payload = 200, f'"{len(store.keys)}"'.encode()
            else:
                status, payload = 404, b'{"error":"not found"}'
            head = (
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Found'}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
            )
            self.wfile.write(head.encode() + payload)  # one write: head and body together
            traffic.end(status)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--unknown-field", action="store_true")
    args = parser.parse_args()
    store = Store(contacts(args.contacts, args.seed, unknown_field=args.unknown_field))
    traffic = Traffic()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(store, traffic))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"READY http://127.0.0.1:{server.server_address[1]}", flush=True)
    for _ in sys.stdin:
        print(json.dumps(traffic.take()), flush=True)
    server.shutdown()


if __name__ == "__main__":
    main()
