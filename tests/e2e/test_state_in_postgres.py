"""State that survives a throwaway container: Meltano's system database in the warehouse's PostgreSQL.

Each run starts from a fresh copy of the project directory (``testbed.deployment``); the copies
share nothing but the PostgreSQL server, where Meltano keeps its tables in the ``meltano``
schema and target-postgres loads ``heymarket``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tap_heymarket.normalize import query_date, widen
from testbed.deployment import (
    ALREADY_RUNNING,
    STATE_SCHEMA,
    container_env,
    fresh_state_schema,
    project_copy,
    stored_state,
)
from testbed.fake_heymarket import FakeHeymarket
from testbed.meltano_cli import FAKE_API_ENV, STATE_ID, Meltano, MeltanoRun
from testbed.postgres import ThrowawayPostgres
from testbed.runs import is_bookmark_after_edits
from tests.e2e.conftest import (
    bookmark,
    expected_contacts,
    ids_from,
    loaded_by_last_sync,
    loaded_contacts,
)

pytestmark = pytest.mark.e2e

PIPELINE = ("run", "tap-heymarket", "target-postgres")


@pytest.fixture
def state_uri(warehouse: ThrowawayPostgres) -> str:
    """``MELTANO_DATABASE_URI`` of a ``meltano`` schema no earlier test left state in."""
    return fresh_state_schema(warehouse)


def container(
    state_uri: str, warehouse: ThrowawayPostgres, fake: FakeHeymarket, **extra: str
) -> Meltano:
    """Meltano configured as a container's environment configures it, and nothing else."""
    env = {
        **container_env(state_uri),
        "TAP_HEYMARKET_API_URL": fake.url,
        **FAKE_API_ENV,
        **warehouse.info.target_env(),
        **extra,
    }
    return Meltano(env, isolated=True)


def assert_table_matches(warehouse: ThrowawayPostgres, fake: FakeHeymarket) -> None:
    rows = loaded_contacts(warehouse)
    assert len(rows) == len({row["id"] for row in rows}), "duplicate rows"
    assert {row["id"]: row for row in rows} == expected_contacts(fake)


def test_a_second_container_resumes_from_the_bookmark_the_first_left_in_postgres(
    meltano_sys_dir: Path,
    warehouse: ThrowawayPostgres,
    fake: FakeHeymarket,
    state_uri: str,
    tmp_path: Path,
) -> None:
    meltano = container(state_uri, warehouse, fake)
    first_project = project_copy(tmp_path / "first", meltano_sys_dir)
    first = meltano("--cwd", str(first_project), *PIPELINE)

    assert first.record_count("tap-heymarket", "contacts") == len(fake.contacts())
    assert_table_matches(warehouse, fake)
    assert not (first_project / ".meltano" / "meltano.db").exists(), "state went to a local file"
    [(stored,)] = warehouse.query(f"SELECT count(*) FROM {STATE_SCHEMA}.state")
    assert stored == "1"
    first_bookmark = bookmark(stored_state(meltano, first_project))
    assert first_bookmark == max(c["updated"] for c in expected_contacts(fake).values())

    # The container is gone with its directory; Heymarket changes meanwhile.
    first_project.rename(tmp_path / "gone")
    changed = set(fake.update_contacts(20)) | set(fake.create_contacts(5))
    second_project = project_copy(tmp_path / "second", meltano_sys_dir)
    assert bookmark(stored_state(meltano, second_project)) == first_bookmark
    asked_before = len(fake.requests)
    second = meltano("--cwd", str(second_project), *PIPELINE)

    # Incremental: its first request asks from the first run's bookmark, not from the start.
    assert fake.requests[asked_before]["body"].get("date") == query_date(first_bookmark)
    contacts = expected_contacts(fake)
    sent = ids_from(contacts, first_bookmark)
    assert changed <= sent and len(sent - changed) <= 5
    assert second.record_count("tap-heymarket", "contacts") == len(sent) < len(contacts)
    assert loaded_by_last_sync(warehouse) == sent
    # Nothing lost: every contact, as Heymarket has it now, exactly once.
    assert_table_matches(warehouse, fake)
    newest = max(contact["updated"] for contact in contacts.values())
    assert is_bookmark_after_edits(bookmark(stored_state(meltano, second_project)), newest)


def test_a_run_of_the_job_while_another_container_runs_it_is_refused_and_state_stays_sound(
    meltano_sys_dir: Path,
    warehouse: ThrowawayPostgres,
    fake: FakeHeymarket,
    state_uri: str,
    tmp_path: Path,
) -> None:
    meltano = container(state_uri, warehouse, fake)
    running_project = project_copy(tmp_path / "running", meltano_sys_dir)
    late_project = project_copy(tmp_path / "late", meltano_sys_dir)
    # The first run is held on its first request until the second has been turned away.
    fake.latency = 3.0
    outcome: dict[str, MeltanoRun] = {}
    running = threading.Thread(
        target=lambda: outcome.setdefault("run", meltano("--cwd", str(running_project), *PIPELINE))
    )
    running.start()
    try:
        deadline = time.monotonic() + 120
        while not fake.requests and running.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert fake.requests, "the first run never reached Heymarket"

        # The late run talks to another (empty) account: any request there means it synced.
        with FakeHeymarket() as elsewhere:
            late = container(state_uri, warehouse, elsewhere)(
                "--cwd", str(late_project), *PIPELINE, check=False
            )
            assert running.is_alive(), "the first run ended before the second was checked"
            assert elsewhere.requests == []
        assert late.returncode != 0
        said = "\n".join(str(event.get("event", "")) for event in late.events)
        assert ALREADY_RUNNING in said and STATE_ID in said, late.log_tail()
    finally:
        fake.latency = 0.0
        running.join(timeout=300)

    first = outcome["run"]
    assert first.returncode == 0
    assert first.record_count("tap-heymarket", "contacts") == len(fake.contacts())
    assert_table_matches(warehouse, fake)
    newest = max(c["updated"] for c in expected_contacts(fake).values())
    assert bookmark(stored_state(meltano, late_project)) == newest
    # One run recorded, a success; the refused one left no trace.
    assert warehouse.query(f"SELECT state FROM {STATE_SCHEMA}.runs") == [("SUCCESS",)]

    # Tried again once the first is done (the next scheduled run), it goes on from its bookmark.
    asked_before = len(fake.requests)
    retry = meltano("--cwd", str(late_project), *PIPELINE)
    assert fake.requests[asked_before]["body"].get("date") == query_date(newest)
    # Only the contacts of the bookmark's last second, which every run reads again by design.
    last_second = ids_from(expected_contacts(fake), widen(query_date(newest)))
    assert (
        retry.record_count("tap-heymarket", "contacts") <= len(last_second) < len(fake.contacts())
    )
    assert_table_matches(warehouse, fake)
