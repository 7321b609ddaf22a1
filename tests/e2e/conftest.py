"""One ``meltano install`` and one PostgreSQL per session; a fresh fake, schema and state per test.

The fake account holds contacts and messages (a broadcast larger than a page among them), so
every pipeline test moves both streams.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tap_heymarket.fields import MESSAGES
from tap_heymarket.normalize import NormalizeReport, normalize_contact, normalize_record
from testbed.fake_heymarket import FakeHeymarket
from testbed.meltano_cli import FAKE_API_ENV, Meltano
from testbed.postgres import ThrowawayPostgres

SCHEMA = "heymarket"
#: Each loaded table's timestamp columns, read back in the tap's fixed-width form.
_TIMESTAMP_COLUMNS = {"contacts": ("updated", "created"), "messages": ("date", "updated")}
_FIXED_WIDTH = "%Y-%m-%dT%H:%M:%S.%fZ"
#: Where the messages stream asks for messages (``/v1/messages/all/count`` is another path).
MESSAGES_PATH = "/v1/messages/all"
#: The e2e fake account: contacts, and messages with a broadcast larger than a page (100).
FAKE_ACCOUNT = {
    "contacts": 1000,
    "seed": 11,
    "messages": 600,
    "broadcasts": 1,
    "broadcast_size": 150,
}


@pytest.fixture
def fake() -> Iterator[FakeHeymarket]:
    """A fresh fake account (``FAKE_ACCOUNT``), served over real HTTP on loopback."""
    with FakeHeymarket(**FAKE_ACCOUNT) as server:
        yield server


@pytest.fixture(scope="session")
def meltano_sys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``.meltano`` directory outside the repository, with every plugin installed once."""
    sys_dir = tmp_path_factory.mktemp("meltano-sys")
    Meltano({"MELTANO_SYS_DIR_ROOT": str(sys_dir)}, isolated=True)("install")
    return sys_dir


@pytest.fixture(scope="session")
def postgres() -> Iterator[ThrowawayPostgres]:
    with ThrowawayPostgres() as server:
        yield server


@pytest.fixture
def warehouse(postgres: ThrowawayPostgres) -> ThrowawayPostgres:
    """The session's PostgreSQL with no ``heymarket`` schema left by an earlier test."""
    postgres.query(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    return postgres


@pytest.fixture
def meltano(
    meltano_sys_dir: Path, warehouse: ThrowawayPostgres, fake: FakeHeymarket, tmp_path: Path
) -> Meltano:
    """The project's Meltano, configured only through environment variables, as users may.

    The tap talks to ``fake``, target-postgres to ``warehouse``, and the state lives in a
    system database of this test's own.
    """
    return Meltano(
        {
            "MELTANO_SYS_DIR_ROOT": str(meltano_sys_dir),
            "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
            "TAP_HEYMARKET_API_URL": fake.url,
            **FAKE_API_ENV,
            **warehouse.info.target_env(),
            "TARGET_JSONL_DESTINATION_PATH": str(tmp_path / "output"),
        },
        isolated=True,
    )


def expected_contacts(fake: FakeHeymarket) -> dict[int, dict[str, Any]]:
    """Every contact in the fake, by id, as the tap must deliver it."""
    report = NormalizeReport()
    return {contact["id"]: normalize_contact(contact, report) for contact in fake.contacts()}


def expected_messages(fake: FakeHeymarket) -> dict[int, dict[str, Any]]:
    """Every message in the fake, by id, as the tap must deliver it.

    The conversation's id and inbox come from the message as served, so the tap's own
    columns are checked against Heymarket's embedded object, not against themselves; its
    ``team_id`` is the account's (``GET /v1/team``), as messages carry none.
    """
    report = NormalizeReport()
    messages = {}
    for raw in fake.all_messages():
        message = normalize_record(MESSAGES, raw, report)
        message["conversation_id"] = raw["conversation"]["id"]
        message["inbox_id"] = raw["conversation"]["inbox"]
        message["team_id"] = fake.team()["id"]
        messages[raw["id"]] = message
    return messages


def loaded_rows(warehouse: ThrowawayPostgres, table: str) -> list[dict[str, Any]]:
    """Every row of ``heymarket.<table>`` (without the ``_sdc_`` columns), as JSON values.

    Timestamps come back in the tap's own ``...ffffffZ`` form, so rows compare with
    ``expected_contacts`` or ``expected_messages`` as they are.
    """
    rows = warehouse.query(f"SELECT row_to_json(t) FROM {SCHEMA}.{table} AS t")
    loaded = []
    for (text,) in rows:
        row = {key: value for key, value in json.loads(text).items() if not key.startswith("_sdc")}
        for column in _TIMESTAMP_COLUMNS[table]:
            if row.get(column) is not None:
                row[column] = datetime.datetime.fromisoformat(row[column]).strftime(_FIXED_WIDTH)
        loaded.append(row)
    return loaded


def loaded_contacts(warehouse: ThrowawayPostgres) -> list[dict[str, Any]]:
    """Every row of ``heymarket.contacts``, as ``loaded_rows`` reads them."""
    return loaded_rows(warehouse, "contacts")


def loaded_messages(warehouse: ThrowawayPostgres) -> list[dict[str, Any]]:
    """Every row of ``heymarket.messages``, as ``loaded_rows`` reads them."""
    return loaded_rows(warehouse, "messages")


def assert_messages_match(warehouse: ThrowawayPostgres, fake: FakeHeymarket) -> None:
    """One row per message, every value as the fake serves it now (after the tap's normalising)."""
    rows = loaded_messages(warehouse)
    assert len(rows) == len({row["id"] for row in rows}), "duplicate message rows"
    assert {row["id"]: row for row in rows} == expected_messages(fake)


def loaded_by_last_sync(warehouse: ThrowawayPostgres, table: str = "contacts") -> set[int]:
    """Ids of the rows the latest load wrote (target-postgres stamps each with its start)."""
    rows = warehouse.query(
        f"SELECT id FROM {SCHEMA}.{table} WHERE _sdc_sync_started_at ="
        f" (SELECT max(_sdc_sync_started_at) FROM {SCHEMA}.{table})"
    )
    return {int(row_id) for (row_id,) in rows}


def message_requests(fake: FakeHeymarket, since: int = 0) -> list[dict[str, Any]]:
    """The bodies of the requests for messages the fake was sent, from request ``since`` on."""
    return [r["body"] for r in fake.requests[since:] if r["path"] == MESSAGES_PATH]


def ids_from(contacts: dict[int, dict[str, Any]], bookmark: str) -> set[int]:
    """Contacts an incremental run from ``bookmark`` must send: updated at or after it."""
    return {cid for cid, contact in contacts.items() if contact["updated"] >= bookmark}


def stream_state(state: dict[str, Any], stream: str) -> dict[str, Any]:
    """One stream's state in a Singer state (bare, or wrapped as Meltano stores it)."""
    return state.get("singer_state", state)["bookmarks"][stream]


def bookmark(state: dict[str, Any], stream: str = "contacts") -> str:
    """A stream's bookmark in a Singer state (bare, or wrapped as Meltano stores it)."""
    return stream_state(state, stream)["replication_key_value"]
