"""The messages stream against the fake over HTTP: every reading of the cursor, ties, churn, resumes.

Each run is the tap's own command line; "synced" means a RECORD reached stdout.
"""

from __future__ import annotations

import datetime
import random
import signal

import pytest

from tap_heymarket.tap import TapHeymarket
from testbed.fake_heymarket import FakeHeymarket
from testbed.runs import TapRun, interrupt_tap, run_tap, send, tap_config

MESSAGES_PATH = "/v1/messages/all"


def message_records(run: TapRun) -> list[dict]:
    return [
        m["record"] for m in run.messages if m["type"] == "RECORD" and m["stream"] == "messages"
    ]


def messages_state(run: TapRun) -> dict:
    return run.states[-1]["bookmarks"]["messages"]


def message_requests(fake: FakeHeymarket) -> list[dict]:
    return [r for r in fake.requests if r["path"] == MESSAGES_PATH]


def only_messages(fake: FakeHeymarket, **overrides) -> dict:
    """The tap's config with only the messages stream selected (contacts cost a request each)."""
    return tap_config(fake, **overrides)


def run_messages(config: dict, state: dict | None = None) -> TapRun:
    return run_tap(config, state=state)


@pytest.mark.parametrize(
    ("cursor", "precision", "tie_order"),
    [
        ("exclusive", "full", "id"),
        ("exclusive", "second", "hash"),
        ("inclusive", "full", "id-desc"),
        ("inclusive", "second", "id-text"),
    ],
)
def test_every_message_is_synced_once_whatever_the_cursor_means(cursor, precision, tie_order):
    with FakeHeymarket(messages=1500, broadcasts=4, broadcast_size=240, seed=7) as fake:
        fake.configure(messages_cursor=cursor, date_precision=precision, tie_order=tie_order)
        before = {m["id"] for m in fake.all_messages()}
        run = run_messages(only_messages(fake))
        assert run.returncode == 0, run.stderr
        ids = [record["id"] for record in message_records(run)]
        assert set(ids) == before
        assert len(ids) == len(set(ids)), "a message was passed on twice"
        assert messages_state(run)["replication_key_value"] >= max(
            m["date"] for m in fake.all_messages()
        )
        assert "walks" not in messages_state(run)


def test_each_message_row_carries_its_conversation_and_inbox_as_columns():
    with FakeHeymarket(messages=50, seed=3) as fake:
        run = run_messages(only_messages(fake))
        assert run.returncode == 0, run.stderr
        served = {m["id"]: m for m in fake.all_messages()}
        for record in message_records(run):
            conversation = served[record["id"]]["conversation"]
            assert record["conversation_id"] == conversation["id"]
            assert record["inbox_id"] == conversation["inbox"]
            assert record["conversation"]["id"] == conversation["id"]
            assert record["date"].endswith("Z") and len(record["date"]) == 27


def test_the_request_asks_newest_first_by_creation_before_a_whole_second():
    with FakeHeymarket(messages=10, seed=1) as fake:
        run = run_messages(only_messages(fake, page_size=40))
        assert run.returncode == 0, run.stderr
        # (A first sync also asks for the oldest message, oldest first, to place its splits.)
        first = next(
            r["body"] for r in message_requests(fake) if r["body"].get("ascending") is False
        )
        assert first.keys() == {"created_at", "order", "ascending", "limit"}
        assert first["order"] == "created_at" and first["ascending"] is False
        assert first["limit"] == 40
        assert first["created_at"].endswith(":00Z") or first["created_at"][19:] == "Z"


def test_a_first_sync_asks_its_first_page_beside_the_count_and_the_oldest_message(capsys):
    # Waiting for both before the first page cost a round trip of a slow API in which
    # nothing else was asked.
    latency = 0.3
    with FakeHeymarket(messages=300, seed=4) as fake:
        fake.configure(latency=latency)
        config = only_messages(fake, page_size=100, max_requests_per_minute=6000)
        TapHeymarket(config=config, setup_mapper=True).streams["messages"].sync()
    capsys.readouterr()
    requests = message_requests(fake)
    oldest = next(r["time"] for r in requests if r["body"]["ascending"] is True)
    first_page = next(r["time"] for r in requests if r["body"]["ascending"] is False)
    assert first_page < oldest + latency, "the first page waited for the oldest message"


def test_a_first_sync_of_a_slow_api_splits_its_walk_before_any_answer_is_in():
    # Splits waited for the count and the oldest message: a slow API's first round trip
    # passed with a single page asked.
    latency = 0.6
    with FakeHeymarket(messages=3000, seed=5) as fake:
        fake.configure(latency=latency)
        everything = {m["id"] for m in fake.all_messages()}
        run = run_messages(only_messages(fake, page_size=100, max_requests_per_minute=600))
    assert run.returncode == 0, run.stderr
    requests = message_requests(fake)
    first = requests[0]["time"]
    pages = [r for r in requests if r["body"]["ascending"] is False and r["time"] < first + latency]
    assert len(pages) > 1, "nothing but the first page was asked before the first answer"
    records = [r["id"] for r in message_records(run)]
    assert set(records) == everything and len(records) == len(everything)


