"""The README's "Many accounts" pattern, run as written: two accounts into the same tables.

Two fake accounts (teams 101 and 202) whose objects share their ids, as nothing says Heymarket's
ids are unique across accounts; two extractors inheriting from ``tap-heymarket``, each with its
own credentials; real Meltano and target-postgres into one schema of the embedded PostgreSQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tap_heymarket.normalize import query_date
from testbed.deployment import project_copy
from testbed.fake_heymarket import FakeHeymarket
from testbed.meltano_cli import PROJECT_ROOT, Meltano, MeltanoRun
from testbed.postgres import ThrowawayPostgres
from testbed.runs import is_bookmark_after_edits
from tests.e2e.conftest import (
    SCHEMA,
    bookmark,
    expected_contacts,
    expected_messages,
    loaded_by_last_sync,
    loaded_rows,
)

pytestmark = pytest.mark.e2e

README = PROJECT_ROOT / "README.md"
#: Each account: its extractor's suffix and its fake, which shares its ids with the other's.
ACCOUNTS: dict[str, dict[str, Any]] = {
    "north": {
        "team_id": 101,
        "seed": 31,
        "contacts": 150,
        "messages": 120,
        "secret_id": "north-id",
        "secret_key": "north-secret",
    },
    "south": {
        "team_id": 202,
        "seed": 32,
        "contacts": 90,
        "messages": 70,
        "secret_id": "south-id",
        "secret_key": "south-secret",
        "api_key": "south-team-key",
    },
}
#: The tables the tap's full-table streams load (every run a whole pass).
FULL_TABLE = ("inboxes", "team_members", "tags", "templates", "surveys", "custom_fields")
TABLES = ("contacts", "messages", "conversations", *FULL_TABLE)
#: A README ``NAME=value`` line; ``...`` stands for the account's own secret.
_ASSIGNMENT = re.compile(r"^([A-Z_]+)=(\S+)", re.MULTILINE)


def readme_pattern() -> tuple[list[dict[str, Any]], dict[str, str], list[list[str]]]:
    """The README's extractors, environment and commands for two accounts."""
    text = README.read_text(encoding="utf-8")
    section = text.split("<!-- accounts:start -->")[1].split("<!-- accounts:end -->")[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, flags=re.DOTALL)
    [extractors] = [yaml.safe_load(body) for lang, body in blocks if lang == "yaml"]
    shells = [body for lang, body in blocks if lang == "sh"]
    env = dict(_ASSIGNMENT.findall(shells[0]))
    commands = [line.split()[1:] for line in shells[1].splitlines() if line.strip()]
    return extractors, env, commands


def fake_values(env: dict[str, str], fakes: dict[str, FakeHeymarket]) -> dict[str, str]:
    """The README's variables, each ``...`` replaced by its account's own fake credential."""
    values = dict(env)
    for name, value in env.items():
        account = re.fullmatch(
            r"TAP_HEYMARKET_([A-Z]+)_(API_SECRET_ID|API_SECRET_KEY|API_KEY)", name
        )
        if value == "..." and account is not None:
            fake = fakes[account[1].lower()]
            secrets = {
                "API_SECRET_ID": fake.secret_id,
                "API_SECRET_KEY": fake.secret_key,
                "API_KEY": fake.api_key,
            }
            values[name] = str(secrets[account[2]])
    assert "..." not in values.values(), values
    return values


@pytest.fixture
def fakes() -> Iterator[dict[str, FakeHeymarket]]:
    with (
        FakeHeymarket(**ACCOUNTS["north"]) as north,
        FakeHeymarket(**ACCOUNTS["south"]) as south,
    ):
        yield {"north": north, "south": south}


def rows_by_account(warehouse: ThrowawayPostgres, table: str) -> dict[int, set[int]]:
    counts: dict[int, set[int]] = {}
    for team_id, row_id in warehouse.query(f"SELECT team_id, id FROM {SCHEMA}.{table}"):
        counts.setdefault(int(team_id), set()).add(int(row_id))
    return counts


def expected_ids(fake: FakeHeymarket) -> dict[str, set[int]]:
    objects = fake.objects()
    return {table: {o["id"] for o in objects[table]} for table in TABLES}


def snapshot(warehouse: ThrowawayPostgres, team_id: int) -> dict[str, list[tuple[str, ...]]]:
    """Every row of one account, every column, as text."""
    return {
        table: sorted(
            warehouse.query(
                f"SELECT row_to_json(t)::text FROM {SCHEMA}.{table} AS t WHERE team_id = {team_id}"
            )
        )
        for table in TABLES
    }


def readme_sql(marker: str) -> str:
    """The SQL block of the README's "Many accounts" section that holds ``-- <marker>``."""
    text = README.read_text(encoding="utf-8")
    [sql] = [
        body
        for body in re.findall(r"```sql\n(.*?)```", text, flags=re.DOTALL)
        if f"-- {marker}" in body
    ]
    return sql


