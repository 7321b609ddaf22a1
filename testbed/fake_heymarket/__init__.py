"""A faithful, fast fake of Heymarket's ``POST /v2/contacts/list`` on a real loopback HTTP server.

Acceptance tests, the demo and the benchmarks talk to it over real sockets, so it reproduces what a
client can observe of the vendor: JWT / API-key auth, body validation with ``bad_data`` errors,
date filtering and paging, Go-style timestamps, rate limiting, faults (5xx, HTML pages, cut
connections, hangs, truncated JSON) and data that changes between requests. Where the vendor's
behaviour is unknown (inclusive or exclusive ``date``, comparison precision, the order inside a
tie, a cap on ``limit``) it is a knob, and so are misbehaviours a client must catch (answers
newest first whatever ``ascending`` says, shuffled pages, contacts dated in the future).

Contacts are stored as their JSON text, in a list kept sorted by ``(updated, id)`` (a write
re-serialises one contact and moves it; nothing is ever re-sorted), so a page is a bisect on the
date plus a join of a slice: a small fraction of a millisecond even with 100,000 contacts.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import http
import json
import random
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterable, Sequence
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from testbed.fake_heymarket.auth import IAT_SKEW, TOKEN_LIFETIME, authenticate, make_jwt
from testbed.fake_heymarket.faults import CANNED, FAULT_KINDS, FaultQueue, spoil
from testbed.fake_heymarket.generator import INBOXES
from testbed.fake_heymarket.knobs import ORDERS, TIE_ORDERS, Knobs
from testbed.fake_heymarket.limits import RateLimiter, rate_limited
from testbed.fake_heymarket.reply import Reply, error_reply, json_reply
from testbed.fake_heymarket.store import ContactStore
from testbed.fake_heymarket.wire import (
    format_go_time,
    is_int,
    parse_ns,
    parse_time,
)

__all__ = [
    "FAULT_KINDS",
    "IAT_SKEW",
    "INBOXES_PATH",
    "LIST_PATH",
    "ORDERS",
    "TIE_ORDERS",
    "TOKEN_LIFETIME",
    "FakeHeymarket",
    "Knobs",
    "format_go_time",
    "main",
    "make_jwt",
    "parse_time",
]

LIST_PATH = "/v2/contacts/list"
INBOXES_PATH = "/v1/inboxes"
_INVALID = object()
_T = TypeVar("_T")


# --------------------------------------------------------------------------- server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    fake: FakeHeymarket

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients hanging up mid-response (normal here); show anything else, a bug."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests and benchmarks read the fake's counters, not its stderr."""

    def setup(self) -> None:
        """Disable Nagle (so small replies never wait for a delayed ACK) and track the socket."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        """Untrack the socket so stop() only closes live ones."""
        self.server.fake._track(self.connection, add=False)
        super().finish()

    def do_GET(self) -> None:
        """Route a GET."""
        self._dispatch()

    def do_POST(self) -> None:
        """Route a POST."""
        self._dispatch()

    do_PUT = do_PATCH = do_DELETE = do_POST

    # ---- plumbing

    def _read_body(self) -> bytes:
        """Read the whole request body (always, so keep-alive stays in sync)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, reply: Reply) -> None:
        """Write the reply in one send; a ``cut`` one sends half the body, then drops the socket."""
        body = reply.body
        lines = [
            f"HTTP/1.1 {reply.status} {http.HTTPStatus(reply.status).phrase}",
            f"Content-Type: {reply.ctype}",
            f"Content-Length: {len(body)}",
            f"X-Request-Id: {self.request_id}",
            f"Date: {formatdate(usegmt=True)}",
            *(f"{name}: {value}" for name, value in reply.headers),
        ]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if self.api:
            self.server.fake._count(reply.status)
        if reply.cut:
            self.wfile.write(head + body[: len(body) // 2])
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        else:
            self.wfile.write(head + body)

    def _dispatch(self) -> None:
        fake = self.server.fake
        self.request_id = uuid.uuid4().hex
        received = time.time()
        path = urlsplit(self.path).path
        self.api = not path.startswith("/_admin/")
        try:
            raw = self._read_body()
            if not self.api:
                self._send(self._admin(path, raw))
                return
            with fake._in_flight_lock:
                fake._in_flight += 1
                fake.max_in_flight = max(fake.max_in_flight, fake._in_flight)
            try:
                self._send(self._api(path, raw, received))
            finally:
                with fake._in_flight_lock:
                    fake._in_flight -= 1
        except OSError:
            self.close_connection = True
        except Exception as exc:
            traceback.print_exc()
            self.close_connection = True
            self._send(error_reply(500, "server_error", f"fake bug: {exc!r}"))

    # ---- the vendor API

    def _api(self, path: str, raw: bytes, received: float) -> Reply:
        fake = self.server.fake
        fake._sleep(fake.knobs.latency)
        if path == LIST_PATH and self.command == "POST":
            return self._list(raw, received)
        wait = fake.limiter.admit(fake.knobs.rate_limit, fake.knobs.rate_window)
        if wait is not None:
            return rate_limited(wait, fake.knobs)
        if path == INBOXES_PATH and self.command == "GET":
            auth, why = fake._authenticate(self.headers.get("Authorization"))
            if auth is None:
                return error_reply(401, "unauthorized", why)
            return json_reply(200, list(INBOXES))
        return error_reply(404, "not_found", f"no route {self.command} {path}")

    def _list(self, raw: bytes, received: float) -> Reply:
        """Answer a list request, logging its outcome before it is sent."""
        fake = self.server.fake
        entry: dict[str, Any] = {
            "body": None,
            "status": 0,
            "auth": None,
            "time": received,
            "request_id": self.request_id,
            "fault": None,
        }
        try:
            body: Any = json.loads(raw)
            entry["body"] = body
        except ValueError:
            body = _INVALID
            entry["body"] = raw.decode("utf-8", "replace")
        with fake._lock:
            fake.requests.append(entry)
        reply = self._list_reply(body, entry)
        entry["status"] = reply.status
        return reply

    def _list_reply(self, body: Any, entry: dict[str, Any]) -> Reply:
        fake = self.server.fake
        wait = fake.limiter.admit(fake.knobs.rate_limit, fake.knobs.rate_window)
        if wait is not None:
            return rate_limited(wait, fake.knobs)
        auth, why = fake._authenticate(self.headers.get("Authorization"))
        entry["auth"] = auth
        fault = entry["fault"] = fake.faults.next(fake.knobs.fail_rate, fake.knobs.fail_kinds)
        if fault == "429":
            wait = fake.limiter.retry_wait(fake.knobs.rate_limit, fake.knobs.rate_window)
            return rate_limited(wait, fake.knobs)
        if fault in CANNED:
            return CANNED[fault]
        if fault == "hang":
            fake._sleep(fake.knobs.hang_seconds)
        if auth is None:
            return error_reply(401, "unauthorized", why)
        params = _list_params(body)
        if isinstance(params, str):
            return error_reply(400, "bad_data", params)
        knobs = fake.knobs
        page = fake.store.page(*params, knobs)
        fake.store.churn(knobs.changes_per_request, knobs.creates_per_request)
        return spoil(Reply(200, page), fault)

    # ---- admin, for a harness in another process

    def _admin(self, path: str, raw: bytes) -> Reply:
        fake = self.server.fake
        if self.client_address[0] not in ("127.0.0.1", "::1"):
            return error_reply(403, "denied", "admin endpoints are loopback-only")
        try:
            body = json.loads(raw) if raw else {}
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            result = fake._admin_call(self.command, path, body)
        except (ValueError, KeyError, TypeError) as exc:
            return error_reply(400, "bad_data", str(exc))
        if result is None:
            return error_reply(404, "not_found", f"no route {self.command} {path}")
        return Reply(200, result) if isinstance(result, bytes) else json_reply(200, result)


def _list_params(body: Any) -> tuple[int, int, int | None, bool] | str:
    """``(limit, page, date_ns, ascending)`` from a list body, or the ``bad_data`` message."""
    if body is _INVALID:
        return "body is not valid JSON"
    if not isinstance(body, dict):
        return "body must be a JSON object"
    limit = body.get("limit", 30)
    if not is_int(limit) or not 1 <= limit <= 100:
        return f"limit must be an integer from 1 to 100, got {limit!r}"
    page = body.get("page", 0)
    if not is_int(page) or page < 0:
        return f"page must be a non-negative integer, got {page!r}"
    date_ns = None
    if "date" in body:
        date = body["date"]
        try:
            if not isinstance(date, str):
                raise TypeError
            date_ns = parse_ns(date)
        except (TypeError, ValueError, OverflowError):
            return f"date must be an RFC 3339 timestamp, got {date!r}"
    ascending = body.get("ascending", False)
    if not isinstance(ascending, bool):
        return f"ascending must be a boolean, got {ascending!r}"
    return limit, page, date_ns, ascending


# --------------------------------------------------------------------------- the fake


def _with_knob_attributes(cls: type[_T]) -> type[_T]:
    """Make each knob an attribute too (``fake.latency = 0.3``), checked like ``configure()``."""

    def knob(field: dataclasses.Field[Any]) -> property:
        def get(fake: Any) -> Any:
            return getattr(fake.knobs, field.name)

        def set(fake: Any, value: Any) -> None:
            fake.configure(**{field.name: value})

        return property(get, set, doc=field.metadata["help"])

    for field in dataclasses.fields(Knobs):
        setattr(cls, field.name, knob(field))
    return cls


@_with_knob_attributes
class FakeHeymarket:
    """The fake API: a contact store plus behaviour knobs, served by a background HTTP server."""

    def __init__(
        self,
        *,
        secret_id: str = "fake-secret-id",
        secret_key: str = "fake-secret-key",
        api_key: str | None = None,
        contacts: int = 0,
        seed: int = 0,
        start: str = "2024-01-01T00:00:00Z",
        tie_groups: int = 0,
        tie_size: int = 0,
        port: int = 0,
        knobs: Knobs | None = None,
    ) -> None:
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.api_key = api_key
        self.port = port
        #: The behaviour knobs; replaced as a whole by configure(), so a request sees one set.
        self.knobs = Knobs() if knobs is None else knobs
        self._knobs_lock = threading.Lock()
        # observability
        self.requests: list[dict[str, Any]] = []
        self.status_counts: collections.Counter[int] = collections.Counter()
        self.rate_limited = 0
        self.max_in_flight = 0
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        # what the server saw, and the connections it has open
        self._lock = threading.Lock()
        self.store = ContactStore(
            contacts=contacts, seed=seed, start=start, tie_groups=tie_groups, tie_size=tie_size
        )
        self.faults = FaultQueue(random.Random(seed + 1))
        self.limiter = RateLimiter()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        if self._server is None:
            raise RuntimeError("FakeHeymarket is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeHeymarket:
        """Bind 127.0.0.1 (a free port unless ``port`` was given) and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("FakeHeymarket is already started")
        self._stopping.clear()
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections, then wake sleeping handlers (to fail unanswered)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> FakeHeymarket:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- data

    def contacts(self) -> list[dict[str, Any]]:
        """Deep copies of every contact, sorted by (updated, id), exactly as served."""
        return json.loads(self.store.all_json())

    def contact(self, id: Any) -> dict[str, Any]:
        """Return a deep copy of one contact, as served; KeyError if unknown."""
        return self.store.contact(id)

    def update_contacts(
        self, n: int | None = None, ids: Sequence[int] | None = None, *, same_time: bool = False
    ) -> list[int]:
        """Write to ``ids`` (or ``n`` random contacts): rev+1, new name/custom, newest ``updated``.

        ``same_time`` gives the whole batch one ``updated`` (a bulk edit), else each its own.
        """
        return self.store.update(n, ids, same_time=same_time)

    def create_contacts(self, n: int, *, same_time: bool = False) -> list[int]:
        """Create ``n`` contacts with ids above all others, rev 1, created = updated = now."""
        return self.store.create(n, same_time=same_time)

    def delete_contacts(self, ids: Iterable[int]) -> None:
        """Delete for good (the vendor says deletion is permanent); KeyError if unknown."""
        self.store.delete(ids)

    def add_raw(self, record: dict[str, Any]) -> None:
        """Insert ``record`` as-is (bad-data tests); an unparseable ``updated`` sorts it first."""
        self.store.add_raw(record)

    def add_raw_json(self, text: str, updated: str | None, id: int | None) -> None:
        r"""Insert one contact's exact JSON ``text``, sorted by ``updated`` and ``id``.

        For what ``add_raw`` cannot write: a lone ``\ud800`` JSON escape, or a lone surrogate
        character, which goes out as the invalid UTF-8 bytes ED A0 80.
        """
        self.store.add_raw_json(text, updated, id)

    def queue_faults(self, *kinds: str) -> None:
        """Give the next list requests these faults, in order, before ``fail_rate`` applies."""
        self.faults.queue(kinds)

    # ---- request-side helpers (thread-safe)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def _count(self, status: int) -> None:
        with self._lock:
            self.status_counts[status] += 1
            if status == 429:
                self.rate_limited += 1

    def _authenticate(self, header: str | None) -> tuple[str | None, str]:
        """``("jwt" | "api_key", "")`` for good credentials, else ``(None, why)``."""
        return authenticate(header, self.secret_id, self.secret_key, self.api_key)

    def _admin_call(self, method: str, path: str, body: dict[str, Any]) -> Any:
        """Run an admin command; None means no such route."""
        route = (method, path)
        if route == ("GET", "/_admin/contacts"):
            return self.store.all_json().encode("utf-8", "surrogatepass")
        if route == ("GET", "/_admin/stats"):
            with self._lock:
                return {
                    "contacts": len(self.store),
                    "requests": len(self.requests),
                    "status_counts": {str(k): v for k, v in self.status_counts.items()},
                    "rate_limited": self.rate_limited,
                    "max_in_flight": self.max_in_flight,
                    "in_flight": self._in_flight,
                }
        if route == ("POST", "/_admin/update"):
            return {"ids": self.update_contacts(body.get("n"), body.get("ids"))}
        if route == ("POST", "/_admin/create"):
            return {"ids": self.create_contacts(int(body.get("n", 1)))}
        if route == ("POST", "/_admin/delete"):
            self.delete_contacts(body["ids"])
            return {"deleted": len(body["ids"])}
        if route == ("POST", "/_admin/faults"):
            return {"queued": self.faults.queue(body["kinds"])}
        if route == ("POST", "/_admin/config"):
            self.configure(**body)
            return dataclasses.asdict(self.knobs)
        return None

    def configure(self, **knobs: Any) -> None:
        """Set behaviour knobs by name; all are checked (see ``Knobs``) before any applies."""
        with self._knobs_lock:
            self.knobs = self.knobs.changed(**knobs)


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake in the foreground until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m testbed.fake_heymarket",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default="2024-01-01T00:00:00Z")
    parser.add_argument("--tie-groups", type=int, default=0)
    parser.add_argument("--tie-size", type=int, default=0)
    parser.add_argument("--secret-id", default="fake-secret-id")
    parser.add_argument("--secret-key", default="fake-secret-key")
    parser.add_argument("--api-key", default=None)
    Knobs.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        knobs = Knobs.from_arguments(args)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    fake = FakeHeymarket(
        secret_id=args.secret_id,
        secret_key=args.secret_key,
        api_key=args.api_key,
        contacts=args.contacts,
        seed=args.seed,
        start=args.start,
        tie_groups=args.tie_groups,
        tie_size=args.tie_size,
        port=args.port,
        knobs=knobs,
    )
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with fake:
        credentials = f"secret_id={fake.secret_id} secret_key={fake.secret_key}"
        if fake.api_key:
            credentials += f" api_key={fake.api_key}"
        print(f"fake Heymarket at {fake.url} ({args.contacts} contacts) {credentials}", flush=True)
        while not done.wait(0.5):
            pass
