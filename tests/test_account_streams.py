"""The account's other streams against the fake over HTTP: whole, deletions, partitions, churn."""

from __future__ import annotations

import json

import pytest

from tap_heymarket import stream_bases
from tap_heymarket.tap import TapHeymarket
from testbed.fake_heymarket import FakeHeymarket
from testbed.runs import TapRun, run_tap, tap_config

FULL_TABLE = ("inboxes", "team_members", "tags", "templates", "surveys", "custom_fields")


def ids(run: TapRun, stream: str) -> list:
    return [record["id"] for record in run.stream_records(stream)]


@pytest.mark.parametrize(("cursor", "precision"), [("exclusive", "full"), ("inclusive", "second")])
def test_every_object_of_the_account_is_synced_once_whatever_before_means(cursor, precision):
    with FakeHeymarket(contacts=20, messages=300, seed=6) as fake:
        fake.configure(before_cursor=cursor, date_precision=precision)
        run = run_tap(tap_config(fake))
        assert run.returncode == 0, run.stderr
        expected = fake.objects()
    for stream, objects in expected.items():
        synced = ids(run, stream)
        assert sorted(synced) == sorted(o["id"] for o in objects), stream
    team = run.stream_records("team_members")
    assert {m["team_id"] for m in team} == {4242}
    fields = run.stream_records("custom_fields")
    assert all(isinstance(f["name"], str) and isinstance(f["details"], dict) for f in fields)


def test_each_full_table_stream_activates_its_version_after_its_records():
    with FakeHeymarket(contacts=5, messages=10, seed=2) as fake:
        run = run_tap(tap_config(fake))
    assert run.returncode == 0, run.stderr
    for stream in FULL_TABLE:
        kinds = [m["type"] for m in run.messages if m.get("stream") == stream]
        assert kinds.count("ACTIVATE_VERSION") == 1, stream
        assert kinds[-1] == "ACTIVATE_VERSION" and "RECORD" in kinds, stream
        version = next(m["version"] for m in run.messages
                       if m["type"] == "ACTIVATE_VERSION" and m["stream"] == stream)  # fmt: skip
        assert {m.get("version") for m in run.messages
                if m["type"] == "RECORD" and m["stream"] == stream} == {version}  # fmt: skip
    for stream in ("contacts", "messages", "conversations"):
        assert not any(m["type"] == "ACTIVATE_VERSION" and m.get("stream") == stream
                       for m in run.messages)  # fmt: skip


@pytest.mark.parametrize("stream", ["tags", "templates"])
def test_a_full_table_walk_marks_no_object_deleted_that_changed_while_it_ran(stream):
    # A tag updated while the walk reads, before the walk reaches it, moves above the walk's
    # top: the walk must still write it before its ACTIVATE_VERSION, or the target marks a
    # live tag deleted.
    with FakeHeymarket(contacts=5, messages=10, tags=300, templates=300, seed=7) as fake:
        before = {o["id"] for o in fake.objects()[stream]}
        fake.configure(list_changes_per_request=1)
        run = run_tap(tap_config(fake))
        after = {o["id"] for o in fake.objects()[stream]}
    assert run.returncode == 0, run.stderr
    kinds = [m["type"] for m in run.messages if m.get("stream") == stream]
    assert kinds[-1] == "ACTIVATE_VERSION"
    missing = (before & after) - set(ids(run, stream))
    assert not missing, f"{len(missing)} live {stream} would be marked deleted"


def test_a_full_table_walk_whose_records_keep_changing_marks_nothing_deleted(
    capsys, caplog, monkeypatch
):
    # Walks again over what changed while the last walk read never came down to a single
    # answer: the pass cannot tell the live records it missed from deleted ones.
    monkeypatch.setattr(stream_bases, "MAX_REWALKS", 0)
    with FakeHeymarket(contacts=5, messages=10, seed=7) as fake:
        TapHeymarket(config=tap_config(fake), setup_mapper=True).streams["tags"].sync()
    kinds = [json.loads(line)["type"] for line in capsys.readouterr().out.splitlines()]

    assert "RECORD" in kinds
    assert "ACTIVATE_VERSION" not in kinds
    assert "none was marked deleted this time" in caplog.text