def test_two_accounts_share_the_tables_each_with_its_rows_key_and_bookmark(
    meltano_sys_dir: Path,
    warehouse: ThrowawayPostgres,
    fakes: dict[str, FakeHeymarket],
    tmp_path: Path,
) -> None:
    extractors, documented_env, commands = readme_pattern()
    project = project_copy(tmp_path / "project", meltano_sys_dir)
    config = yaml.safe_load((project / "meltano.yml").read_text(encoding="utf-8"))
    config["plugins"]["extractors"] += extractors
    (project / "meltano.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
        "MELTANO_AUTO_INSTALL": "false",
        **fake_values(documented_env, fakes),
        # Where each fake is; and settings both accounts take from the base's variables.
        **{f"TAP_HEYMARKET_{name.upper()}_API_URL": fake.url for name, fake in fakes.items()},
        "TAP_HEYMARKET_MAX_REQUESTS_PER_MINUTE": "100000",
        "TAP_HEYMARKET_PAGE_SIZE": "50",
        **warehouse.info.target_env(),
    }
    meltano = Meltano(env, isolated=True)

    def run(*args: str) -> MeltanoRun:
        return meltano("--cwd", str(project), *args)

    north, south = fakes["north"], fakes["south"]
    teams = {name: ACCOUNTS[name]["team_id"] for name in fakes}
    assert [command[:2] for command in commands] == [
        ["run", "tap-heymarket-north"],
        ["run", "tap-heymarket-south"],
    ]
    for command in commands:
        run(*command)
    # Each extractor used its own account's credentials (the other's would be refused).
    assert {r["auth"] for r in north.requests} == {"jwt"}
    assert {r["auth"] for r in south.requests} == {"api_key"}
    for fake in fakes.values():
        lists = [r for r in fake.requests if r["path"] == "/v2/contacts/list"]
        # Probes of the list's end, and a lane's last request on a slow machine, ask for less.
        asked = [r["body"]["limit"] for r in lists]
        assert asked[0] == max(asked) == 50, (
            "the base's TAP_HEYMARKET_PAGE_SIZE did not reach this account",
            asked,
        )

    for table in TABLES:
        loaded = rows_by_account(warehouse, table)
        assert loaded == {teams[name]: expected_ids(fake)[table] for name, fake in fakes.items()}
        shared = loaded[teams["north"]] & loaded[teams["south"]]
        assert shared, f"{table}: the accounts share no id, so the test proves nothing"
        assert primary_key(warehouse, table) == {"team_id", "id"}, table
    # No row of one account was overwritten by the other's: each is its own account's record.
    assert_records_match(warehouse, fakes)
    # ACTIVATE_VERSION ignored: no account's run marked the other's rows deleted.
    assert_none_marked_deleted(warehouse)

    # North changes; its next run starts from its own bookmark and touches its own rows alone.
    north_newest = newest_contact(north)
    assert north_newest != newest_contact(south), "a shared bookmark would go unnoticed"
    changed = set(north.update_contacts(12))
    gone_tag = north.tags()[5]["id"]
    north.delete_tag(gone_tag)
    south_before = snapshot(warehouse, teams["south"])
    asked = len(north.requests)
    again = run("run", "tap-heymarket-north", "target-postgres")

    first = next(r for r in north.requests[asked:] if r["path"] == "/v2/contacts/list")
    assert first["body"].get("date") == query_date(north_newest)
    assert again.record_count("tap-heymarket-north", "contacts") < len(north.contacts())
    assert snapshot(warehouse, teams["south"]) == south_before
    assert loaded_by_last_sync(warehouse) >= changed
    assert warehouse.query(
        f"SELECT DISTINCT team_id FROM {SCHEMA}.contacts WHERE _sdc_sync_started_at ="
        f" (SELECT max(_sdc_sync_started_at) FROM {SCHEMA}.contacts)"
    ) == [(str(teams["north"]),)]
    assert_records_match(warehouse, fakes)
    assert_none_marked_deleted(warehouse)
    # A bookmark per account, under its extractor's name, each at its own newest contact.
    north_state, south_state = (
        meltano_state(run, f"dev:tap-heymarket-{name}-to-target-postgres") for name in fakes
    )
    assert is_bookmark_after_edits(bookmark(north_state), newest_contact(north))
    assert bookmark(north_state) > north_newest
    assert bookmark(south_state) == newest_contact(south)
    assert bookmark(north_state, "messages") and bookmark(south_state, "messages")

    # The README's query finds the objects each account's latest pass no longer listed.
    deleted = readme_sql("Tags deleted in Heymarket")
    for table in FULL_TABLE:
        found = warehouse.query(deleted.replace(f"{SCHEMA}.tags", f"{SCHEMA}.{table}"))
        assert found == ([(str(teams["north"]), str(gone_tag))] if table == "tags" else []), table


def primary_key(warehouse: ThrowawayPostgres, table: str) -> set[str]:
    """The columns of ``table``'s primary key in PostgreSQL."""
    rows = warehouse.query(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
        " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        f" WHERE i.indrelid = '{SCHEMA}.{table}'::regclass AND i.indisprimary"
    )
    return {name for (name,) in rows}


def assert_records_match(warehouse: ThrowawayPostgres, fakes: dict[str, FakeHeymarket]) -> None:
    """Every contact and message row is its own account's record, as Heymarket has it now."""
    for table, expected in (("contacts", expected_contacts), ("messages", expected_messages)):
        rows = {(row["team_id"], row["id"]): row for row in loaded_rows(warehouse, table)}
        for name, fake in fakes.items():
            team = ACCOUNTS[name]["team_id"]
            records = {(team, record_id): record for record_id, record in expected(fake).items()}
            assert {key: rows[key] for key in records} == records, (table, name)


def assert_none_marked_deleted(warehouse: ThrowawayPostgres) -> None:
    for table in TABLES:
        marked = warehouse.query(
            f"SELECT count(*) FROM {SCHEMA}.{table} WHERE _sdc_deleted_at IS NOT NULL"
        )
        assert marked == [("0",)], table


def newest_contact(fake: FakeHeymarket) -> str:
    return max(contact["updated"] for contact in expected_contacts(fake).values())


def meltano_state(run: Callable[..., MeltanoRun], state_id: str) -> dict[str, Any]:
    return json.loads(run("state", "get", state_id).stdout)
