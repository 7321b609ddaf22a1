"""The HTTP side: a loopback server whose handler does, in order, what every endpoint shares.

For an API route: latency, the request log, the rate limit, auth, a fault, then the handler from
``api.ROUTES``; for ``/_admin/`` a loopback check, then ``admin.ADMIN_ROUTES``. Each reply goes
out in one write, so clients see real framing, keep-alive and cut connections.
"""

from __future__ import annotations

import collections
import contextlib
import http
import json
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from testbed.fake_heymarket.admin import ADMIN_ROUTES
from testbed.fake_heymarket.api import INVALID, ROUTES, Endpoint
from testbed.fake_heymarket.auth import authenticate
from testbed.fake_heymarket.faults import CANNED, spoil
from testbed.fake_heymarket.limits import rate_limited
from testbed.fake_heymarket.reply import Reply, error_reply, json_reply

if TYPE_CHECKING:
    from testbed.fake_heymarket.fake import FakeHeymarket


class Traffic:
    """What the API side saw, for tests and benchmarks to check (admin requests are left out)."""

    def __init__(self) -> None:
        #: Each sync request (path, body, status, auth, time, request_id, fault), oldest first.
        self.requests: list[dict[str, Any]] = []
        self.status_counts: collections.Counter[int] = collections.Counter()
        self.rate_limited = 0
        self.max_in_flight = 0
        self.in_flight = 0
        self._lock = threading.Lock()

    def log(self, entry: dict[str, Any]) -> None:
        """Log a sync request; the server fills in its outcome before answering."""
        with self._lock:
            self.requests.append(entry)

    def count(self, status: int) -> None:
        """Count an answer's status as it is sent."""
        with self._lock:
            self.status_counts[status] += 1
            if status == 429:
                self.rate_limited += 1

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Count a request as in flight while it is handled, for the peak concurrency."""
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1

    def stats(self) -> dict[str, Any]:
        """The counters, as ``GET /_admin/stats`` reports them."""
        with self._lock:
            return {
                "requests": len(self.requests),
                "status_counts": {str(k): v for k, v in self.status_counts.items()},
                "rate_limited": self.rate_limited,
                "max_in_flight": self.max_in_flight,
                "in_flight": self.in_flight,
            }

    def take(self) -> Traffic:
        """What was seen since the last call, then start afresh: one benchmark run at a time."""
        taken = Traffic()
        with self._lock:
            taken.requests, self.requests = self.requests, []
            taken.status_counts, self.status_counts = self.status_counts, collections.Counter()
            taken.rate_limited, self.rate_limited = self.rate_limited, 0
            taken.max_in_flight, self.max_in_flight = self.max_in_flight, 0
        return taken


class Server(ThreadingHTTPServer):
    """The fake on 127.0.0.1, served by a daemon thread; stop() also fails requests in progress."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, fake: FakeHeymarket, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.fake = fake
        #: Set by stop(), to wake handlers sleeping out latency or a hang.
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> None:
        """Serve in the daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, drop open connections, then wake sleeping handlers (to fail unanswered)."""
        self.shutdown()
        self.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self.stopping.set()
        self._thread.join()

    def track(self, conn: socket.socket, *, add: bool) -> None:
        """Keep the set of open connections, for stop() to drop."""
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops."""
        if seconds > 0:
            self.stopping.wait(seconds)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients hanging up mid-response (normal here); show anything else, a bug."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests and benchmarks read the fake's counters, not its stderr."""

    def setup(self) -> None:
        """Disable Nagle (so small replies never wait for a delayed ACK) and track the socket."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        """Untrack the socket so stop() only closes live ones."""
        self.server.track(self.connection, add=False)
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
                chunks.append(chunk := self.rfile.read(size))
                if len(chunk) < size:
                    raise ConnectionAbortedError("the client closed the connection mid-chunk")
                self.rfile.readline()
            while self.rfile.readline().strip():
                pass
            return b"".join(chunks)
        size = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(size)
        if len(body) < size:
            # The client left mid-body (a tap stopped by `meltano config test`, say): a server
            # has no one to answer, so nothing is answered or counted, as a real one logs a 499.
            raise ConnectionAbortedError("the client closed the connection before its body ended")
        return body

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
            self.server.fake.traffic.count(reply.status)
        if reply.cut:
            self.wfile.write(head + body[: len(body) // 2])
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        else:
            self.wfile.write(head + body)

    def _dispatch(self) -> None:
        """Answer one request; a bug in the fake becomes a 500 naming it, not a hung client."""
        self.request_id = uuid.uuid4().hex
        received = time.time()
        path = urlsplit(self.path).path
        self.api = not path.startswith("/_admin/")
        try:
            raw = self._read_body()
            if not self.api:
                self._send(self._admin(path, raw))
                return
            with self.server.fake.traffic.serving():
                self._send(self._api(path, raw, received))
        except OSError:
            self.close_connection = True
        except Exception as exc:
            traceback.print_exc()
            self.close_connection = True
            self._send(error_reply(500, "server_error", f"fake bug: {exc!r}"))

    # ---- the vendor API

    def _api(self, path: str, raw: bytes, received: float) -> Reply:
        """Answer an API request, logging a sync request's outcome before it is sent."""
        self.server.sleep(self.server.fake.knobs.latency)
        endpoint = ROUTES.get((self.command, path))
        body = INVALID if endpoint is None else _parse(raw)
        if endpoint is None or not endpoint.sync:
            return self._answer(endpoint, path, body, None)
        entry: dict[str, Any] = {
            "path": path,
            "body": raw.decode("utf-8", "replace") if body is INVALID else body,
            "status": 0,
            "auth": None,
            "time": received,
            "request_id": self.request_id,
            "fault": None,
        }
        self.server.fake.traffic.log(entry)
        reply = self._answer(endpoint, path, body, entry)
        entry["status"] = reply.status
        return reply

    def _answer(
        self, endpoint: Endpoint | None, path: str, body: Any, entry: dict[str, Any] | None
    ) -> Reply:
        """The rate limit, then the route, auth, a fault and the endpoint's handler, in that order."""
        fake = self.server.fake
        knobs = fake.knobs
        wait = fake.limiter.admit(knobs.rate_limit, knobs.rate_window)
        if wait is not None:
            return rate_limited(wait, knobs)
        if endpoint is None:
            return error_reply(404, "not_found", f"no route {self.command} {path}")
        auth, why = authenticate(
            self.headers.get("Authorization"), fake.secret_id, fake.secret_key, fake.api_key
        )
        fault = fake.faults.next(knobs.fail_rate, knobs.fail_kinds) if endpoint.sync else None
        if entry is not None:
            entry["auth"], entry["fault"] = auth, fault
        if fault == "429":
            return rate_limited(fake.limiter.retry_wait(knobs.rate_limit, knobs.rate_window), knobs)
        if fault in CANNED:
            return CANNED[fault]
        if fault == "hang":
            self.server.sleep(knobs.hang_seconds)
        if auth is None:
            return error_reply(401, "unauthorized", why)
        return spoil(endpoint.handler(fake, body), fault)

    # ---- admin, for a harness in another process

    def _admin(self, path: str, raw: bytes) -> Reply:
        """Run an admin handler for a loopback client; a bad body or argument is a 400."""
        if self.client_address[0] not in ("127.0.0.1", "::1"):
            return error_reply(403, "denied", "admin endpoints are loopback-only")
        try:
            body = json.loads(raw) if raw else {}
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            handler = ADMIN_ROUTES.get((self.command, path))
            if handler is None:
                return error_reply(404, "not_found", f"no route {self.command} {path}")
            result = handler(self.server.fake, body)
        except (ValueError, KeyError, TypeError) as exc:
            return error_reply(400, "bad_data", str(exc))
        return Reply(200, result) if isinstance(result, bytes) else json_reply(200, result)


def _parse(raw: bytes) -> Any:
    """The request body as JSON, or ``INVALID``."""
    try:
        return json.loads(raw)
    except ValueError:
        return INVALID
