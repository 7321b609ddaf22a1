"""Requests to Heymarket: retries, their backoff and Retry-After, proxies, CA bundles."""

from __future__ import annotations

import email.utils
import signal
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
import requests

from tap_heymarket.client import (
    MAX_RETRY_AFTER_SECONDS,
    HeymarketAPIError,
    HeymarketStream,
    RequestPacer,
    ca_bundle_error,
    retry_after_seconds,
)
from tap_heymarket.tap import TapHeymarket
from testbed.fake_heymarket import FakeHeymarket
from testbed.runs import tap_config


def in_process_stream(fake: FakeHeymarket, **overrides: object) -> HeymarketStream:
    """The contacts stream of a tap built in this process (its signal handlers undone)."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    tap = TapHeymarket(config=tap_config(fake, **overrides), setup_mapper=False)
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    return tap.streams["contacts"]


def test_a_hold_stops_every_thread_at_once_even_while_they_wait_their_turn():
    """``Retry-After`` holds the run's pacer: threads queued for their turn start no request.

    (They used to wait holding the pacer's lock, so the hold queued behind them.)
    """
    pacer = RequestPacer(600)  # a request every 0.1 s
    starts: list[float] = []
    stop = time.monotonic() + 1.2

    def keep_asking() -> None:
        while time.monotonic() < stop:
            pacer.wait()
            starts.append(time.monotonic())

    threads = [threading.Thread(target=keep_asking) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    held = time.monotonic()
    pacer.hold(0.8)
    for thread in threads:
        thread.join()

    assert [start - held for start in starts if held + 0.1 < start < held + 0.8] == []
    assert any(start > held + 0.8 for start in starts), "requests go on after the hold"


def test_requests_start_in_the_order_they_asked_the_pacer():
    """The paginator takes answers in the order it named the requests: the first must go first.

    (Threads woken together used to race for the next start, so the request the sync waited
    on could go last: 83% of the rate limit at 300 ms instead of 95%.)
    """
    pacer = RequestPacer(1200)  # a request every 0.05 s
    started: list[int] = []
    threads = [
        threading.Thread(target=lambda n=n: (pacer.wait(), started.append(n))) for n in range(8)
    ]
    for thread in threads:
        thread.start()
        time.sleep(0.005)  # asked in this order, all within the first start's wait
    for thread in threads:
        thread.join()

    assert started == list(range(8))


def test_retry_after_is_read_in_both_forms_and_capped():
    now = 1_700_000_000.0
    in_90_s = email.utils.formatdate(now + 90, usegmt=True)

    assert retry_after_seconds("7") == 7
    assert retry_after_seconds(in_90_s, now=now) == pytest.approx(90)
    assert retry_after_seconds(email.utils.formatdate(now - 5, usegmt=True), now=now) == 0
    assert retry_after_seconds("86400") == MAX_RETRY_AFTER_SECONDS
    assert retry_after_seconds("soon") is None


def test_retries_back_off_exponentially_with_jitter_each_with_a_fresh_token(monkeypatch):
    delays: list[float] = []
    clock = [1_700_000_000.0]
    sent: list[str] = []

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        clock[0] += 1  # the next attempt happens a second later

    with FakeHeymarket(contacts=10, seed=6) as fake:
        stream = in_process_stream(fake, max_retries=4, backoff_factor=1.0)
        fake.queue_faults("503", "503", "503", "503", "503")
        monkeypatch.setattr("tap_heymarket.client.time.sleep", sleep)
        monkeypatch.setattr(stream.authenticator, "_clock", lambda: clock[0])
        send = requests.Session.send

        def recording_send(session, prepared, **kwargs):
            sent.append(prepared.headers["Authorization"].split()[1])
            return send(session, prepared, **kwargs)

        monkeypatch.setattr(requests.Session, "send", recording_send)
        with pytest.raises(HeymarketAPIError) as failure:
            stream.post_json({"limit": 5, "page": 0, "ascending": True})

    assert len(fake.requests) == 5, "max_retries bounds the attempts"
    assert len(delays) == 4
    for attempt, delay in enumerate(delays):
        assert 0.5 * 2**attempt <= delay <= 2**attempt
    assert len(set(delays)) == len(delays), "jitter: no two delays alike"
    iats = [jwt.decode(token, options={"verify_signature": False})["iat"] for token in sent]
    assert iats == [clock[0] - 4 + attempt for attempt in range(5)], "a fresh token per attempt"
    message = str(failure.value)
    assert "after 5 attempts" in message and "503" in message and "X-Request-Id: " in message


@pytest.mark.parametrize("bypassed", [False, True], ids=["via-proxy", "no-proxy-host"])
def test_proxy_settings_in_the_environment_are_honoured(
    fake, serve_empty_pages, monkeypatch, bypassed
):
    proxy_url, asked = serve_empty_pages()  # as a proxy: it is sent the absolute URL
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    if bypassed:
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    stream = TapHeymarket(config=tap_config(fake), setup_mapper=False).streams["contacts"]

    page = stream.post_json({"limit": 5, "page": 0, "ascending": True})

    if bypassed:
        assert asked == [] and len(page) == 5 and len(fake.requests) == 1
    else:
        assert asked == [f"{fake.url}/v2/contacts/list"] and page == [] and fake.requests == []


def test_a_ca_bundle_the_tap_may_not_read_is_named_with_the_reason(tmp_path, monkeypatch):
    # Stubbed: the suite runs as root in CI, and root can read a file of mode 000.
    bundle = tmp_path / "secret.pem"
    bundle.write_text("")

    def refuse(self, cafile=None, capath=None, cadata=None):
        raise PermissionError(13, "Permission denied", cafile)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", refuse)

    assert ca_bundle_error({"ca_bundle": str(bundle)}, {}) == (
        f"ca_bundle: {str(bundle)!r} cannot be read (Permission denied)"
    )


def test_each_request_is_what_a_requests_session_would_prepare_without_preparing_it_anew(
    fake, monkeypatch
):
    stream = in_process_stream(fake)
    sent: list[requests.PreparedRequest] = []
    send = requests.Session.send

    def recording_send(session, prepared, **kwargs):
        sent.append(prepared)
        return send(session, prepared, **kwargs)

    def prepare_request(session, request):
        raise AssertionError("a request was prepared from scratch")

    monkeypatch.setattr(requests.Session, "send", recording_send)
    monkeypatch.setattr(requests.Session, "prepare_request", prepare_request)
    for page in range(3):
        stream.post_json({"limit": 5, "page": page, "ascending": True})
    stream.post_json({}, lambda content: [content], "/v1/team", method="GET")
    monkeypatch.undo()

    # What the tap prepared before, through a session set up as it set up its sessions.
    reference = requests.Session()
    reference.headers.update(
        {
            "User-Agent": sent[0].headers["User-Agent"],
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
    )
    assert sent[0].headers["User-Agent"].startswith("tap-heymarket/")
    bodies = [*(f'{{"limit":5,"page":{page},"ascending":true}}'.encode() for page in range(3))]
    expected = [
        *(requests.Request("POST", fake.url + "/v2/contacts/list", data=body) for body in bodies),
        requests.Request("GET", fake.url + "/v1/team"),
    ]
    for prepared, request in zip(sent, expected, strict=True):
        wanted = reference.prepare_request(request)
        wanted.headers["Authorization"] = prepared.headers["Authorization"]
        assert (prepared.method, prepared.url, prepared.body) == (
            wanted.method,
            wanted.url,
            wanted.body,
        )
        assert dict(prepared.headers) == dict(wanted.headers)


def test_cookies_heymarket_sets_are_sent_back_on_the_same_connection():
    # A load balancer's sticky-session cookie, as a keep-alive session returns it.
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            seen.append(self.headers.get("Cookie"))
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Set-Cookie", "AWSALB=sticky-1; Path=/")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = {
            "api_url": f"http://127.0.0.1:{server.server_address[1]}",
            "api_secret_id": "sid",
            "api_secret_key": "key",
        }
        stream = TapHeymarket(config=config, setup_mapper=False).streams["contacts"]
        for page in range(3):
            assert stream.post_json({"limit": 5, "page": page, "ascending": True}) == []
    finally:
        server.shutdown()
        server.server_close()

    assert seen == [None, "AWSALB=sticky-1", "AWSALB=sticky-1"]
