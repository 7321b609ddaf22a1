"""Dagster code location for this Meltano project: ``dagster dev -f orchestration/dagster/definitions.py``.

What it defines comes from ``meltano.yml``, read when the code location loads:

- one asset, one job and one hourly schedule per Meltano job (``jobs:``); the asset runs
  ``meltano run <job>``. A Meltano schedule of that job sets the cron instead, if Dagster
  understands it (``@hourly``, ``@daily``, a cron line).
- one more of each per Heymarket account: every extractor with ``inherit_from: tap-heymarket``
  that no Meltano job names gets the jobs that run ``tap-heymarket``, with its own name in
  ``tap-heymarket``'s place (``meltano run tap-heymarket-east target-postgres``). Each keeps its
  own bookmark, since Meltano's state ID is made of the extractor's name.

Meltano runs as a subprocess under Dagster Pipes (``meltano_pipes.py`` beside this file), from
the project directory (``MELTANO_PROJECT_ROOT``, else this repository). Everything it needs comes
from the environment Dagster runs in: ``TAP_HEYMARKET_*``, ``TARGET_POSTGRES_*`` and
``MELTANO_DATABASE_URI`` (see docs/production.md). A failed run fails its step with the tap's
one-line error as the failure's description, and the error lines are in the run log.
"""

import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    DefaultScheduleStatus,
    Definitions,
    Failure,
    MaterializeResult,
    MetadataValue,
    PipesSubprocessClient,
    ScheduleDefinition,
    asset,
    define_asset_job,
)
from dagster._core.errors import DagsterPipesExecutionError
from dagster._utils.schedules import is_valid_cron_string

#: The extractor the accounts inherit from.
BASE_EXTRACTOR = "tap-heymarket"
#: The loader of a per-account job when no Meltano job runs ``tap-heymarket``.
DEFAULT_LOADER = "target-postgres"
HOURLY = "0 * * * *"
#: Runs ``meltano`` under Dagster Pipes; a file, so that it runs in its own process.
PIPES_SCRIPT = Path(__file__).resolve().with_name("meltano_pipes.py")
#: Every run carries this tag, with the Meltano command as its value (for a run queue limit).
COMMAND_TAG = "meltano/command"
_NOT_A_NAME_CHARACTER = re.compile(r"[^A-Za-z0-9_]+")


def project_root() -> Path:
    """The Meltano project: ``MELTANO_PROJECT_ROOT``, else the repository holding this file."""
    configured = os.environ.get("MELTANO_PROJECT_ROOT")
    return Path(configured) if configured else Path(__file__).resolve().parents[2]


def meltano_executable() -> str:
    """Meltano beside the Python running Dagster (one virtual environment), else on PATH."""
    beside = Path(sys.executable).with_name("meltano")
    if beside.exists():
        return str(beside)
    found = shutil.which("meltano")
    if found is None:
        msg = "meltano is not installed beside Dagster nor on PATH (pip install -e '.[dagster]')"
        raise FileNotFoundError(msg)
    return found


def dagster_name(text: str) -> str:
    """A Meltano name as Dagster takes names: letters, digits and underscores."""
    return _NOT_A_NAME_CHARACTER.sub("_", text).strip("_")


@dataclass(frozen=True)
class MeltanoJob:
    """One Dagster job: its name, the ``meltano`` arguments it runs and its schedule."""

    name: str
    args: tuple[str, ...]
    cron: str
    description: str


def _task_words(tasks: Any) -> list[list[str]]:
    """A Meltano job's ``tasks`` (a string, a list of strings or of lists) as lists of words."""
    if isinstance(tasks, str):
        return [tasks.split()]
    words: list[list[str]] = []
    for task in tasks or []:
        words.extend(_task_words(task) if isinstance(task, list) else [str(task).split()])
    return words


def _cron(interval: Any) -> str:
    """A Meltano schedule's interval when Dagster can run it, else hourly."""
    if isinstance(interval, str) and is_valid_cron_string(interval):
        return interval
    return HOURLY


def _account_suffix(extractor: str) -> str:
    """``tap-heymarket-east`` -> ``east``; an extractor named otherwise keeps its whole name."""
    for prefix in (f"{BASE_EXTRACTOR}--", f"{BASE_EXTRACTOR}-"):
        if extractor.startswith(prefix) and len(extractor) > len(prefix):
            return extractor[len(prefix) :]
    return extractor


