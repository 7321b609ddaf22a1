"""Heymarket answering in every way its docs allow, or in ways they do not: never a silent loss.

Each test runs the real tap as a subprocess against the fake over loopback HTTP, with the fake
playing one reading of the docs (the order inside a tie, a cap on ``limit``) or one misbehaviour
(answers not sorted as asked, contacts dated in the future). Where a case cannot be synced
correctly, the tap must exit non-zero with one line saying what Heymarket did, and its last STATE
must not pass a contact it has not emitted.
"""

from __future__ import annotations

import collections
import datetime

import pytest

from tap_heymarket.normalize import TIMESTAMP_FORMAT, normalize_timestamp
from testbed.fake_heymarket import FakeHeymarket
from testbed.runs import TapRun, run_tap, tap_config


def served(fake: FakeHeymarket) -> dict[int, str]:
    """Every contact's id and fixed-width ``updated``, as the fake holds them now."""
    return {c["id"]: normalize_timestamp(c["updated"]) for c in fake.contacts()}


def assert_bookmark_leaves_no_gap(run: TapRun, contacts: dict[int, str]) -> None:
    """A rerun from the last STATE reads every contact the run had not committed by then."""
    if run.bookmark is None:
        return
    committed = {record["id"] for record in run.records_before_last_state()}
    skipped = {cid for cid, updated in contacts.items() if updated < run.bookmark} - committed
    assert not skipped, f"the bookmark {run.bookmark} passed {len(skipped)} contacts not synced"


def assert_failed_in_one_line(run: TapRun, saying: str) -> None:
    """Exit 1, one ERROR line (``Sync failed: ...``) that says ``saying``, no traceback."""
    assert run.returncode == 1, run.stderr
    [line] = error_lines(run)
    assert line.startswith("Sync failed: ") and saying in line, line
    assert "Traceback" not in run.stderr


def join_tie_with_short_ids(fake: FakeHeymarket, n: int) -> None:
    """Add ``n`` contacts with ids 1..n to the fake's largest tie (its ids have 8 digits)."""
    contacts = fake.contacts()
    tie = collections.Counter(c["updated"] for c in contacts).most_common(1)[0][0]
    for cid in range(1, n + 1):
        fake.add_raw({**contacts[0], "id": cid, "updated": tie})


def error_lines(run: TapRun) -> list[str]:
    """Every ERROR line, without the logger's prefix: a failure must be one, saying what failed."""
    return [line.split("| ")[-1] for line in run.stderr.splitlines() if "| ERROR" in line]


@pytest.mark.parametrize("tie_order", ["id", "id-desc", "id-text", "hash"])
def test_a_400_contact_tie_in_any_stable_order_syncs_whole_and_in_updated_order(tie_order):
    with FakeHeymarket(contacts=450, seed=5, tie_groups=1, tie_size=300) as fake:
        join_tie_with_short_ids(fake, 100)  # so that text order and number order differ
        fake.configure(tie_order=tie_order, changes_per_request=2)
        at_start = served(fake)
        run = run_tap(tap_config(fake, page_size=100))

    assert run.returncode == 0, run.stderr
    assert set(at_start) <= run.ids
    updated = [record["updated"] for record in run.records]
    assert updated == sorted(updated), "the SDK's sort check compares updated alone"
    assert "not synced" not in run.stderr


@pytest.mark.parametrize("tie_size", [120, 300])
def test_a_tie_order_that_changes_between_requests_fails_in_one_line_without_a_gap(tie_size):
    with FakeHeymarket(contacts=80, seed=2) as fake:
        base = fake.contacts()[0]
        for cid in range(1, tie_size + 1):  # a bulk import older than every other contact
            fake.add_raw({**base, "id": cid, "updated": "2020-01-01T00:00:00Z"})
        fake.configure(tie_order="unstable")
        at_start = served(fake)
        run = run_tap(tap_config(fake, page_size=100))

    if run.returncode == 0:  # the order happened to hold: then everything must be there
        assert set(at_start) <= run.ids
        return
    assert_failed_in_one_line(run, "in a different order on two requests")
    assert_bookmark_leaves_no_gap(run, at_start)


@pytest.mark.parametrize(
    ("order", "newest_tie"),
    [("newest-first", 0), ("newest-first", 150), ("shuffled", 0)],
    ids=["newest-first", "newest-first-newest-150-share-one-time", "shuffled"],
)
def test_answers_not_sorted_as_asked_fail_in_one_line_without_a_gap(order, newest_tie):
    with FakeHeymarket(contacts=600, seed=8) as fake:
        newest = fake.contacts()[-1]
        for cid in range(1, newest_tie + 1):  # the newest answer holds one time only
            fake.add_raw({**newest, "id": cid, "updated": "2025-06-01T12:00:00Z"})
        fake.configure(order=order)
        at_start = served(fake)
        run = run_tap(tap_config(fake, page_size=100))
        fake.configure(order="as-asked")
        rerun = run_tap(
            tap_config(fake, page_size=100), state=run.states[-1] if run.states else None
        )

    assert_failed_in_one_line(run, "was not sorted by updated, oldest first, as asked")
    assert_bookmark_leaves_no_gap(run, at_start)
    # Once Heymarket sorts again, a rerun from the last STATE brings everything.
    assert rerun.returncode == 0, rerun.stderr
    assert set(at_start) <= {r["id"] for r in run.records_before_last_state()} | rerun.ids


