"""The account's other streams against the fake over HTTP: whole, deletions, partitions, churn."""

from __future__ import annotations

import pytest

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
        expected = {
            "inboxes": fake.inboxes(),
            "team_members": fake.team()["members"],
            "tags": fake.tags(),
            "templates": fake.templates(),
            "surveys": fake.surveys(),
            "custom_fields": fake.custom_fields(),
            "conversations": fake.conversations(),
        }
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
    with FakeHeymarket(contacts=50, messages=300, seed=9) as fake:
        fake.configure(fail_rate=0.25, fail_kinds=("500", "503", "cut", "json-truncated"))
        run = run_tap(tap_config(fake, max_retries=8))
        faulted = {r["path"] for r in fake.requests if r["fault"]}
        expected = {
            "inboxes": fake.inboxes(),
            "tags": fake.tags(),
            "templates": fake.templates(),
            "surveys": fake.surveys(),
            "conversations": fake.conversations(),
        }
    assert run.returncode == 0, run.stderr
    assert {"/v1/tags", "/v1/conversations"} <= faulted, "the faults missed the account endpoints"
    for stream, objects in expected.items():
        assert sorted(set(ids(run, stream))) == sorted(o["id"] for o in objects), stream
