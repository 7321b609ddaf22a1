"""Shared fixtures: the fake Heymarket API over real HTTP, and a stub server for the paths around it."""

from __future__ import annotations

import ssl
import threading
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from testbed.fake_heymarket import FakeHeymarket


@pytest.fixture
def fake() -> FakeHeymarket:
    """A fresh fake account of 1,000 contacts, served over real HTTP on loopback."""
    with FakeHeymarket(contacts=1000, seed=11) as server:
        yield server


@pytest.fixture
def serve_empty_pages() -> t.Iterator[t.Callable[..., tuple[str, list[str]]]]:
    """Start loopback servers answering every request with an empty list (HTTPS given an SSL context).

    Each call returns the server's base URL and the list of request targets it is sent (a
    proxy is sent absolute URLs).
    """
    servers: list[ThreadingHTTPServer] = []

    def start(context: ssl.SSLContext | None = None) -> tuple[str, list[str]]:
        asked: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                asked.append(self.path)
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._answer(b"[]")

            def do_GET(self):
                # The lists a sync reads whole: no inboxes, and a team without members.
                asked.append(self.path)
                self._answer(b'{"id": 1, "members": []}' if self.path.endswith("/team") else b"[]")

            def _answer(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if context is not None:
            server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        scheme = "http" if context is None else "https"
        return f"{scheme}://127.0.0.1:{server.server_address[1]}", asked

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
