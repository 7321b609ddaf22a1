"""The tap rides through what the API and the network do to it: faults injected by the fake API.

Each test runs the real tap as a subprocess, the way a scheduler runs it, against the fake
Heymarket over loopback HTTP, with millisecond backoff and a one-second request timeout. The
unit tests of what these rely on are in test_client.py and test_fetching.py.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from testbed.fake_heymarket import FAULT_KINDS, FakeHeymarket
from testbed.runs import run_tap, tap_config

#: Every fault the fake can inject that a retry can get past (refused credentials cannot).
_ALL_FAULTS = tuple(sorted(FAULT_KINDS - {"429", "401", "403"}))


def fake_ids(fake: FakeHeymarket) -> set[int]:
    return {contact["id"] for contact in fake.contacts()}


def gaps_after_429(fake: FakeHeymarket) -> list[float]:
    """Seconds between each 429 and the retry of its request (the next with its path and body).

    Other requests may go out meanwhile: streams ask for several things at once.
    """
    entries = fake.requests
    gaps = []
    for index, refused in enumerate(entries):
        if refused["status"] != 429:
            continue
        retry = next(
            (
                later
                for later in entries[index + 1 :]
                if (later["path"], later["body"]) == (refused["path"], refused["body"])
            ),
            None,
        )
        if retry is not None:
            gaps.append(retry["time"] - refused["time"])
    return gaps


@pytest.mark.parametrize("retry_after", [None, "seconds", "http-date"])
def test_rate_limited_sync_backs_off_honouring_retry_after_and_completes(retry_after):
    with FakeHeymarket(contacts=200, seed=3) as fake:
        fake.configure(rate_limit=4, rate_window=2.0, retry_after=retry_after)
        # Backoff scaled to the 2 s window as the defaults (1 s doubling to 60 s, 8 retries:
        # at least 91 s in all) are to Heymarket's 60 s one.
        run = run_tap(tap_config(fake, page_size=25, backoff_factor=0.1))

    assert run.returncode == 0, run.stderr
    assert run.ids == fake_ids(fake)
    assert fake.rate_limited > 0, "the scenario must actually hit the rate limit"
    if retry_after == "seconds":
        # Backoff alone would retry within milliseconds; the header says a second or more.
        assert min(gaps_after_429(fake)) >= 0.95
    if retry_after is not None:
        # Waiting as told means about one refusal per window, not a burst of them.
        assert fake.rate_limited <= fake.status_counts[200]


def test_a_retry_after_holds_every_request_of_the_run_not_only_the_refused_one():
    """Heymarket's limit is per API key: after a 429 with ``Retry-After`` no request starts early.

    Answers take 300 ms, so several requests are in flight: those already sent may still
    arrive within the 429's round trip, then nothing until ``Retry-After`` (a second or more)
    has passed, whichever thread or stream asks.
    """
    latency = 0.3
    with FakeHeymarket(contacts=300, seed=3) as fake:
        fake.configure(latency=latency, rate_limit=4, rate_window=2.0, retry_after="seconds")
        run = run_tap(
            tap_config(fake, page_size=25, backoff_factor=0.1, max_requests_per_minute=6000)
        )

    assert run.returncode == 0, run.stderr
    assert run.ids == fake_ids(fake)
    refused = [entry["time"] for entry in fake.requests if entry["status"] == 429]
    assert refused, "the scenario must actually hit the rate limit"
    # The 429 reached the tap ``latency`` after its request arrived; 0.35 s for requests sent
    # just before, 0.1 s short of the shortest Retry-After.
    early = [
        round(entry["time"] - at, 2)
        for at in refused
        for entry in fake.requests
        if at + latency + 0.35 < entry["time"] < at + latency + 0.9
    ]
    assert not early, early


@pytest.mark.parametrize("latency", [0.0, 0.3], ids=["fast-api", "slow-api-requests-in-flight"])
def test_default_pacing_keeps_a_large_sync_under_the_documented_limit_without_a_429(latency):
    # 50 requests per 6 s is Heymarket's 500 a minute, scaled down tenfold in time.
    with FakeHeymarket(contacts=1200, seed=4) as fake:
        fake.configure(rate_limit=50, rate_window=6.0, latency=latency)
        config = tap_config(fake, page_size=20)
        del config["max_requests_per_minute"]  # the default
        run = run_tap(config)

    assert run.returncode == 0, run.stderr
    assert run.ids == fake_ids(fake)
    assert fake.status_counts[200] > 50, "the sync must be long enough to fill the window"
    assert fake.rate_limited == 0
    # 0.3 s answers at one request per 0.125 s: three in flight keep up with the pacing.
    assert (fake.max_in_flight > 1) == (latency > 0)


def test_every_server_and_network_fault_is_retried_and_the_sync_completes():
    with FakeHeymarket(contacts=500, seed=5) as fake:
        fake.configure(hang_seconds=3)
        fake.queue_faults(*_ALL_FAULTS)
        run = run_tap(tap_config(fake, page_size=50, max_retries=len(_ALL_FAULTS)))

    assert run.returncode == 0, run.stderr
    assert run.ids == fake_ids(fake)
    assert [entry["fault"] for entry in fake.requests[: len(_ALL_FAULTS)]] == list(_ALL_FAULTS)
    warnings = [line for line in run.stderr.splitlines() if "retry " in line]
    assert len(warnings) == len(_ALL_FAULTS)
    answered = [line for line in warnings if "answered" in line]
    assert all("X-Request-Id: " in line for line in answered) and len(answered) == 7
    assert any("within request_timeout" in line for line in warnings)


def test_an_api_that_stays_down_fails_after_bounded_retries_with_one_clear_line():
    with FakeHeymarket(contacts=300, seed=7) as fake:
        fake.configure(fail_rate=1.0, fail_kinds=["502"])
        run = run_tap(tap_config(fake, max_retries=3))

    assert run.returncode == 1
    assert len(fake.requests) == 4
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if "Sync failed" in line]
    assert len(errors) == 1 and "after 4 attempts" in errors[0] and "502" in errors[0]
    assert not run.records


@pytest.mark.parametrize("fault", ["json-truncated", "html-200", "error-object-200"])
def test_a_200_that_is_not_a_json_array_fails_the_sync_rather_than_ending_it(fault):
    with FakeHeymarket(contacts=300, seed=8) as fake:
        fake.queue_faults(fault)
        run = run_tap(tap_config(fake, max_retries=0))

    assert run.returncode == 1, "taken for an empty page, the sync would end 'successfully'"
    assert "instead of a JSON array" in run.stderr and "X-Request-Id: " in run.stderr
    assert not any(
        state["bookmarks"]["contacts"].get("replication_key_value") for state in run.states
    )


@pytest.mark.parametrize("fault", ["401", "403"])
def test_refused_credentials_fail_at_once_naming_the_settings_to_check(fault):
    with FakeHeymarket(contacts=300, seed=9) as fake:
        fake.queue_faults(fault)
        run = run_tap(tap_config(fake))

    assert run.returncode == 1
    assert len(fake.requests) == 1, "no retry storm on refused credentials"
    assert f"answered {fault}" in run.stderr and "X-Request-Id: " in run.stderr
    assert "api_secret_id and api_secret_key" in run.stderr and "api_key" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_quarter_of_requests_failing_under_a_tight_rate_limit_loses_no_contact():
    with FakeHeymarket(contacts=1500, seed=10) as fake:
        fake.configure(
            fail_rate=0.25,
            fail_kinds=list(_ALL_FAULTS),
            rate_limit=10,
            rate_window=1.0,
            hang_seconds=2,
            changes_per_request=3,
        )
        # Backoff scaled to the 1 s window, as the default 1 s is to Heymarket's 60 s one.
        run = run_tap(tap_config(fake, page_size=50, backoff_factor=0.1))

    assert run.returncode == 0, run.stderr
    assert fake_ids(fake) <= run.ids
    admitted = [entry for entry in fake.requests if entry["status"] != 429]
    faulted = [entry for entry in admitted if entry["fault"]]
    assert len(faulted) >= 0.15 * len(admitted) and fake.rate_limited > 0


def test_a_json_array_of_non_objects_is_a_failure_not_a_page_of_contacts():
    with FakeHeymarket(contacts=3, seed=11) as fake:
        fake.add_raw_json("42", None, None)  # a bare number among the contacts
        run = run_tap(tap_config(fake, max_retries=0))

    assert run.returncode == 1, "taken for a page of contacts, the number would be skipped"
    assert "instead of a JSON array of contact objects" in run.stderr
    assert "X-Request-Id: " in run.stderr and "Traceback" not in run.stderr
    assert not run.records


def test_the_reliability_report_counts_a_loud_messages_failure_and_its_rerun_as_nothing_lost():
    # The report's messages rows: a capped answer with ``page`` ignored fails in one line, and
    # "out" (what the failed run committed plus the rerun) holds every message.
    report = _reliability_report()
    row = report.messages_sync(
        "capped, page ignored",
        lambda fake: fake.configure(max_limit=30),
        behave=lambda fake: fake.configure(max_limit=None),
        messages=400,
        broadcasts=1,
        broadcast_size=130,
    )

    assert row.contacts_in == 400 and row.lost == "0", row
    assert "failed (exit 1), one line: “Heymarket gave at most 30 records" in row.outcome
    assert row.outcome.endswith("rerun completed")


def _reliability_report():
    path = Path(__file__).resolve().parent.parent / "scripts" / "reliability_report.py"
    spec = importlib.util.spec_from_file_location("reliability_report", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
