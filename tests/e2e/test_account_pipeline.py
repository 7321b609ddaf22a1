"""The whole account as users load it: every stream into PostgreSQL, the joins, deletions marked.

Real Meltano, real target-postgres and PostgreSQL, the fake Heymarket API over HTTP.
"""

from __future__ import annotations

import pytest

from testbed.fake_heymarket import FakeHeymarket
from testbed.meltano_cli import Meltano
from testbed.postgres import ThrowawayPostgres
from tests.e2e.conftest import SCHEMA

pytestmark = pytest.mark.e2e

PIPELINE = ("run", "tap-heymarket", "target-postgres")
SWEEP = ("run", "tap-heymarket-sweep", "target-postgres")


def count(warehouse: ThrowawayPostgres, sql: str) -> int:
    [(value,)] = warehouse.query(sql)
    return int(value)


def live_ids(warehouse: ThrowawayPostgres, table: str) -> set[int]:
    rows = warehouse.query(f"SELECT id FROM {SCHEMA}.{table} WHERE _sdc_deleted_at IS NULL")
    return {int(row_id) for (row_id,) in rows}


def test_every_stream_lands_and_the_joins_a_user_writes_return_rows(
    meltano: Meltano, warehouse: ThrowawayPostgres, fake: FakeHeymarket
) -> None:
    meltano(*PIPELINE)

    expected = {
        "contacts": len(fake.contacts()),
        "messages": len(fake.all_messages()),
        "conversations": len(fake.conversations()),
        "inboxes": len(fake.inboxes()),
        "team_members": len(fake.team()["members"]),
        "tags": len(fake.tags()),
        "templates": len(fake.templates()),
        "surveys": len(fake.surveys()),
        "custom_fields": len(fake.custom_fields()),
    }
    loaded = {
        table: count(warehouse, f"SELECT count(*) FROM {SCHEMA}.{table}") for table in expected
    }
    assert loaded == expected
    # Messages to conversations to inboxes to the team member who sent them.
    joined = count(
        warehouse,
        f"SELECT count(*) FROM {SCHEMA}.messages m"
        f" JOIN {SCHEMA}.conversations c ON c.id = m.conversation_id"
        f" JOIN {SCHEMA}.inboxes i ON i.id = c.inbox"
        f" JOIN {SCHEMA}.team_members t ON t.id = m.user",
    )
    sent = sum(1 for m in fake.all_messages() if m.get("user"))
    assert 0 < joined == sent
    # Contacts' custom values are keyed by custom field ids the custom_fields table holds.
    keyed = count(
        warehouse,
        f"SELECT count(DISTINCT k) FROM {SCHEMA}.contacts, jsonb_object_keys(custom) AS k"
        f" WHERE k::bigint IN (SELECT id FROM {SCHEMA}.custom_fields)",
    )
    assert keyed > 0


def test_objects_deleted_in_heymarket_are_marked_deleted_and_the_rest_stay(
    meltano: Meltano, warehouse: ThrowawayPostgres, fake: FakeHeymarket
) -> None:
    meltano(*PIPELINE)
    gone_tag = fake.tags()[3]["id"]
    fake.delete_tag(gone_tag)
    gone_contacts = [contact["id"] for contact in fake.contacts()[:7]]
    fake.delete_contacts(gone_contacts)

    meltano(*PIPELINE)
    # A full-table stream marks what Heymarket no longer lists.
    assert live_ids(warehouse, "tags") == {tag["id"] for tag in fake.tags()}
    assert count(warehouse, f"SELECT count(*) FROM {SCHEMA}.tags WHERE id = {gone_tag}") == 1
    # Contacts are incremental: the hourly job cannot tell; the weekly sweep can.
    assert live_ids(warehouse, "contacts") >= set(gone_contacts)
    hourly_state = meltano.state()

    meltano(*SWEEP)
    live = live_ids(warehouse, "contacts")
    assert live == {contact["id"] for contact in fake.contacts()}
    assert not live & set(gone_contacts)
    deleted = count(
        warehouse, f"SELECT count(*) FROM {SCHEMA}.contacts WHERE _sdc_deleted_at IS NOT NULL"
    )
    assert deleted == len(gone_contacts)
    # The sweep has its own state: the hourly job's bookmark is as it was.
    assert meltano.state() == hourly_state