def test_conversations_changed_between_and_during_runs_reach_the_next_run_per_inbox_bookmark():
    with FakeHeymarket(contacts=5, messages=600, seed=4) as fake:
        fake.configure(conversation_changes_per_request=2)
        first = run_tap(tap_config(fake))
        assert first.returncode == 0, first.stderr
        partitions = first.states[-1]["bookmarks"]["conversations"]["partitions"]
        assert {(p["context"]["inbox_id"], p["context"]["closed"]) for p in partitions} == {
            (inbox["id"], closed) for inbox in fake.inboxes() for closed in (False, True)
        }
        fake.configure(conversation_changes_per_request=0)
        changed = [fake.change_conversation(c["id"]) for c in fake.conversations()[:5]]
        # Changed at once: some in the second the first run's bookmark rounds up to.
        second = run_tap(tap_config(fake), state=first.states[-1])
        assert second.returncode == 0, second.stderr
        latest = {c["id"]: c["updated"] for c in fake.conversations()}
    synced: dict = {}
    for record in first.stream_records("conversations") + second.stream_records("conversations"):
        synced[record["id"]] = record["updated"]
    assert synced.keys() == latest.keys()
    assert {c["id"] for c in changed} <= set(ids(second, "conversations"))
    # The second run walked back only to each partition's bookmark.
    assert len(ids(second, "conversations")) < len(latest)


def test_an_inbox_without_members_to_ask_as_is_skipped_with_a_warning_and_the_rest_synced():
    with FakeHeymarket(contacts=5, messages=300, seed=5) as fake:
        inbox = fake.inboxes()[0]
        for member in inbox["members"]:
            fake.remove_member_from_inbox(member, inbox["id"])
        run = run_tap(tap_config(fake))
        others = [c["id"] for c in fake.conversations() if c["inbox"] != inbox["id"]]
    assert run.returncode == 0, run.stderr
    assert f"Inbox {inbox['id']} has no members to list its conversations as: skipped" in run.stderr
    assert set(others) <= set(ids(run, "conversations"))


def test_a_tag_tie_larger_than_heymarkets_page_fails_in_one_line_rather_than_skip_tags():
    with FakeHeymarket(
        contacts=5, messages=600, conversations=60, tags=60, templates=60, list_tie_size=45, seed=3
    ) as fake:
        run = run_tap(tap_config(fake))
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "records created within the second" in errors[0], run.stderr


def test_faults_on_every_endpoint_are_retried_and_every_object_still_synced():
    # Which request draws a fault depends on the order the streams' requests reach the fake,
    # so three accounts (seeds) together make sure the faults reach the account endpoints.
    faulted: set[str] = set()
    for seed in (9, 10, 11):
        with FakeHeymarket(contacts=50, messages=300, seed=seed) as fake:
            fake.configure(fail_rate=0.25, fail_kinds=("500", "503", "cut", "json-truncated"))
            run = run_tap(tap_config(fake, max_retries=8))
            faulted |= {r["path"] for r in fake.requests if r["fault"]}
            expected = fake.objects()
        assert run.returncode == 0, run.stderr
        for stream, objects in expected.items():
            assert sorted(set(ids(run, stream))) == sorted(o["id"] for o in objects), stream
    assert {"/v1/tags", "/v1/conversations"} <= faulted, "the faults missed the account endpoints"


STREAMS = ("contacts", "messages", "conversations", *FULL_TABLE)


