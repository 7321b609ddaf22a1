"""Interrupted runs into a real PostgreSQL: the restart from the last saved state loses nothing.

Both ways users run the tap: the standalone pipe (the tap SIGKILLed midway, the target's last
STATE kept) and ``meltano run`` (the API gone for good midway, Meltano keeping the state).
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import pytest

from testbed.fake_heymarket import FakeHeymarket
from testbed.meltano_cli import plugin_executable
from testbed.runs import tap_command, tap_config, write_json
from tests.e2e.conftest import SCHEMA, assert_messages_match, bookmark, loaded_contacts

pytestmark = pytest.mark.e2e

PAGE_SIZE = 50


def test_pipeline_into_postgres_killed_midway_resumes_from_the_targets_state_losing_nothing(
    meltano_sys_dir,
    warehouse,
    tmp_path,
):
    target = plugin_executable(meltano_sys_dir, "loaders", "target-postgres")
    info = warehouse.info
    target_config = write_json(
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
    with FakeHeymarket(contacts=3000, seed=41) as fake:
        config = write_json(tmp_path, "tap.json", tap_config(fake, page_size=PAGE_SIZE))

        def pipeline(state: dict | None, kill_after: int | None) -> dict:
            """tap | target, relayed line by line; SIGKILL the tap after ``kill_after`` records."""
            argv = [*tap_command(), "--config", str(config)]
            if state is not None:
                argv += ["--state", str(write_json(tmp_path, "state.json", state))]
            tap = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            loader = subprocess.Popen(
                [str(target), "--config", str(target_config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            records = 0
            for line in tap.stdout:
                loader.stdin.write(line)
                records += line.startswith(b'{"type":"RECORD"')
                if records == kill_after:
                    tap.send_signal(signal.SIGKILL)
                    break
            tap.wait()
            out, _ = loader.communicate(timeout=120)
            assert loader.returncode == 0
            return json.loads(out.decode().strip().splitlines()[-1])

        state = pipeline(None, kill_after=1700)
        assert state["bookmarks"]["contacts"]["replication_key_value"]
        pipeline(state, kill_after=None)
        everything = {contact["id"] for contact in fake.contacts()}

    rows = warehouse.query(f"SELECT count(*), count(DISTINCT id) FROM {SCHEMA}.contacts")
    ids = {int(i) for (i,) in warehouse.query(f"SELECT id FROM {SCHEMA}.contacts")}
    assert ids == everything
    assert rows[0][0] == rows[0][1], "upserts, no duplicate rows"


def test_meltano_run_with_the_api_gone_midway_fails_then_resumes_losing_nothing(
    meltano, warehouse, fake
):
    meltano.env |= {
        "TAP_HEYMARKET_PAGE_SIZE": "20",
        "TAP_HEYMARKET_MAX_RETRIES": "2",
        "TAP_HEYMARKET_BACKOFF_FACTOR": "0",
    }
    everything = {contact["id"] for contact in fake.contacts()}

    def take_the_api_down_after(requests: int) -> None:
        while len(fake.requests) < requests:
            time.sleep(0.005)
        fake.configure(fail_rate=1.0, fail_kinds=["503"])

    outage = threading.Thread(target=take_the_api_down_after, args=(25,), daemon=True)
    outage.start()
    failed = meltano("run", "tap-heymarket", "target-postgres", check=False)
    outage.join()

    assert failed.returncode != 0
    loaded_before = {row["id"] for row in loaded_contacts(warehouse)}
    kept = bookmark(meltano.state())
    assert 0 < len(loaded_before) < len(everything)
    assert all(row["updated"] <= kept for row in loaded_contacts(warehouse))

    fake.configure(fail_rate=0.0)
    resumed = meltano("run", "tap-heymarket", "target-postgres")

    rows = loaded_contacts(warehouse)
    assert {row["id"] for row in rows} == everything
    assert len(rows) == len(everything), "upserts, no duplicate rows"
    resent = resumed.record_count("tap-heymarket", "contacts")
    assert resent <= len(everything) - len(loaded_before) + 5 * 20
    assert bookmark(meltano.state()) == max(row["updated"] for row in rows)
    # The outage came during contacts: the resumed run synced every message after them.
    assert resumed.record_count("tap-heymarket", "messages") == fake.message_count()
    assert_messages_match(warehouse, fake)