def meltano_jobs(root: Path) -> list[MeltanoJob]:
    """The Dagster jobs ``root/meltano.yml`` calls for (see the module's docstring)."""
    project = yaml.safe_load((root / "meltano.yml").read_text(encoding="utf-8")) or {}
    plugins = project.get("plugins") or {}
    accounts = [
        str(extractor["name"])
        for extractor in plugins.get("extractors") or []
        if extractor.get("inherit_from") == BASE_EXTRACTOR
    ]
    crons = {
        schedule["job"]: _cron(schedule.get("interval"))
        for schedule in project.get("schedules") or []
        if schedule.get("job")
    }
    meltano_defined = [
        (str(job["name"]), _task_words(job.get("tasks"))) for job in project.get("jobs") or []
    ]
    named = {word for _, tasks in meltano_defined for task in tasks for word in task}

    jobs = [
        MeltanoJob(
            name=dagster_name(name),
            args=("run", name),
            cron=crons.get(name, HOURLY),
            description=f"meltano run {name}",
        )
        for name, _ in meltano_defined
    ]
    # An account runs what the Meltano jobs run for tap-heymarket (only those tasks).
    templates = [
        (name, tasks) for name, tasks in meltano_defined if any(BASE_EXTRACTOR in t for t in tasks)
    ] or [(f"{BASE_EXTRACTOR}-to-{DEFAULT_LOADER}", [[BASE_EXTRACTOR, DEFAULT_LOADER]])]
    for account in accounts:
        if account in named:
            continue
        for template, tasks in templates:
            words = [
                account if word == BASE_EXTRACTOR else word
                for task in tasks
                if BASE_EXTRACTOR in task
                for word in task
            ]
            jobs.append(
                MeltanoJob(
                    name=dagster_name(f"{template}_{_account_suffix(account)}"),
                    args=("run", *words),
                    cron=crons.get(template, HOURLY),
                    description=f"meltano run {' '.join(words)} (account {account})",
                )
            )
    return jobs


def _failure_description(job: MeltanoJob, summary: Mapping[str, Any]) -> str:
    """The error lines of a failed run, or its exit code when it logged none."""
    errors = summary.get("errors") or []
    said = "\n".join(errors) if errors else f"exited {summary.get('returncode', '?')}"
    return f"meltano {' '.join(job.args)} failed: {said}"


def meltano_asset(job: MeltanoJob, root: Path) -> AssetsDefinition:
    """An asset whose materialization is one ``meltano`` run of ``job``."""

    @asset(
        key=AssetKey(["meltano", job.name]),
        description=job.description,
        kinds={"meltano"},
        op_tags={COMMAND_TAG: " ".join(job.args)},
    )
    def _meltano_run(
        context: AssetExecutionContext, pipes_subprocess_client: PipesSubprocessClient
    ) -> MaterializeResult:
        with tempfile.TemporaryDirectory(prefix="meltano-pipes-") as scratch:
            summary_path = Path(scratch) / "summary.json"
            try:
                invocation = pipes_subprocess_client.run(
                    context=context,
                    command=[sys.executable, str(PIPES_SCRIPT), meltano_executable(), *job.args],
                    cwd=str(root),
                    extras={"summary_path": str(summary_path)},
                )
            except DagsterPipesExecutionError as exc:
                summary = (
                    json.loads(summary_path.read_text(encoding="utf-8"))
                    if summary_path.exists()
                    else {}
                )
                raise Failure(
                    description=_failure_description(job, summary),
                    metadata={"meltano command": MetadataValue.text(" ".join(job.args))},
                ) from exc
        return invocation.get_materialize_result()

    return _meltano_run


def build_definitions(root: Path | None = None) -> Definitions:
    """Assets, jobs and schedules for the Meltano project at ``root`` (default: ``project_root``)."""
    root = project_root() if root is None else root
    assets: list[AssetsDefinition] = []
    jobs: list[Any] = []  # unresolved asset jobs: Definitions binds them to the assets
    schedules: list[ScheduleDefinition] = []
    for job in meltano_jobs(root):
        meltano_run = meltano_asset(job, root)
        dagster_job = define_asset_job(
            job.name,
            selection=AssetSelection.assets(meltano_run),
            description=job.description,
            tags={COMMAND_TAG: " ".join(job.args)},
        )
        assets.append(meltano_run)
        jobs.append(dagster_job)
        schedules.append(
            ScheduleDefinition(
                name=f"{job.name}_schedule",
                job=dagster_job,
                cron_schedule=job.cron,
                # Off until turned on in the UI or with `dagster schedule start`.
                default_status=DefaultScheduleStatus.STOPPED,
            )
        )
    return Definitions(
        assets=assets,
        jobs=jobs,
        schedules=schedules,
        resources={"pipes_subprocess_client": PipesSubprocessClient()},
    )


defs = build_definitions()