def test_every_stream_s_rows_carry_their_account_s_team_id_which_keys_them_with_id():
    with FakeHeymarket(contacts=30, messages=300, seed=6, team_id=777) as fake:
        fake.add_raw({"id": 99_000_001, "updated": "2024-01-01T00:00:00Z", "team_id": None})
        fake.add_raw({"id": 99_000_002, "updated": "2024-01-01T00:00:01Z", "team_id": 0})
        fake.add_raw({"id": 99_000_003, "updated": "2024-01-01T00:00:02Z", "team_id": 12})
        run = run_tap(tap_config(fake))
        team_requests = [r for r in fake.requests if r["path"] == "/v1/team"]
    assert run.returncode == 0, run.stderr
    # One GET /v1/team a run, shared by every stream (team_members reads its members from it).
    assert len(team_requests) == 1
    assert run.stderr.count("Syncing the account of team 777 (Acme Dental Group)") == 1
    schemas = {m["stream"]: m for m in run.messages if m["type"] == "SCHEMA"}
    assert set(schemas) == set(STREAMS)
    for stream in STREAMS:
        assert schemas[stream]["key_properties"] == ["team_id", "id"], stream
        team_id = schemas[stream]["schema"]["properties"]["team_id"]
        assert team_id["type"] == ["integer"], stream
        assert "team_id" in schemas[stream]["schema"]["required"], stream
        records = run.stream_records(stream)
        assert records, stream
        teams = {record["id"]: record["team_id"] for record in records}
        if stream == "contacts":
            # Heymarket's own value is kept; null or a Go zero is the account's.
            assert teams.pop(99_000_003) == 12
        assert set(teams.values()) == {777}, stream
    inboxes = run.stream_records("inboxes")
    assert all(inbox["team"] == inbox["team_id"] for inbox in inboxes)
    assert all("team_id" not in field["details"] for field in run.stream_records("custom_fields"))


def test_a_record_without_a_team_of_its_own_takes_the_account_s():
    with FakeHeymarket(contacts=5, messages=10, seed=2, team_id=31) as fake:
        for inbox in fake.account._inboxes:  # the inbox's own team, as Heymarket may leave out
            inbox["team"] = None
        run = run_tap(tap_config(fake))
    assert run.returncode == 0, run.stderr
    assert {inbox["team_id"] for inbox in run.stream_records("inboxes")} == {31}
    assert {inbox["team"] for inbox in run.stream_records("inboxes")} == {None}


def test_a_stream_whose_records_lack_a_team_asks_for_it_beside_its_first_requests(capsys):
    # Asked at the first record, the team's round trip stalled every request behind it: at
    # 1 s a request, a second of a rate-bound sync sending nothing.
    latency = 0.3
    with FakeHeymarket(messages=300, seed=4) as fake:
        fake.configure(latency=latency)
        config = tap_config(fake, page_size=100, max_requests_per_minute=6000)
        TapHeymarket(config=config, setup_mapper=True).streams["messages"].sync()
    capsys.readouterr()
    team = [r["time"] for r in fake.requests if r["path"] == "/v1/team"]
    first = min(r["time"] for r in fake.requests if r["path"] == "/v1/messages/all")
    assert len(team) == 1
    assert team[0] < first + latency, "the team was asked once the first answer was in"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("403", "Heymarket answered 403 with forbidden: this key may not read the team"),
        ("no-id", "Heymarket's team object has no usable id (got None)"),
    ],
)
def test_a_team_heymarket_will_not_give_fails_the_sync_in_one_line_before_any_record(
    answer, reason
):
    with FakeHeymarket(contacts=20, messages=10, seed=3) as fake:
        fake.team_answer = answer
        run = run_tap(tap_config(fake))
        team_requests = [r for r in fake.requests if r["path"] == "/v1/team"]
    assert run.returncode == 1
    assert len(team_requests) == 1, "neither refused nor unusable is worth a retry"
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, run.stderr
    assert "Sync failed: the account's team id (GET /v1/team, every row's team_id)" in errors[0]
    assert reason in errors[0]
    assert "Traceback" not in run.stderr
    # No row went out without its account's id: contacts carry their own, so they needed no
    # lookup; the stream after them (messages carry none) stopped at its first record.
    records = [m for m in run.messages if m["type"] == "RECORD"]
    assert {m["stream"] for m in records} == {"contacts"}
    assert {m["record"]["team_id"] for m in records} == {4242}
