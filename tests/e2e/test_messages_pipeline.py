"""The messages stream as users run it: real Meltano, target-postgres and PostgreSQL, the fake over HTTP.

A full sync beside contacts, an incremental run after new messages and status changes, an
interrupted first sync resumed, ``meltano select`` leaving either stream out, and the standalone
pipe with a state file holding both streams' bookmarks.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from testbed.deployment import container_env, project_copy
from testbed.fake_heymarket import FakeHeymarket
from testbed.meltano_cli import PLUGIN_ENV_PREFIXES, STATE_ID, Meltano, plugin_executable
from testbed.postgres import ThrowawayPostgres
from testbed.runs import is_bookmark_after_edits, write_json
from tests.e2e.conftest import (
    MESSAGES_PATH,
    SCHEMA,
    assert_messages_match,
    bookmark,
    expected_contacts,
    expected_messages,
    ids_from,
    loaded_by_last_sync,
    loaded_contacts,
    loaded_messages,
    message_requests,
    stream_state,
)

pytestmark = pytest.mark.e2e

PIPELINE = ("run", "tap-heymarket", "target-postgres")
FIXED_WIDTH = "%Y-%m-%dT%H:%M:%S.%fZ"
UTC = datetime.timezone.utc
SECOND = datetime.timedelta(seconds=1)

EXPECTED_MESSAGE_COLUMN_TYPES = {
    "id": "bigint",
    "team_id": "bigint",
    "date": "timestamp without time zone",
    "updated": "timestamp without time zone",
    **dict.fromkeys(("conversation_id", "inbox_id", "user", "broadcast_id", "super"), "bigint"),
    **dict.fromkeys(
        (
            "text",
            "media",
            "phone",
            "type",
            "status",
            "author",
            "target",
            "local_id",
            "link_url",
        ),
        "text",
    ),
    **dict.fromkeys(("flagged", "support"), "boolean"),
    **dict.fromkeys(("custom", "conversation"), "jsonb"),
}


def instant(timestamp: str) -> datetime.datetime:
    """A fixed-width timestamp (``...ffffffZ``), or a whole-second cursor (``...SSZ``), as UTC."""
    text = timestamp.removesuffix("Z")
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


def fixed(moment: datetime.datetime) -> str:
    return moment.astimezone(UTC).strftime(FIXED_WIDTH)


def now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


def column_types(warehouse: ThrowawayPostgres, table: str) -> dict[str, str]:
    rows = warehouse.query(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = $1 AND table_name = $2 AND column_name NOT LIKE '\\_sdc%'",
        SCHEMA,
        table,
    )
    return dict(rows)


def primary_key(warehouse: ThrowawayPostgres, table: str) -> list[str]:
    rows = warehouse.query(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
        " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = $1::regclass AND i.indisprimary",
        f"{SCHEMA}.{table}",
    )
    return [name for (name,) in rows]


def unfinished_walks(saved: dict[str, Any]) -> list[dict[str, Any]]:
    """The walks a messages state holds while a sync is under way (``walk``, or ``walks``)."""
    if "walks" in saved:
        return list(saved["walks"])
    return [saved["walk"]] if "walk" in saved else []


def ids_dated_from(messages: dict[int, dict[str, Any]], floor: str) -> set[int]:
    """Messages a walk down to ``floor`` must send: created at or after it."""
    return {mid for mid, message in messages.items() if message["date"] >= floor}


def test_meltano_run_loads_every_message_beside_contacts_and_keeps_both_bookmarks(
    meltano: Meltano, warehouse: ThrowawayPostgres, fake: FakeHeymarket
) -> None:
    started = now()
    run = meltano(*PIPELINE)
    finished = now()

    messages = expected_messages(fake)
    contacts = expected_contacts(fake)
    assert run.record_count("tap-heymarket", "messages") == len(messages)
    assert run.record_count("tap-heymarket", "contacts") == len(contacts)
    assert column_types(warehouse, "messages") == EXPECTED_MESSAGE_COLUMN_TYPES
    # Every message once, every value as Heymarket serves it; contacts beside them as before.
    assert_messages_match(warehouse, fake)
    assert {row["id"]: row for row in loaded_contacts(warehouse)} == contacts
    rows = loaded_messages(warehouse)
    assert all(row["conversation_id"] and row["inbox_id"] for row in rows)
    # The broadcast, larger than a page and sharing one date, landed whole.
    [(broadcast_rows, broadcast_dates)] = warehouse.query(
        f"SELECT count(*), count(DISTINCT date) FROM {SCHEMA}.messages WHERE broadcast_id ="
        f" (SELECT broadcast_id FROM {SCHEMA}.messages WHERE broadcast_id <> 0"
        "  GROUP BY 1 ORDER BY count(*) DESC LIMIT 1)"
    )
    assert (int(broadcast_rows), int(broadcast_dates)) == (150, 1)
    # The conversation is queryable as jsonb, and agrees with its columns.
    [(agreeing,)] = warehouse.query(
        f"SELECT count(*) FROM {SCHEMA}.messages WHERE (conversation->>'id')::bigint"
        " = conversation_id AND (conversation->>'inbox')::bigint = inbox_id"
    )
    assert int(agreeing) == len(messages)
    assert sorted(primary_key(warehouse, "messages")) == ["id", "team_id"]

    state = meltano.state()
    assert bookmark(state, "contacts") == max(c["updated"] for c in contacts.values())
    saved = stream_state(state, "messages")
    assert saved["replication_key"] == "date"
    assert unfinished_walks(saved) == [], "the walk finished: only the bookmark stays"
    # The bookmark is the walk's top: the run's start, to the whole second above it.
    top = instant(saved["replication_key_value"])
    assert started - SECOND <= top <= finished + SECOND
    assert saved["replication_key_value"] > max(m["date"] for m in messages.values())


def test_an_incremental_run_brings_new_messages_and_status_changes_asking_only_back_to_the_lookback(
    meltano: Meltano, warehouse: ThrowawayPostgres, fake: FakeHeymarket
) -> None:
    lookback = datetime.timedelta(hours=6)
    meltano.env["TAP_HEYMARKET_MESSAGES_LOOKBACK_HOURS"] = "6"
    # A busy afternoon: more than two pages of messages within the look-back.
    busy_since = now() - datetime.timedelta(hours=5)
    recent = [
        fake.create_message(
            date=fixed(busy_since + i * datetime.timedelta(minutes=2)), status="sent"
        )
        for i in range(150)
    ]
    meltano(*PIPELINE)
    first = stream_state(meltano.state(), "messages")["replication_key_value"]
    floor = fixed(instant(first) - lookback)
    assert all(m["date"] >= floor for m in recent)

    # Deliveries come in (status and flag change, ``updated`` moves, ``date`` stays); new
    # messages and a broadcast larger than a page arrive.
    changed = [fake.change_message(m["id"], status="delivered", flagged=True)["id"] for m in recent]
    changed += [fake.change_message(m["id"])["id"] for m in recent[100:110]]
    created = [fake.create_message()["id"] for _ in range(30)]
    created += [m["id"] for m in fake.broadcast(130)]
    asked_before = len(fake.requests)
    second = meltano(*PIPELINE)

    messages = expected_messages(fake)
    sent = ids_dated_from(messages, floor)
    assert set(created) | set(changed) <= sent
    assert len(sent) < len(messages) / 2, "the look-back window is a small part of the account"
    assert second.record_count("tap-heymarket", "messages") == len(sent)
    assert loaded_by_last_sync(warehouse, "messages") == sent
    # Every row as Heymarket has it now: the new ones, the changed ones with their new status.
    assert_messages_match(warehouse, fake)
    rows = {row["id"]: row for row in loaded_messages(warehouse)}
    assert len(rows) == fake.message_count()
    assert {rows[mid]["status"] for mid in changed[:100]} == {"delivered"}
    assert all(rows[mid]["flagged"] for mid in changed[:100])
    # Asked only from the run's start down to the old bookmark less the look-back, page by page.
    cursors = [instant(body["created_at"]) for body in message_requests(fake, asked_before)]
    assert len(cursors) >= 3, cursors
    assert min(cursors) >= instant(floor).replace(microsecond=0)
    saved = stream_state(meltano.state(), "messages")
    assert saved["replication_key_value"] > max(m["date"] for m in messages.values())
    assert unfinished_walks(saved) == []


def plugin_pid(session: int, executable: str) -> int | None:
    """The process of the session ``session`` (a Meltano run's) running ``executable``, if any."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...: the session is the 4th field after "comm".
        if int(stat.rsplit(")", 1)[1].split()[3]) != session:
            continue
        if any(arg.endswith(b"/" + executable.encode()) for arg in argv):
            return int(entry.name)
    return None


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_first_sync_interrupted_mid_messages_resumes_from_the_walks_boundary_losing_nothing(
    meltano: Meltano, warehouse: ThrowawayPostgres, sig: signal.Signals
) -> None:
    with FakeHeymarket(
        contacts=200, messages=2500, broadcasts=3, broadcast_size=180, seed=23
    ) as fake:
        meltano.env |= {
            "TAP_HEYMARKET_API_URL": fake.url,
            "TAP_HEYMARKET_MESSAGES_LOOKBACK_HOURS": "24",
            # One request at a time (pacing, not latency, the bottleneck even on a loaded
            # machine): pages asked are then pages answered, so half of them have STATEs.
            "TAP_HEYMARKET_MAX_REQUESTS_PER_MINUTE": "120",
        }
        everything = expected_messages(fake)
        fake.latency = 0.05
        started: list[subprocess.Popen[str]] = []
        stopped: list[int] = []

        # Interrupted once the tap has asked for half the account's pages: well into the
        # messages, with pages of them synced (however many walks it split them into).
        half = len(everything) // 100 // 2

        def past_halfway() -> bool:
            walked = [b for b in message_requests(fake) if b.get("ascending") is False]
            return len(walked) >= half

        def stop_the_tap() -> None:
            """Once the tap has asked for half the pages, send it ``sig``."""
            deadline = time.monotonic() + 120
            while not past_halfway() and time.monotonic() < deadline:
                time.sleep(0.01)
            pid = plugin_pid(started[0].pid, "tap-heymarket") if started else None
            if pid is not None:
                os.kill(pid, sig)
                stopped.append(pid)

        stopper = threading.Thread(target=stop_the_tap, daemon=True)
        stopper.start()
        failed = meltano(*PIPELINE, check=False, on_start=started.append)
        stopper.join()

        assert stopped, "the tap was not found to interrupt"
        assert failed.returncode != 0
        saved = stream_state(meltano.state(), "messages")
        assert "replication_key_value" not in saved, "a first sync has no bookmark until it ends"
        walks = unfinished_walks(saved)
        assert walks, saved
        loaded_before = {row["id"] for row in loaded_messages(warehouse)}
        assert 0 < len(loaded_before) < len(everything), saved
        # The saved state is backed by the rows: every message from a walk's boundary up to its
        # top is loaded.
        synced = {
            mid
            for walk in walks
            for mid, message in everything.items()
            if walk["boundary"] <= message["date"] < walk["top"]
        }
        assert synced and synced <= loaded_before

        fake.latency = 0.0
        asked_before = len(fake.requests)
        resumed = meltano(*PIPELINE)

        # Resumed from each walk's boundary, not from its top: the page below the boundary is
        # asked, and nothing the walks had passed on is sent again but the look-back's (and
        # the boundary's second, which may be read again).
        cursors = {instant(body["created_at"]) for body in message_requests(fake, asked_before)}
        assert {instant(walk["boundary"]) for walk in walks} <= cursors
        top = max(walk["top"] for walk in walks)
        look_back = fixed(instant(top) - datetime.timedelta(hours=24))
        sent_again = loaded_by_last_sync(warehouse, "messages") & synced
        assert all(
            everything[mid]["date"] >= look_back
            or any(everything[mid]["date"][:19] == walk["boundary"][:19] for walk in walks)
            for mid in sent_again
        ), sorted(everything[mid]["date"] for mid in sent_again)[:5]
        assert resumed.record_count("tap-heymarket", "messages") < len(everything)
        # Nothing lost, nothing twice: the warehouse holds every message once, as served.
        assert_messages_match(warehouse, fake)
        assert {row["id"]: row for row in loaded_contacts(warehouse)} == expected_contacts(fake)
        after = stream_state(meltano.state(), "messages")
        assert unfinished_walks(after) == []
        assert after["replication_key_value"] > top


@pytest.mark.parametrize(("left_out", "kept"), [("messages", "contacts"), ("contacts", "messages")])
def test_meltano_select_leaves_either_stream_out_and_heymarket_is_not_asked_for_it(
    meltano: Meltano,
    meltano_sys_dir: Path,
    warehouse: ThrowawayPostgres,
    fake: FakeHeymarket,
    tmp_path: Path,
    left_out: str,
    kept: str,
) -> None:
    # A copy of the project, so that ``meltano select`` writes its own meltano.yml.
    project = project_copy(tmp_path / "project", meltano_sys_dir)
    meltano.env |= container_env(meltano.env["MELTANO_DATABASE_URI"])
    in_copy = ("--cwd", str(project))
    # An exclude pattern alone selects nothing: every stream first, then one left out.
    meltano(*in_copy, "select", "tap-heymarket", "*", "*", "--no-install")
    meltano(*in_copy, "select", "tap-heymarket", "--exclude", left_out, "*", "--no-install")

    run = meltano(*in_copy, *PIPELINE)

    paths = {request["path"] for request in fake.requests}
    tables = warehouse.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", SCHEMA
    )
    tables = {name for (name,) in tables}
    assert kept in tables and left_out not in tables
    assert run.record_count("tap-heymarket", left_out) == 0
    if kept == "contacts":
        assert not any(path.startswith(MESSAGES_PATH) for path in paths), paths
        assert run.record_count("tap-heymarket", kept) == len(fake.contacts())
        assert {row["id"]: row for row in loaded_contacts(warehouse)} == expected_contacts(fake)
    else:
        assert not any(path.startswith("/v2/contacts") for path in paths), paths
        assert run.record_count("tap-heymarket", kept) == fake.message_count()
        assert_messages_match(warehouse, fake)
    state = json.loads(meltano(*in_copy, "state", "get", STATE_ID).stdout)
    assert "replication_key_value" in stream_state(state, kept)
    assert left_out not in state["singer_state"]["bookmarks"]


