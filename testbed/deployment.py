"""The project as a throwaway container holds it, with Meltano's state in PostgreSQL.

Shared by the end-to-end tests of docs/production.md: a fresh copy of the project directory
(``meltano.yml`` and the installed plugins, nothing else: no ``.meltano/meltano.db``, no run
logs) and the ``MELTANO_DATABASE_URI`` that keeps Meltano's system database, and with it the
bookmarks and the record of running jobs, in a schema of the warehouse's PostgreSQL.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from testbed.meltano_cli import PROJECT_ROOT, STATE_ID, Meltano
from testbed.postgres import PostgresInfo, ThrowawayPostgres

#: The schema of Meltano's own tables (``state``, ``runs``...), beside the loaded data.
STATE_SCHEMA = "meltano"
#: What Meltano logs when the job is already running elsewhere (``meltano run`` refuses).
ALREADY_RUNNING = "pipeline is already running"


def state_database_uri(info: PostgresInfo, schema: str = STATE_SCHEMA) -> str:
    """``MELTANO_DATABASE_URI`` for Meltano's tables in ``schema`` of ``info``'s database.

    ``postgresql+psycopg`` is the driver ``meltano[postgres]`` installs; the ``options``
    parameter sets the connection's ``search_path``, so Meltano creates its tables there.
    """
    dsn = info.dsn().replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{dsn}?options=-csearch_path%3D{schema}"


def fresh_state_schema(postgres: ThrowawayPostgres, schema: str = STATE_SCHEMA) -> str:
    """Drop and create ``schema`` (no state left by an earlier test); return the URI for it."""
    postgres.query(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
    return state_database_uri(postgres.info, schema)


def project_copy(destination: Path, plugins_from: Path) -> Path:
    """A new project directory at ``destination``, as a container image would hold it.

    It has the repository's ``meltano.yml`` and a ``.meltano`` of its own whose
    ``extractors`` and ``loaders`` link to the plugins ``meltano install`` put in
    ``plugins_from`` (the image's installed plugins); run it with ``MELTANO_AUTO_INSTALL=false``
    so that Meltano never reinstalls into them.
    """
    destination.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "meltano.yml", destination / "meltano.yml")
    sys_dir = destination / ".meltano"
    sys_dir.mkdir()
    for kind in ("extractors", "loaders"):
        (sys_dir / kind).symlink_to(plugins_from / kind, target_is_directory=True)
    return destination


def container_env(state_uri: str) -> dict[str, str]:
    """Meltano's own variables for a copy: state in PostgreSQL, plugins as installed."""
    return {"MELTANO_DATABASE_URI": state_uri, "MELTANO_AUTO_INSTALL": "false"}


def stored_state(meltano: Meltano, project: Path, state_id: str = STATE_ID) -> dict[str, Any]:
    """The state ``project``'s Meltano reads for ``state_id`` (``meltano state get``)."""
    return json.loads(meltano("--cwd", str(project), "state", "get", state_id).stdout)
