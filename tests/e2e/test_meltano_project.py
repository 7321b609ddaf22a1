"""The rest of ``meltano.yml`` as users meet it: settings, the job and its schedule, target-jsonl."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from testbed.fake_heymarket import FakeHeymarket
from testbed.meltano_cli import STATE_ID, Meltano
from tests.e2e.conftest import bookmark, expected_contacts, expected_messages, ids_from

pytestmark = pytest.mark.e2e

TAP_SETTINGS = (
    "api_secret_id",
    "api_secret_key",
    "api_key",
    "start_date",
    "api_url",
    "page_size",
    "max_requests_per_minute",
    "request_timeout",
    "max_retries",
    "backoff_factor",
)


def test_settings_come_typed_from_env_vars_and_secrets_stay_hidden(meltano: Meltano) -> None:
    meltano.env |= {
        "TAP_HEYMARKET_API_SECRET_KEY": "sk-never-print-me",
        "TAP_HEYMARKET_PAGE_SIZE": "50",
        "TAP_HEYMARKET_REQUEST_TIMEOUT": "30",
        "TAP_HEYMARKET_START_DATE": "2024-01-01T00:00:00Z",
    }

    listing = meltano("config", "list", "tap-heymarket", "--all").stdout
    for name in TAP_SETTINGS:
        assert re.search(rf"^{name} .*\[env: TAP_HEYMARKET_{name.upper()}\]", listing, re.M)
    assert "never-print-me" not in listing
    assert re.search(
        r"^api_secret_key .* current value: \(redacted\) \(from the TAP_", listing, re.M
    )

    tap = meltano.config("tap-heymarket")
    assert tap["page_size"] == 50
    assert tap["request_timeout"] == 30
    assert tap["start_date"] == "2024-01-01T00:00:00Z"
    assert tap["api_secret_key"] != "sk-never-print-me"
    target = meltano.config("target-postgres")
    assert target["port"] == int(meltano.env["TARGET_POSTGRES_PORT"])
    assert (target["default_target_schema"], target["load_method"]) == ("heymarket", "upsert")


def test_hourly_schedule_runs_the_job_and_shares_the_pipelines_bookmark(
    meltano: Meltano, fake: FakeHeymarket
) -> None:
    schedules = json.loads(meltano("schedule", "list", "--format=json").stdout)
    [hourly] = [s for s in schedules["schedules"]["job"] if s["name"] == "heymarket-hourly"]
    assert hourly["cron_interval"] == "0 * * * *"
    assert hourly["job"] == {
        "name": "heymarket-to-postgres",
        "tasks": ["tap-heymarket target-postgres"],
    }

    job = meltano("run", "heymarket-to-postgres")
    assert job.record_count("tap-heymarket", "contacts") == len(fake.contacts())
    assert job.record_count("tap-heymarket", "messages") == fake.message_count()
    job_bookmark = bookmark(meltano.state(STATE_ID))

    changed = set(fake.update_contacts(5))
    scheduled = meltano("schedule", "run", "heymarket-hourly")

    sent = ids_from(expected_contacts(fake), job_bookmark)
    assert changed <= sent
    assert scheduled.record_count("tap-heymarket", "contacts") == len(sent)


def test_jsonl_target_writes_every_contact_and_message_as_json(
    meltano: Meltano, fake: FakeHeymarket, tmp_path: Path
) -> None:
    meltano("run", "tap-heymarket", "target-jsonl")

    for stream, expected in (
        ("contacts", expected_contacts(fake)),
        ("messages", expected_messages(fake)),
    ):
        [output] = (tmp_path / "output").glob(f"{stream}*.jsonl")
        lines = output.read_text(encoding="utf-8").splitlines()
        assert {json.loads(line)["id"]: json.loads(line) for line in lines} == expected
        assert len(lines) == len(expected)