@pytest.mark.parametrize("pages", ["from-0", "from-1"])
def test_a_broadcast_larger_than_a_capped_answer_is_read_with_page(pages):
    with FakeHeymarket(messages=400, broadcasts=2, broadcast_size=130, seed=5) as fake:
        fake.configure(max_limit=50, messages_page=pages)
        run = run_messages(only_messages(fake))
        assert run.returncode == 0, run.stderr
        assert {r["id"] for r in message_records(run)} == {m["id"] for m in fake.all_messages()}
        assert any("page" in r["body"] for r in message_requests(fake))


@pytest.mark.parametrize("pages", ["from-0", "from-1"])
def test_a_broadcast_read_in_answers_cut_by_size_is_synced_whole(pages):
    """A cap by bytes cuts each answer at its own length: none proves the broadcast or the list
    at an end (a short page ended the walk, losing the rest of the broadcast and all older)."""
    with FakeHeymarket(messages=2000, broadcasts=1, broadcast_size=1300, seed=5) as fake:
        rng = random.Random(5)
        for message in fake.all_messages():
            if message["broadcast_id"]:  # a merge field per recipient: sizes vary
                fake.change_message(message["id"], text="Hi " + "x" * rng.randrange(2_000))
        fake.configure(max_bytes=300_000, messages_page=pages)
        run = run_messages(only_messages(fake))
        assert run.returncode == 0, run.stderr
        assert {r["id"] for r in message_records(run)} == {m["id"] for m in fake.all_messages()}
        assert any("page" in r["body"] for r in message_requests(fake))


def test_a_capped_broadcast_with_page_ignored_fails_in_one_line_keeping_the_old_bookmark():
    with FakeHeymarket(messages=400, broadcasts=1, broadcast_size=130, seed=5) as fake:
        fake.configure(max_limit=50)
        broadcast_id = next(m["broadcast_id"] for m in fake.all_messages() if m["broadcast_id"])
        state = {"bookmarks": {"messages": {"replication_key": "date",
                                            "replication_key_value": "2020-01-01T00:00:00.000000Z"}}}  # fmt: skip
        run = run_messages(only_messages(fake), state=state)
        assert run.returncode == 1
        errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
        assert len(errors) == 1, run.stderr
        assert "at most 50 records created within the second" in errors[0]
        assert "Traceback" not in run.stderr
        # Every STATE keeps the old bookmark; the walk's boundary stays above the broadcast.
        broadcast_date = next(
            r["date"] for r in message_records(run) if r["broadcast_id"] == broadcast_id
        )
        for value in run.states:
            saved = value["bookmarks"]["messages"]
            assert saved["replication_key_value"] == "2020-01-01T00:00:00.000000Z"
            assert all(walk["boundary"] > broadcast_date for walk in saved.get("walks", []))


def test_a_server_reading_the_cursor_from_date_fails_in_one_line_instead_of_losing_messages():
    with FakeHeymarket(messages=300, seed=2) as fake:
        fake.configure(messages_cursor_field="date")
        run = run_messages(only_messages(fake))
        assert run.returncode == 1
        assert "ignored the cursor" in run.stderr
        assert all("replication_key_value" not in v["bookmarks"].get("messages", {})
                   for v in run.states)  # fmt: skip


def test_messages_created_and_changed_during_a_sync_are_synced_by_the_next_run():
    with FakeHeymarket(messages=2000, broadcasts=2, broadcast_size=200, seed=9) as fake:
        fake.configure(message_creates_per_request=3, message_changes_per_request=3)
        first = run_messages(only_messages(fake))
        assert first.returncode == 0, first.stderr
        fake.configure(message_creates_per_request=0, message_changes_per_request=0)
        second = run_messages(only_messages(fake), state=first.states[-1])
        assert second.returncode == 0, second.stderr
        synced = {}
        for record in message_records(first) + message_records(second):
            synced[record["id"]] = record
        served = {m["id"]: m for m in fake.all_messages()}
        assert synced.keys() == served.keys()
        # Changes within the look-back are synced: the warehouse has each message's last status.
        day_ago = _iso(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=23))
        for message_id, message in served.items():
            if message["date"] >= day_ago:
                assert synced[message_id]["status"] == message["status"], message_id


