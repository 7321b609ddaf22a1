"""``make demo``'s program, on embedded defaults and with an account and a warehouse configured."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.fake_heymarket import FakeHeymarket
from testbed.meltano_cli import PLUGIN_ENV_PREFIXES, PROJECT_ROOT, Meltano
from testbed.postgres import ThrowawayPostgres, accepts_connections
from tests.e2e.conftest import (
    assert_messages_match,
    bookmark,
    expected_contacts,
    expected_messages,
    loaded_contacts,
    stream_state,
)

pytestmark = pytest.mark.e2e


def run_demo(env: dict[str, str], *args: str) -> str:
    """Run the demo with only ``env`` as plugin configuration (no ``.env``); return its output."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(PLUGIN_ENV_PREFIXES)}
    done = subprocess.run(
        [sys.executable, "-m", "testbed.demo", "--env-file", os.devnull, *args],
        cwd=PROJECT_ROOT,
        env={**clean, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_demo_on_embedded_defaults_syncs_twice_reports_and_stops_what_it_started(
    meltano_sys_dir: Path,
) -> None:
    out = run_demo(
        {"MELTANO_SYS_DIR_ROOT": str(meltano_sys_dir)},
        *("--contacts", "300", "--change", "7", "--create", "2"),
        *("--messages", "800", "--broadcast", "150", "--new-messages", "12", "--deliveries", "6"),
    )

    assert "300 contacts and 806 messages (a broadcast of 150 among them)" in out
    sent = []
    for total, streams in re.findall(r"tap-heymarket sent (\d+) records \(([^)]*)\)", out):
        counts = {name: int(n) for name, n in (part.split() for part in streams.split(", "))}
        assert int(total) == sum(counts.values())
        sent.append(counts)
    assert (sent[0]["contacts"], sent[0]["messages"]) == (300, 806)
    assert {"conversations", "inboxes", "team_members", "tags"} <= sent[0].keys()
    contacts, messages = sent[1]["contacts"], sent[1]["messages"]
    assert 9 <= contacts <= 9 + 5, "the incremental run sends the changes (and bookmark ties)"
    # The new messages and the deliveries, and the few messages generated within the look-back.
    assert 12 + 6 <= messages <= 12 + 6 + 10
    assert "heymarket.contacts: 302 rows, 302 distinct contact ids" in out
    assert "heymarket.messages: 818 rows, 818 distinct message ids" in out
    assert "jsonb: custom, note, tags" in out
    assert "jsonb: custom, conversation" in out
    # A few message rows, newest first: date, status, conversation, inbox and trimmed text.
    rows = out.split("latest messages (date | status | conversation_id | inbox_id | text):\n")[1]
    rows = [line.lstrip().split(" | ") for line in rows.splitlines()[:5]]
    assert len(rows) == 5
    dates = [row[0] for row in rows]
    assert dates == sorted(dates, reverse=True)
    for date, status, conversation_id, inbox_id, text in rows:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?", date), date
        assert status and conversation_id.isdigit() and inbox_id.isdigit()
        assert len(text) <= 40 and "\n" not in text
    # Both bookmarks, the messages one without a walk left unfinished.
    assert re.search(r"contacts bookmark: updated = \d{4}-\d\d-\d\dT[\d:.]+Z\n", out)
    assert re.search(r"messages bookmark: date = \d{4}-\d\d-\d\dT[\d:.]+Z\n", out)
    assert "unfinished walk" not in out
    assert '"replication_key_value": "' in out
    api_port = int(re.search(r"fake Heymarket API at http://127\.0\.0\.1:(\d+)", out)[1])
    db_port = int(re.search(r"PostgreSQL at 127\.0\.0\.1:(\d+)", out)[1])
    assert not accepts_connections(api_port)
    assert not accepts_connections(db_port)


def test_demo_with_credentials_syncs_that_account_into_the_configured_postgres(
    meltano_sys_dir: Path, warehouse: ThrowawayPostgres, tmp_path: Path
) -> None:
    with FakeHeymarket(
        secret_id="acct-id",
        secret_key="acct-key",
        contacts=200,
        messages=300,
        broadcasts=1,
        broadcast_size=120,
        seed=3,
    ) as api:
        env = {
            "MELTANO_SYS_DIR_ROOT": str(meltano_sys_dir),
            "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
            "TAP_HEYMARKET_API_URL": api.url,
            "TAP_HEYMARKET_API_SECRET_ID": "acct-id",
            "TAP_HEYMARKET_API_SECRET_KEY": "acct-key",
            **warehouse.info.target_env(),
        }
        out = run_demo(env)

        assert "Started the fake" not in out and "throwaway" not in out
        assert {row["id"]: row for row in loaded_contacts(warehouse)} == expected_contacts(api)
        assert_messages_match(warehouse, api)
        assert "heymarket.messages: 300 rows, 300 distinct message ids" in out
        # The state stays where the user's Meltano keeps it, for the next (scheduled) run.
        state = Meltano(env, isolated=True).state()
        assert bookmark(state) == max(c["updated"] for c in expected_contacts(api).values())
        messages_bookmark = bookmark(state, "messages")
        assert messages_bookmark > max(m["date"] for m in expected_messages(api).values())
        assert "walk" not in stream_state(state, "messages")
        assert f"messages bookmark: date = {messages_bookmark}" in out
