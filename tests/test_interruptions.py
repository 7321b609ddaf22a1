"""Interrupted runs: killed, stopped or cut off from the API, a rerun from the last STATE loses nothing.

"What a target has" is modelled strictly: only the records before the last STATE that reached
stdout count as loaded, as if the target dropped everything after its last commit.
"""

from __future__ import annotations

import random
import signal

import pytest

from tap_heymarket.streams import STATE_EVERY_PAGES
from testbed.fake_heymarket import FakeHeymarket
from testbed.runs import TapRun, interrupt_tap, run_tap, send, tap_config

PAGE_SIZE = 50
#: The most a resumed run may read again: the pages since the last STATE, plus one page of
#: contacts sharing the bookmark's second (the restart asks from a second before it).
MAX_REREAD = (STATE_EVERY_PAGES + 1) * PAGE_SIZE


def last_bookmark(run: TapRun) -> dict:
    assert run.states, "the interrupted run emitted no STATE to resume from"
    return run.states[-1]


def resume_and_check(fake: FakeHeymarket, first: TapRun, config: dict) -> TapRun:
    """Rerun from ``first``'s last STATE; assert nothing is lost and little is read again."""
    second = run_tap(config, state=last_bookmark(first))
    assert second.returncode == 0, second.stderr
    committed = {record["id"] for record in first.records_before_last_state()}
    everything = {contact["id"] for contact in fake.contacts()}
    assert everything - committed - second.ids == set(), "contacts lost across the restart"
    assert len(committed & second.ids) <= PAGE_SIZE, "the restart re-read committed contacts"
    assert len(first.records) - len(first.records_before_last_state()) <= MAX_REREAD
    return second


def assert_bookmarks_never_run_ahead(run: TapRun) -> None:
    """Every STATE's bookmark is the ``updated`` of a record emitted before it."""
    newest = None
    for message in run.messages:
        if message["type"] == "RECORD":
            newest = max(newest or "", message["record"]["updated"])
        elif message["type"] == "STATE":
            bookmark = message["value"]["bookmarks"]["contacts"].get("replication_key_value")
            assert bookmark is None or (newest is not None and bookmark <= newest)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_at_a_random_point_then_a_rerun_from_the_last_state_loses_nothing(seed):
    kill_after = random.Random(seed).randrange(1, 1900)
    with FakeHeymarket(contacts=2000, seed=seed) as fake:
        config = tap_config(fake, page_size=PAGE_SIZE)
        first, _ = interrupt_tap(config, kill_after, send(signal.SIGKILL))
        assert first.returncode == -signal.SIGKILL
        resume_and_check(fake, first, config)


def test_api_gone_for_good_midway_fails_the_run_and_a_rerun_later_loses_nothing():
    with FakeHeymarket(contacts=2000, seed=4) as fake:
        config = tap_config(fake, page_size=PAGE_SIZE, max_retries=2)
        first, _ = interrupt_tap(config, 900, lambda _: fake.configure(fail_rate=1.0))
        assert first.returncode == 1
        assert "Sync failed" in first.stderr and "Traceback" not in first.stderr
        assert_bookmarks_never_run_ahead(first)
        fake.configure(fail_rate=0.0)
        resume_and_check(fake, first, config)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("in_flight", ["answering", "hanging"])
def test_sigterm_and_sigint_stop_promptly_without_a_bookmark_past_the_records(sig, in_flight):
    with FakeHeymarket(contacts=2000, seed=5) as fake:
        fake.configure(latency=0.005, hang_seconds=30)
        config = tap_config(fake, page_size=PAGE_SIZE, request_timeout=20)

        def stop(process):
            if in_flight == "hanging":
                fake.configure(fail_rate=1.0, fail_kinds=["hang"])
            process.send_signal(sig)

        first, seconds = interrupt_tap(config, 700, stop)
        assert seconds < 3, "the tap must not wait for the request in flight"
        assert first.returncode == 128 + sig
        assert_bookmarks_never_run_ahead(first)
        fake.configure(fail_rate=0.0)
        resume_and_check(fake, first, config)
