"""``meltano run tap-heymarket target-postgres`` as users run it: real Meltano, target and database."""

from __future__ import annotations

import pytest

from testbed.fake_heymarket import FakeHeymarket
from testbed.meltano_cli import Meltano
from testbed.postgres import ThrowawayPostgres
from testbed.runs import is_bookmark_after_edits
from tests.e2e.conftest import (
    SCHEMA,
    assert_messages_match,
    bookmark,
    expected_contacts,
    ids_from,
    loaded_by_last_sync,
    loaded_contacts,
)

pytestmark = pytest.mark.e2e

PIPELINE = ("run", "tap-heymarket", "target-postgres")

EXPECTED_COLUMN_TYPES = {
    "id": "bigint",
    "updated": "timestamp without time zone",
    "created": "timestamp without time zone",
    **dict.fromkeys(
        ("first", "last", "display_name", "phone", "email", "avatar", "external_id"),
        "text",
    ),
    **dict.fromkeys(("external_ref", "type", "op"), "text"),
    **dict.fromkeys(
        ("rev", "creator_id", "inbox_id", "parent_id", "team_id", "assigned_user_id"), "bigint"
    ),
    "shared": "boolean",
    "is_opted_out": "boolean",
    "custom": "jsonb",
    "note": "jsonb",
    "tags": "jsonb",
}


def column_types(warehouse: ThrowawayPostgres) -> dict[str, str]:
    rows = warehouse.query(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = $1 AND table_name = 'contacts' AND column_name NOT LIKE '\\_sdc%'",
        SCHEMA,
    )
    return dict(rows)


def assert_table_matches(warehouse: ThrowawayPostgres, fake: FakeHeymarket) -> None:
    """One row per contact, every value as the fake serves it (after the tap's normalising)."""
    rows = loaded_contacts(warehouse)
    assert len(rows) == len({row["id"] for row in rows}), "duplicate rows"
    assert {row["id"]: row for row in rows} == expected_contacts(fake)


def test_first_run_loads_every_contact_typed_then_reruns_send_only_changes(
    meltano: Meltano, warehouse: ThrowawayPostgres, fake: FakeHeymarket
) -> None:
    first = meltano(*PIPELINE)

    contacts = expected_contacts(fake)
    assert first.record_count("tap-heymarket", "contacts") == len(contacts)
    assert column_types(warehouse) == EXPECTED_COLUMN_TYPES
    assert_table_matches(warehouse, fake)
    # Messages beside them (their own tests: test_messages_pipeline).
    assert first.record_count("tap-heymarket", "messages") == fake.message_count()
    assert_messages_match(warehouse, fake)
    # The comparison above covers awkward values only if the data has them: make sure it does.
    rows = loaded_contacts(warehouse)
    assert any(not row["display_name"].isascii() for row in rows)
    assert any(isinstance(value, dict) for row in rows for value in row["custom"].values())
    assert any(row["note"] and row["tags"] for row in rows)
    [(vip_tagged,)] = warehouse.query(
        f"SELECT count(*) FROM {SCHEMA}.contacts WHERE tags @> $1::jsonb", '[{"tag": "vip"}]'
    )
    assert int(vip_tagged) > 0, "tags must be queryable as jsonb"
    first_bookmark = bookmark(meltano.state())
    assert first_bookmark == max(contact["updated"] for contact in contacts.values())

    changed = set(fake.update_contacts(20)) | set(fake.create_contacts(5))
    second = meltano(*PIPELINE)

    contacts = expected_contacts(fake)
    sent = ids_from(contacts, first_bookmark)
    # Changed contacts, plus any still at the old bookmark's exact time (re-read by design).
    assert changed <= sent and len(sent - changed) <= 5
    assert second.record_count("tap-heymarket", "contacts") == len(sent)
    assert loaded_by_last_sync(warehouse) == sent
    assert_table_matches(warehouse, fake)
    assert_messages_match(warehouse, fake)
    newest = max(contact["updated"] for contact in contacts.values())
    assert is_bookmark_after_edits(bookmark(meltano.state()), newest)


def test_full_refresh_reloads_every_contact_and_message_without_duplicates(
    meltano: Meltano, warehouse: ThrowawayPostgres, fake: FakeHeymarket
) -> None:
    meltano(*PIPELINE)
    # Rows lost in the warehouse: incremental runs would never bring them back.
    warehouse.query(f"DELETE FROM {SCHEMA}.contacts WHERE id % 10 = 0")
    warehouse.query(f"DELETE FROM {SCHEMA}.messages WHERE id % 10 = 0")
    fake.update_contacts(10)

    refresh = meltano("run", "--full-refresh", "tap-heymarket", "target-postgres")

    assert refresh.record_count("tap-heymarket", "contacts") == len(fake.contacts())
    assert loaded_by_last_sync(warehouse) == set(expected_contacts(fake))
    assert_table_matches(warehouse, fake)
    assert refresh.record_count("tap-heymarket", "messages") == fake.message_count()
    assert loaded_by_last_sync(warehouse, "messages") == {m["id"] for m in fake.all_messages()}
    assert_messages_match(warehouse, fake)
