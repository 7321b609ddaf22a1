"""One ``meltano install`` and one PostgreSQL per session; a fresh fake, schema and state per test."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tap_heymarket.normalize import NormalizeReport, normalize_contact
from testbed.fake_heymarket import FakeHeymarket
from testbed.meltano_cli import FAKE_API_ENV, Meltano
from testbed.postgres import ThrowawayPostgres

SCHEMA = "heymarket"
_TIMESTAMP_COLUMNS = ("updated", "created")


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


def loaded_contacts(warehouse: ThrowawayPostgres) -> list[dict[str, Any]]:
    """Every row of ``heymarket.contacts`` (without the ``_sdc_`` columns), as JSON values.

    Timestamps come back in the tap's own ``...ffffffZ`` form, so rows compare with
    ``expected_contacts`` as they are.
    """
    rows = warehouse.query(f"SELECT row_to_json(c) FROM {SCHEMA}.contacts AS c")
    contacts = []
    for (text,) in rows:
        row = {key: value for key, value in json.loads(text).items() if not key.startswith("_sdc")}
        for column in _TIMESTAMP_COLUMNS:
            if row.get(column) is not None:
                instant = datetime.datetime.fromisoformat(row[column])
                row[column] = instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        contacts.append(row)
    return contacts


def loaded_by_last_sync(warehouse: ThrowawayPostgres) -> set[int]:
    """Ids of the rows the latest load wrote (target-postgres stamps each with its start)."""
    rows = warehouse.query(
        f"SELECT id FROM {SCHEMA}.contacts WHERE _sdc_sync_started_at ="
        f" (SELECT max(_sdc_sync_started_at) FROM {SCHEMA}.contacts)"
    )
    return {int(contact_id) for (contact_id,) in rows}


def ids_from(contacts: dict[int, dict[str, Any]], bookmark: str) -> set[int]:
    """Contacts an incremental run from ``bookmark`` must send: updated at or after it."""
    return {cid for cid, contact in contacts.items() if contact["updated"] >= bookmark}


def bookmark(state: dict[str, Any]) -> str:
    """The contacts bookmark in a Singer state (bare, or wrapped as Meltano stores it)."""
    state = state.get("singer_state", state)
    return state["bookmarks"]["contacts"]["replication_key_value"]
