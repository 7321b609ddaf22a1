"""Requests in flight: pages fetched on threads, in the paginator's order, each on its own session."""

from __future__ import annotations

import signal
import threading

import pytest
import requests

from tap_heymarket.fetching import MAX_IN_FLIGHT, AnyOrder, in_flight_target
from tap_heymarket.tap import TapHeymarket
from testbed.fake_heymarket import FakeHeymarket
from testbed.runs import tap_config


def test_requests_in_flight_never_share_a_session_and_every_contact_comes_once_in_order(
    monkeypatch,
):
    in_use: set[int] = set()
    shared: list[int] = []
    used: set[int] = set()
    lock = threading.Lock()
    send = requests.Session.send

    def exclusive_send(session, prepared, **kwargs):
        with lock:
            if id(session) in in_use:
                shared.append(id(session))
            in_use.add(id(session))
            used.add(id(session))
        try:
            return send(session, prepared, **kwargs)
        finally:
            with lock:
                in_use.discard(id(session))

    monkeypatch.setattr(requests.Session, "send", exclusive_send)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with FakeHeymarket(contacts=1500, seed=9) as fake:
        fake.configure(latency=0.1)
        tap = TapHeymarket(config=tap_config(fake, page_size=50), setup_mapper=False)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        stream = tap.streams["contacts"]
        stream._write_starting_replication_value(None)  # what the SDK does as a sync starts
        records = list(stream.get_records(None))
        expected = {contact["id"] for contact in fake.contacts()}

    assert fake.max_in_flight > 1, "the slow API must make the tap send requests together"
    assert not shared, "two requests in flight used one session at once"
    assert 1 < len(used) <= MAX_IN_FLIGHT, (
        "sessions are kept alive and reused, at most one per request in flight"
    )
    assert sorted(record["id"] for record in records) == sorted(expected)
    updated = [record["updated"] for record in records]
    assert updated == sorted(updated)


@pytest.mark.parametrize(
    ("latency", "interval", "busy", "expected"),
    [
        (None, 0.125, None, 1),
        (0.003, 0.00006, 0.004, 1),
        (0.1, 0.125, 0.004, 1),
        (0.3, 0.125, 0.004, 4),
        (1.0, 0.00006, 0.004, MAX_IN_FLIGHT),
        (0.1, 0.00006, 0.08, 1),
    ],
    ids=[
        "nothing-measured-yet",
        "cpu-bound",
        "pacing-bound",
        "slow-api-under-default-pacing",
        "latency-bound-capped",
        "writing-a-page-is-the-bottleneck",
    ],
)
def test_requests_in_flight_cover_the_latency_only_where_latency_is_the_bottleneck(
    latency, interval, busy, expected
):
    assert in_flight_target(latency, interval, busy) == expected


def test_requests_run_on_daemon_threads_that_wait_for_the_next_one(monkeypatch):
    # A thread started per request took the interpreter lock from the sync (about 5% of it).
    started: list[threading.Thread] = []
    start = threading.Thread.start

    def counting_start(thread):
        started.append(thread)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    one_by_one = AnyOrder(lambda request: threading.current_thread().daemon)
    for request in range(20):
        one_by_one.send(request)
        assert one_by_one.take(timeout=5) == (request, True), "a daemon thread: never waited on"
    assert len(started) <= 1

    # As many threads as requests in flight: five that wait for each other all run at once.
    gate = threading.Barrier(5, timeout=5)
    together = AnyOrder(lambda request: gate.wait())
    for request in range(5):
        together.send(request)
    assert sorted(together.take(timeout=5)[0] for _ in range(5)) == list(range(5))