def test_contacts_dated_in_the_future_are_synced_without_moving_the_bookmark_past_now():
    far = "9999-12-31T23:59:59Z"
    soon = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=3)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    with FakeHeymarket(contacts=300, seed=4) as fake:
        fake.add_raw({**fake.contact(fake.contacts()[0]["id"]), "id": 1, "updated": far})
        fake.add_raw({**fake.contact(fake.contacts()[0]["id"]), "id": 2, "updated": soon})
        started = datetime.datetime.now(datetime.timezone.utc)
        first = run_tap(tap_config(fake))
        edited = fake.update_contacts(5)
        second = run_tap(tap_config(fake), state=first.states[-1])

    assert first.returncode == 0, first.stderr
    assert {1, 2} <= first.ids and len(first.ids) == 302
    assert first.bookmark is not None
    assert first.bookmark < (started + datetime.timedelta(minutes=1)).strftime(TIMESTAMP_FORMAT)
    assert "2 contacts were dated in the future" in first.stderr
    # The next run reads every edit made since, and the future-dated contacts again.
    assert second.returncode == 0, second.stderr
    assert set(edited) | {1, 2} <= second.ids


@pytest.mark.parametrize("page_size", [100, 30])
def test_a_server_that_caps_limit_at_50_still_syncs_everything_in_one_run(page_size):
    with FakeHeymarket(contacts=600, seed=6, tie_groups=1, tie_size=120) as fake:
        fake.configure(max_limit=50)
        at_start = served(fake)
        run = run_tap(tap_config(fake, page_size=page_size))
        requests = len([r for r in fake.requests if r["path"] == "/v2/contacts/list"])

    assert run.returncode == 0, run.stderr
    assert set(at_start) <= run.ids
    if page_size > 50:
        assert "at most 50 contacts when asked for 100" in run.stderr
        # 600 contacts in answers of 50 (some repeated across the tie's windows), plus the
        # one request that found 50 was a cap rather than the end.
        assert requests <= 600 // 50 + 6
    else:
        assert "contacts when asked for" not in run.stderr


@pytest.mark.parametrize("seed", [6, 36])
def test_answers_cut_by_size_at_lengths_that_vary_still_sync_everything_in_one_run(seed):
    """A cap by bytes cuts answers anywhere, even among contacts read before: no early end."""
    with FakeHeymarket(contacts=700, seed=seed, tie_groups=2, tie_size=250) as fake:
        fake.configure(max_bytes=47_000, changes_per_request=1)
        at_start = served(fake)
        run = run_tap(tap_config(fake, page_size=100))

    assert run.returncode == 0, run.stderr
    assert set(at_start) <= run.ids


@pytest.mark.parametrize(
    "misbehaviour",
    [
        {"tie_order": "hash", "changes_per_request": 2},
        {"max_limit": 50},
        {"max_bytes": 47_000, "changes_per_request": 1},
        {"date_exclusive": True, "date_precision": "second", "creates_per_request": 2},
        {"order": "newest-first"},
    ],
    ids=["hash-tie-churn", "cap-50", "cut-by-size-churn", "exclusive-seconds-creates", "desc"],
)
def test_a_first_sync_read_in_lanes_over_http_syncs_everything_or_fails_without_a_gap(
    misbehaviour,
):
    # At a latency that calls for requests in flight, a first sync reads the list in lanes,
    # each started by a page at an offset: the readings above, at 100 ms an answer.
    with FakeHeymarket(contacts=1_500, seed=11, tie_groups=3, tie_size=150) as fake:
        fake.configure(latency=0.1, **misbehaviour)
        at_start = served(fake)
        run = run_tap(tap_config(fake, page_size=50))
        at_end = served(fake)

    if run.returncode == 0:
        unchanged = {cid for cid, updated in at_start.items() if at_end.get(cid) == updated}
        assert unchanged <= run.ids
        [summary] = [line for line in run.stderr.splitlines() if "Contacts sync done" in line]
        assert int(summary.split(" lanes")[0].rsplit(" ", 1)[1]) > 1, summary
    else:
        assert_failed_in_one_line(run, "Heymarket")
    assert_bookmark_leaves_no_gap(run, at_end)
