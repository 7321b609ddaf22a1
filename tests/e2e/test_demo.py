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
from tests.e2e.conftest import bookmark, expected_contacts, loaded_contacts

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
    )

    sent = [int(n) for n in re.findall(r"tap-heymarket sent (\d+) records", out)]
    assert sent[0] == 300
    assert 9 <= sent[1] <= 9 + 5, "the incremental run sends the changes (and bookmark ties)"
    assert "302 rows, 302 distinct contact ids" in out
    assert "jsonb: custom, note, tags" in out
    assert '"replication_key_value": "' in out
    api_port = int(re.search(r"fake Heymarket API at http://127\.0\.0\.1:(\d+)", out)[1])
    db_port = int(re.search(r"PostgreSQL at 127\.0\.0\.1:(\d+)", out)[1])
    assert not accepts_connections(api_port)
    assert not accepts_connections(db_port)


def test_demo_with_credentials_syncs_that_account_into_the_configured_postgres(
    meltano_sys_dir: Path, warehouse: ThrowawayPostgres, tmp_path: Path
) -> None:
    with FakeHeymarket(secret_id="acct-id", secret_key="acct-key", contacts=200, seed=3) as api:
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
        # The state stays where the user's Meltano keeps it, for the next (scheduled) run.
        stored = bookmark(Meltano(env, isolated=True).state())
        assert stored == max(c["updated"] for c in expected_contacts(api).values())