def test_an_incremental_run_reads_back_only_the_look_back_and_syncs_status_changes():
    with FakeHeymarket(messages=3000, seed=4) as fake:
        first = run_messages(only_messages(fake))
        assert first.returncode == 0, first.stderr
        recent = [m for m in fake.all_messages()][-5:]
        for message in recent:
            fake.change_message(message["id"], status="failed")
        new = [fake.create_message(text=f"new {n}") for n in range(3)]
        fake.traffic.take()
        second = run_messages(
            only_messages(fake, messages_lookback_hours=2), state=first.states[-1]
        )
        assert second.returncode == 0, second.stderr
        records = {r["id"]: r for r in message_records(second)}
        assert {m["id"] for m in new} <= records.keys()
        two_hours_ago = _iso(
            datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2)
        )
        changed_within = [m for m in recent if m["date"] >= two_hours_ago]
        for message in changed_within:
            assert records[message["id"]]["status"] == "failed"
        # Only the look-back and what is new was read: far fewer than the 3,000 messages.
        within = sum(1 for m in fake.all_messages() if m["date"] >= two_hours_ago)
        assert len(records) <= within + 100
        assert all(r["date"] >= two_hours_ago[:19] for r in records.values())


@pytest.mark.parametrize("seed", [1, 2])
def test_an_interrupted_first_sync_resumes_where_it_stopped(seed):
    with FakeHeymarket(messages=4000, broadcasts=2, broadcast_size=300, seed=seed) as fake:
        config = only_messages(fake, page_size=50)
        first, _ = interrupt_tap(config, 1500 + 500 * seed, send(signal.SIGKILL))
        assert first.returncode == -signal.SIGKILL
        saved = first.states[-1]
        [walk] = saved["bookmarks"]["messages"]["walks"]
        fake.traffic.take()
        second = run_messages(config, state=saved)
        assert second.returncode == 0, second.stderr
        committed = {r["id"] for r in first.records_before_last_state("messages")}
        everything = {m["id"] for m in fake.all_messages()}
        assert everything - committed - {r["id"] for r in message_records(second)} == set()
        # It resumed from the saved boundary, not from the top.
        asked = message_requests(fake)[0]["body"]["created_at"]
        assert asked[:19] == walk["boundary"][:19]
        assert len(message_records(second)) < len(everything) - 1000
        assert "walks" not in messages_state(second)


def test_a_state_with_a_garbage_walk_fails_before_any_request():
    with FakeHeymarket(messages=10, seed=1) as fake:
        state = {"bookmarks": {"messages": {"walks": [{"top": "yesterday", "boundary": 5}]}}}
        run = run_messages(only_messages(fake), state=state)
        assert run.returncode == 1
        assert "state: the messages walk 1 top" in run.stderr
        assert message_requests(fake) == []


def test_bad_values_in_a_message_are_synced_as_null_with_a_warning():
    with FakeHeymarket(messages=20, seed=1) as fake:
        fake.add_raw_message_json(
            '{"id": 777, "date": "2025-06-01T00:00:00Z", "updated": "not a time", '
            '"flagged": "maybe", "user": 1e400, "text": "\\ud800 lone", '
            '"conversation": {"id": "88", "inbox": 1201}}'
        )
        run = run_messages(only_messages(fake))
        assert run.returncode == 0, run.stderr
        record = next(r for r in message_records(run) if r["id"] == 777)
        assert record["updated"] is None and record["flagged"] is None and record["user"] is None
        assert record["text"] == "\ufffd lone"
        assert record["conversation_id"] == 88 and record["inbox_id"] == 1201
        assert "WARNING" in run.stderr and "777" in run.stderr


def test_all_streams_of_a_run_share_one_pacer():
    tap = TapHeymarket(config={"api_key": "k"}, setup_mapper=False)
    pacers = {id(stream.pacer) for stream in tap.streams.values()}
    assert len(pacers) == 1


def test_a_run_of_both_streams_stays_under_the_rate_limit_across_streams():
    with FakeHeymarket(contacts=120, messages=150, seed=2) as fake:
        # At most one request per 0.5 s; the tap paces one per 0.6 s. A stream starting with
        # a pacer of its own would send its first request right after the other's last.
        fake.configure(rate_limit=1, rate_window=0.5)
        run = run_tap(tap_config(fake, page_size=50, max_requests_per_minute=100))
        assert run.returncode == 0, run.stderr
        assert fake.rate_limited == 0
        paths = [r["path"] for r in fake.requests]
        assert MESSAGES_PATH in paths and "/v2/contacts/list" in paths


def _iso(instant: datetime.datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_slow_api_is_walked_by_several_walks_at_once_losing_nothing_and_few_requests():
    with FakeHeymarket(messages=15000, broadcasts=3, broadcast_size=250, seed=8) as fake:
        quick = run_messages(only_messages(fake, max_requests_per_minute=6000))
        sequential = len(message_requests(fake))
        fake.traffic.take()
        fake.configure(latency=0.25, message_creates_per_request=2, message_changes_per_request=2)
        before = {m["id"] for m in fake.all_messages()}
        run = run_messages(only_messages(fake, max_requests_per_minute=6000))
        assert quick.returncode == 0 and run.returncode == 0, run.stderr
        assert fake.max_in_flight > 2, "the walks never overlapped"
        assert {r["id"] for r in message_records(run)} >= before
        # Each walk costs about one request more than its records, and walks are split down
        # to halves of a page whenever a request slot would stand idle: 12 walks cost about a
        # tenth.
        assert len(message_requests(fake)) <= sequential * 1.15 + 2
