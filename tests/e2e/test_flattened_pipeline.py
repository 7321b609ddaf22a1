"""``flattening_enabled`` through Meltano into PostgreSQL: flattened, yet no value left behind."""

from __future__ import annotations

import json

import pytest

from testbed.fake_heymarket import FakeHeymarket
from testbed.meltano_cli import Meltano
from testbed.postgres import ThrowawayPostgres
from tests.e2e.conftest import SCHEMA, expected_contacts, loaded_contacts

pytestmark = pytest.mark.e2e

#: Free-form JSON values, which a flattened table holds as JSON text.
JSON_COLUMNS = ("custom", "note", "tags")


def test_flattened_sync_loads_every_custom_field_note_and_tag_as_json_text(
    meltano: Meltano, warehouse: ThrowawayPostgres, fake: FakeHeymarket
) -> None:
    meltano.env |= {
        "TAP_HEYMARKET_FLATTENING_ENABLED": "true",
        "TAP_HEYMARKET_FLATTENING_MAX_DEPTH": "2",
    }

    meltano("run", "tap-heymarket", "target-postgres")

    contacts = expected_contacts(fake)
    assert any(contact["custom"] for contact in contacts.values())
    columns = {
        name
        for (name,) in warehouse.query(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = 'contacts'",
            SCHEMA,
        )
    }
    assert set(JSON_COLUMNS) <= columns
    assert not {name for name in columns if name.startswith("custom__")}
    rows = loaded_contacts(warehouse)
    for row in rows:
        for name in JSON_COLUMNS:
            if row[name] is not None:
                row[name] = json.loads(row[name])
    assert len(rows) == len(contacts)
    assert {row["id"]: row for row in rows} == contacts
