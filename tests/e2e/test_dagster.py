"""The Dagster code location (orchestration/dagster/definitions.py) run for real, in process.

Its job runs ``meltano run`` under Dagster Pipes from a fresh copy of the project, against the
fake Heymarket and the embedded PostgreSQL, with Meltano's state in PostgreSQL; everything
reaches Meltano through the environment, as in production.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from dagster import DagsterInstance

from testbed.deployment import (
    STATE_SCHEMA,
    container_env,
    fresh_state_schema,
    project_copy,
    stored_state,
)
from testbed.fake_heymarket import FakeHeymarket
from testbed.meltano_cli import PLUGIN_ENV_PREFIXES, PROJECT_ROOT, Meltano
from testbed.postgres import ThrowawayPostgres
from tests.e2e.conftest import bookmark, expected_contacts, loaded_contacts

pytestmark = pytest.mark.e2e

DEFINITIONS = PROJECT_ROOT / "orchestration" / "dagster" / "definitions.py"
JOB = "heymarket_to_postgres"
#: The tap's secret in these tests: no log line may ever show it.
SECRET = f"dagster-test-secret-{uuid.uuid4().hex}"


def load_definitions(name: str) -> ModuleType:
    """Import definitions.py afresh, as ``dagster dev -f`` does, under the current environment."""
    spec = importlib.util.spec_from_file_location(name, DEFINITIONS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def account() -> Any:
    with FakeHeymarket(contacts=300, seed=17, secret_key=SECRET) as fake:
        yield fake


@pytest.fixture
def deployment(
    monkeypatch: pytest.MonkeyPatch,
    meltano_sys_dir: Path,
    warehouse: ThrowawayPostgres,
    account: FakeHeymarket,
    tmp_path: Path,
) -> dict[str, str]:
    """Dagster's environment: a fresh project copy, its settings and secrets, nothing else."""
    for key in list(os.environ):
        if key.startswith(PLUGIN_ENV_PREFIXES):
            monkeypatch.delenv(key)
    project = project_copy(tmp_path / "project", meltano_sys_dir)
    env = {
        "MELTANO_PROJECT_ROOT": str(project),
        **container_env(fresh_state_schema(warehouse)),
        "TAP_HEYMARKET_API_URL": account.url,
        "TAP_HEYMARKET_API_SECRET_ID": account.secret_id,
        "TAP_HEYMARKET_API_SECRET_KEY": SECRET,
        "TAP_HEYMARKET_MAX_REQUESTS_PER_MINUTE": "100000",
        **warehouse.info.target_env(),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def run_log(instance: DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    """Every entry of the run's event log as (level name, text of the whole entry)."""
    return [
        (logging.getLevelName(entry.level), f"{entry.user_message}\n{entry.dagster_event!r}")
        for entry in instance.all_logs(run_id)
    ]


def test_the_job_loads_postgres_records_the_state_and_logs_no_secret(
    deployment: dict[str, str],
    warehouse: ThrowawayPostgres,
    account: FakeHeymarket,
    capfd: pytest.CaptureFixture[str],
) -> None:
    defs = load_definitions("heymarket_dagster_ok").defs
    instance = DagsterInstance.ephemeral()

    result = defs.get_job_def(JOB).execute_in_process(instance=instance)

    assert result.success
    contacts = expected_contacts(account)
    rows = loaded_contacts(warehouse)
    assert len(rows) == len(contacts) and {row["id"]: row for row in rows} == contacts
    meltano = Meltano(container_env(deployment["MELTANO_DATABASE_URI"]), isolated=True)
    state = stored_state(meltano, Path(deployment["MELTANO_PROJECT_ROOT"]))
    assert bookmark(state) == max(contact["updated"] for contact in contacts.values())
    [materialized] = result.get_asset_materialization_events()
    every_record = (
        len(contacts)
        + len(account.all_messages())
        + len(account.conversations())
        + len(account.inboxes())
        + len(account.team()["members"])
        + len(account.tags())
        + len(account.templates())
        + len(account.surveys())
        + len(account.custom_fields())
    )
    assert materialized.materialization.metadata["records tap-heymarket"].value == every_record

    captured = capfd.readouterr()
    log = run_log(instance, result.run_id)
    # The logs are there (Meltano's lines in the run log and in the step's output)...
    assert any("Beginning sync of 'contacts'" in text for _, text in log)
    assert "Beginning sync of 'contacts'" in captured.err
    # ...and the secret is in none of them.
    assert all(SECRET not in text for _, text in log)
    assert SECRET not in captured.out and SECRET not in captured.err


def test_a_refused_secret_fails_the_job_with_the_taps_one_line_error(
    deployment: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    warehouse: ThrowawayPostgres,
    capfd: pytest.CaptureFixture[str],
) -> None:
    wrong = f"wrong-{SECRET}"
    monkeypatch.setenv("TAP_HEYMARKET_API_SECRET_KEY", wrong)
    defs = load_definitions("heymarket_dagster_refused").defs
    instance = DagsterInstance.ephemeral()

    result = defs.get_job_def(JOB).execute_in_process(instance=instance, raise_on_error=False)

    assert not result.success
    [failure] = result.get_step_failure_events()
    description = failure.step_failure_data.user_failure_data.description
    assert "Sync failed: Heymarket answered 401" in description, description
    assert "api_secret_key" in description
    log = run_log(instance, result.run_id)
    errors = [text for level, text in log if level == "ERROR"]
    assert any("Sync failed: Heymarket answered 401" in text for text in errors), errors
    captured = capfd.readouterr()
    for secret in (wrong, SECRET):
        assert all(secret not in text for _, text in log)
        assert secret not in captured.out and secret not in captured.err
    # A failed run leaves no bookmark behind, so the next one starts where it would have.
    assert warehouse.query(f"SELECT count(*) FROM {STATE_SCHEMA}.state") == [("0",)]


def test_each_account_inheriting_from_the_tap_gets_its_own_job_and_hourly_schedule(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project = yaml.safe_load((PROJECT_ROOT / "meltano.yml").read_text(encoding="utf-8"))
    project["plugins"]["extractors"] += [
        {"name": "tap-heymarket-east", "inherit_from": "tap-heymarket"},
        {"name": "tap-heymarket-west", "inherit_from": "tap-heymarket"},
        # An account its own Meltano job already runs gets no second job.
        {"name": "tap-heymarket-north", "inherit_from": "tap-heymarket"},
    ]
    project["jobs"].append({"name": "north", "tasks": ["tap-heymarket-north target-postgres"]})
    (tmp_path / "meltano.yml").write_text(yaml.safe_dump(project), encoding="utf-8")
    monkeypatch.setenv("MELTANO_PROJECT_ROOT", str(tmp_path))

    module = load_definitions("heymarket_dagster_accounts")

    defs = module.defs
    names = {job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")}
    # The weekly contacts deletion sweep is a Meltano job of its own, with its own schedule.
    sweep = "heymarket_contacts_sweep"
    assert names == {JOB, f"{JOB}_east", f"{JOB}_west", "north", sweep}
    commands = {job.name: job.args for job in module.meltano_jobs(tmp_path)}
    assert commands[f"{JOB}_east"] == ("run", "tap-heymarket-east", "target-postgres")
    assert commands[f"{JOB}_west"] == ("run", "tap-heymarket-west", "target-postgres")
    assert commands[JOB] == ("run", "heymarket-to-postgres")
    for name in names:
        schedule = defs.resolve_schedule_def(f"{name}_schedule")
        expected = ("@weekly", "0 0 * * 0") if name == sweep else ("@hourly", "0 * * * *")
        assert schedule.cron_schedule in expected
        assert schedule.job_name == name


def test_dagster_loads_the_code_location_from_the_documented_file(tmp_path: Path) -> None:
    validate = subprocess.run(
        [
            str(Path(sys.executable).with_name("dagster")),
            *("definitions", "validate", "-f", str(DEFINITIONS)),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "All code locations passed validation" in validate.stdout + validate.stderr
