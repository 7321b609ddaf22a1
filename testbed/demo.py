"""The one-command demo (``make demo``): the main Meltano job, run twice, and what it loaded.

Without Heymarket credentials it runs on embedded defaults: the fake Heymarket API and a
throwaway PostgreSQL, both stopped at the end, with the Meltano state in a scratch database so
that every demo starts from nothing. With credentials (``TAP_HEYMARKET_*`` in the environment
or ``.env``) it syncs the real account into the PostgreSQL that ``TARGET_POSTGRES_*``
configure, and keeps the state in the project's system database as a scheduled run would;
without a configured PostgreSQL the real contacts go to a throwaway one (and a scratch state).
Fake contacts never reach a real warehouse.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from testbed.fake_heymarket import FakeHeymarket
from testbed.meltano_cli import FAKE_API_ENV, STATE_ID, Meltano, MeltanoError, describe
from testbed.postgres import PostgresError, PostgresInfo, ThrowawayPostgres, query

PIPELINE = ("tap-heymarket", "target-postgres")
#: Column list for the sample rows: enough to see each kind of value.
SAMPLE_SQL = """
SELECT id, display_name, updated, rev, custom, jsonb_array_length(tags), jsonb_array_length(note)
FROM {table} ORDER BY updated DESC, id DESC LIMIT 5
"""
#: SDK chatter that says nothing about this run.
QUIET = ("Skipping parse of env var settings",)


def step(message: str) -> None:
    """A progress line, shown at once."""
    print(f"==> {message}", flush=True)


def detail(message: str) -> None:
    """An indented line under the current step."""
    print(f"    {message}", flush=True)


def show_progress(event: dict[str, Any]) -> None:
    """Pass on what a user wants to watch: plugin installs, the tap's sync lines, any warning."""
    level = event.get("level", "info")
    message = str(event.get("event", ""))
    from_tap = event.get("string_id") == "tap-heymarket" and "metric_info" not in event
    installing = event.get("string_id") is None and message.startswith(("Installing", "Installed"))
    if message.startswith(QUIET):
        return
    if level in ("warning", "error", "critical") or from_tap or installing:
        detail(describe(event))


def run_pipeline(meltano: Meltano, label: str) -> None:
    """``meltano run tap-heymarket target-postgres``, with what each side counted."""
    step(f"meltano run {' '.join(PIPELINE)}  ({label})")
    run = meltano("run", *PIPELINE, on_event=show_progress)
    sent = run.record_count("tap-heymarket")
    loaded = run.record_count("target-postgres")
    detail(f"tap-heymarket sent {sent} records; target-postgres loaded {loaded}")


def show_warehouse(info: PostgresInfo, schema: str) -> None:
    """Row counts, column types and the most recently updated rows of the contacts table."""
    table = f'"{schema}".contacts'
    step(f"What landed in {schema}.contacts ({info.host}:{info.port}/{info.database})")
    [(rows, ids)] = query(info, f"SELECT count(*), count(DISTINCT id) FROM {table}")
    detail(f"{rows} rows, {ids} distinct contact ids")
    columns = query(
        info,
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = $1 AND table_name = 'contacts' AND column_name NOT LIKE '\\_sdc%'"
        " ORDER BY ordinal_position",
        schema,
    )
    by_type: dict[str, list[str]] = {}
    for name, kind in columns:
        by_type.setdefault(kind, []).append(name)
    for kind, names in by_type.items():
        detail(f"{kind}: {', '.join(names)}")
    detail("latest updates (id | display_name | updated | rev | custom | #tags | #notes):")
    for row in query(info, SAMPLE_SQL.format(table=table)):
        detail("  " + " | ".join(value[:60] for value in row))


def postgres_info(config: dict[str, Any]) -> PostgresInfo:
    """Connection details from target-postgres' resolved settings."""
    return PostgresInfo(
        host=config["host"],
        port=int(config.get("port") or 5432),
        user=config.get("user") or "",
        password=config.get("password") or "",
        database=config.get("database") or "",
    )


def main(argv: list[str] | None = None) -> int:
    """Run the demo; the exit code is non-zero if any step failed."""
    parser = argparse.ArgumentParser(prog="python -m testbed.demo", description=__doc__)
    parser.add_argument("--contacts", type=int, default=1000, help="fake account size")
    parser.add_argument("--change", type=int, default=25, help="fake contacts to update")
    parser.add_argument("--create", type=int, default=5, help="fake contacts to create")
    parser.add_argument(
        "--env-file", type=Path, help="settings file to read instead of the project's .env"
    )
    args = parser.parse_args(argv)
    try:
        with contextlib.ExitStack() as stack:
            demo(stack, args)
            step("Stopping what the demo started")
    except (MeltanoError, PostgresError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo interrupted", file=sys.stderr)
        return 130
    step("Done")
    return 0


def demo(stack: contextlib.ExitStack, args: argparse.Namespace) -> None:
    """Set up, run twice, report; everything started is registered on ``stack`` to be stopped."""
    step("Reading the project's configuration (meltano config print)")
    probe = Meltano({}, env_file=args.env_file)
    tap_config = probe.config("tap-heymarket")
    target_config = probe("--environment=dev", "config", "--unsafe", "print", "target-postgres")
    target_config = json.loads(target_config.stdout)
    real_api = bool(tap_config.get("api_key") or tap_config.get("api_secret_id"))
    real_warehouse = real_api and bool(target_config.get("host"))
    schema = target_config.get("default_target_schema") or "heymarket"
    env: dict[str, str] = {}

    fake: FakeHeymarket | None = None
    if real_api:
        detail(f"Heymarket credentials found: syncing the real account at {tap_config['api_url']}")
    else:
        fake = stack.enter_context(FakeHeymarket(contacts=args.contacts, seed=1))
        env |= {"TAP_HEYMARKET_API_URL": fake.url, **FAKE_API_ENV}
        step(f"Started the fake Heymarket API at {fake.url} with {args.contacts} contacts")
        detail("(set TAP_HEYMARKET_API_SECRET_ID and _KEY, or _API_KEY, to sync a real account)")

    if real_warehouse:
        info = postgres_info(target_config)
        detail(f"Loading into the configured PostgreSQL at {info.host}:{info.port}/{info.database}")
    else:
        step("Starting a throwaway PostgreSQL")
        info = stack.enter_context(ThrowawayPostgres()).info
        env |= info.target_env()
        detail(f"PostgreSQL at {info.host}:{info.port}, database {info.database}")
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="demo-state-")))
        env["MELTANO_DATABASE_URI"] = f"sqlite:///{scratch / 'meltano.db'}"
        detail("Meltano state goes to a scratch database, so the demo always starts afresh")

    meltano = Meltano(env, env_file=args.env_file)
    step("meltano install  (plugins go to .meltano/; the first time takes a minute)")
    meltano("install", on_event=show_progress)
    run_pipeline(meltano, "first run: every contact")

    if fake is not None:
        changed = fake.update_contacts(args.change)
        created = fake.create_contacts(args.create)
        step(f"Changed {len(changed)} contacts and created {len(created)} in the fake Heymarket")
    run_pipeline(meltano, "incremental: only what changed since the bookmark")
    detail("(contacts at the bookmark's exact time are read again by design; upsert keeps one row)")

    show_warehouse(info, schema)
    step(f"Stored state (meltano state get {STATE_ID})")
    detail(json.dumps(meltano.state()))


if __name__ == "__main__":
    sys.exit(main())