def test_standalone_pipe_from_a_state_file_with_both_bookmarks_stays_incremental_for_both(
    meltano_sys_dir: Path, warehouse: ThrowawayPostgres, fake: FakeHeymarket, tmp_path: Path
) -> None:
    info = warehouse.info
    write_json(
        tmp_path,
        "target.json",
        {
            "host": info.host,
            "port": info.port,
            "user": info.user,
            "password": info.password,
            "database": info.database,
            "default_target_schema": SCHEMA,
            "load_method": "upsert",
        },
    )
    lookback = datetime.timedelta(hours=24)
    write_json(
        tmp_path,
        "config.json",
        {
            "api_url": fake.url,
            "api_secret_id": fake.secret_id,
            "api_secret_key": fake.secret_key,
            "max_requests_per_minute": 100_000,
            "messages_lookback_hours": 24,
        },
    )
    contacts = expected_contacts(fake)
    messages = expected_messages(fake)
    # Bookmarks a run that synced about half of each stream would have left.
    contacts_from = sorted(c["updated"] for c in contacts.values())[len(contacts) // 2]
    messages_floor = sorted(m["date"] for m in messages.values())[len(messages) // 2]
    messages_from = fixed(instant(messages_floor) + lookback)
    write_json(
        tmp_path,
        "state.json",
        {
            "bookmarks": {
                "contacts": {"replication_key": "updated", "replication_key_value": contacts_from},
                "messages": {"replication_key": "date", "replication_key_value": messages_from},
            }
        },
    )
    bins = [
        plugin_executable(meltano_sys_dir, "extractors", "tap-heymarket").parent,
        plugin_executable(meltano_sys_dir, "loaders", "target-postgres").parent,
    ]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(PLUGIN_ENV_PREFIXES)},
        "PATH": os.pathsep.join([*map(str, bins), os.environ["PATH"]]),
    }
    pipe = (
        "set -o pipefail\n"
        "tap-heymarket --config config.json --state state.json"
        " | target-postgres --config target.json > state.out\n"
        "tail -1 state.out > state.json\n"
    )

    def sync() -> dict[str, Any]:
        """One run of the pipe; the state file it leaves for the next."""
        done = subprocess.run(
            ["bash", "-c", pipe],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads((tmp_path / "state.json").read_text())

    first = sync()

    # Each stream synced from its own bookmark, not from the beginning.
    assert {row["id"] for row in loaded_contacts(warehouse)} == ids_from(contacts, contacts_from)
    assert {row["id"] for row in loaded_messages(warehouse)} == ids_dated_from(
        messages, messages_floor
    )
    # The target's last STATE holds both bookmarks, each moved to what this run reached.
    assert bookmark(first, "contacts") == max(c["updated"] for c in contacts.values())
    assert bookmark(first, "messages") > max(m["date"] for m in messages.values())
    assert unfinished_walks(stream_state(first, "messages")) == []

    changed = set(fake.update_contacts(10))
    created = {fake.create_message()["id"] for _ in range(20)}
    asked_before = len(fake.requests)
    second = sync()

    contacts = expected_contacts(fake)
    messages = expected_messages(fake)
    floor = fixed(instant(bookmark(first, "messages")) - lookback)
    sent_contacts = ids_from(contacts, bookmark(first, "contacts"))
    sent_messages = ids_dated_from(messages, floor)
    assert changed <= sent_contacts and len(sent_contacts - changed) <= 5
    assert created <= sent_messages and len(sent_messages) < len(messages) / 2
    assert loaded_by_last_sync(warehouse, "contacts") == sent_contacts
    assert loaded_by_last_sync(warehouse, "messages") == sent_messages
    cursors = [instant(body["created_at"]) for body in message_requests(fake, asked_before)]
    assert min(cursors) >= instant(floor).replace(microsecond=0)
    assert {row["id"]: row for row in loaded_contacts(warehouse)} == {
        cid: contact for cid, contact in contacts.items() if contact["updated"] >= contacts_from
    }
    assert {row["id"]: row for row in loaded_messages(warehouse)} == {
        mid: message for mid, message in messages.items() if message["date"] >= messages_floor
    }
    assert is_bookmark_after_edits(
        bookmark(second, "contacts"), max(c["updated"] for c in contacts.values())
    )
    assert bookmark(second, "messages") > max(m["date"] for m in messages.values())
