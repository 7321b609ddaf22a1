"""The one-command demo (``make demo``): the main Meltano job, run twice, and what it loaded.

The fake account has contacts and messages (a broadcast among them); between the runs some
contacts change, new messages arrive and recent ones are delivered, so the second run shows
what an incremental run brings for both streams.

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
import datetime
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from testbed.fake_heymarket import FakeHeymarket
from testbed.meltano_cli import FAKE_API_ENV, STATE_ID, Meltano, MeltanoError, describe
from testbed.postgres import PostgresError, PostgresInfo, ThrowawayPostgres, query

PIPELINE = ("tap-heymarket", "target-postgres")
#: Each table the demo shows: its sample rows' heading and query (enough to see each kind of
#: value; text trimmed to one short line).
SAMPLES = {
    "contacts": (
        "latest updates (id | display_name | updated | rev | custom | #tags | #notes)",
        """
        SELECT id, display_name, updated, rev, custom, jsonb_array_length(tags),
               jsonb_array_length(note)
        FROM {table} ORDER BY updated DESC, id DESC LIMIT 5
        """,
    ),
    "messages": (
        "latest messages (date | status | conversation_id | inbox_id | text)",
        """
        SELECT date, coalesce(status, ''), conversation_id, inbox_id,
               left(regexp_replace(coalesce(text, ''), '\\s+', ' ', 'g'), 40)
        FROM {table} ORDER BY date DESC, id DESC LIMIT 5
        """,
    ),
}
#: What each table's rows are called in the counts.
NOUNS = {"contacts": "contact", "messages": "message"}
#: How long before the first run the fake's recent messages were sent: within the look-back
#: (24 hours by default), so the deliveries recorded after the first run reach the second.
RECENT = datetime.timedelta(hours=3)
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
    per_stream = ", ".join(f"{s} {n}" for s, n in run.record_counts("tap-heymarket").items())
    loaded = run.record_count("target-postgres")
    detail(f"tap-heymarket sent {sent} records ({per_stream}); target-postgres loaded {loaded}")


def show_warehouse(info: PostgresInfo, schema: str) -> None:
    """Row counts of every table, then each table's column types and latest rows."""
    step(f"What landed in {schema} ({info.host}:{info.port}/{info.database})")
    tables = [
        name
        for (name,) in query(
            info,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1"
            " ORDER BY table_name",
            schema,
        )
    ]
    for name in tables:
        [(rows, ids)] = query(info, f'SELECT count(*), count(DISTINCT id) FROM "{schema}".{name}')
        noun = NOUNS.get(name, name)
        detail(f"{schema}.{name}: {rows} rows, {ids} distinct {noun} ids")
    for name in (name for name in SAMPLES if name in tables):
        show_table(info, schema, name)


def show_table(info: PostgresInfo, schema: str, name: str) -> None:
    """One table's column types and its latest rows."""
    step(f"{schema}.{name}")
    columns = query(
        info,
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = $1 AND table_name = $2 AND column_name NOT LIKE '\\_sdc%'"
        " ORDER BY ordinal_position",
        schema,
        name,
    )
    by_type: dict[str, list[str]] = {}
    for column, kind in columns:
        by_type.setdefault(kind, []).append(column)
    for kind, names in by_type.items():
        detail(f"{kind}: {', '.join(names)}")
    heading, sql = SAMPLES[name]
    detail(f"{heading}:")
    for row in query(info, sql.format(table=f'"{schema}".{name}')):
        detail("  " + " | ".join(value[:60] for value in row))


def show_state(state: dict[str, Any]) -> None:
    """Each stream's bookmark (and a walk left unfinished, if any), then the state as stored."""
    bookmarks = state.get("singer_state", state).get("bookmarks", {})
    for stream, saved in bookmarks.items():
        line = f"{stream} bookmark: {saved.get('replication_key')} = "
        line += str(saved.get("replication_key_value"))
        if "walk" in saved:
            line += f" (unfinished walk: {json.dumps(saved['walk'])})"
        detail(line)
    detail(json.dumps(state))


def change_the_fake(fake: FakeHeymarket, args: argparse.Namespace, undelivered: list[int]) -> None:
    """What happens in Heymarket between the runs: edits, new messages, ``undelivered`` delivered."""
    changed = fake.update_contacts(args.change)
    created = fake.create_contacts(args.create)
    step(f"Changed {len(changed)} contacts and created {len(created)} in the fake Heymarket")
    new = [fake.create_message()["id"] for _ in range(args.new_messages)]
    for message_id in undelivered:
        fake.change_message(message_id, status="delivered")
    step(
        f"{len(new)} new messages arrived, and {len(undelivered)} sent a few hours ago (within the"
        " look-back) were delivered: their status changed"
    )


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
    parser.add_argument("--messages", type=int, default=3000, help="fake messages")
    parser.add_argument(
        "--broadcast", type=int, default=250, help="messages of the fake's one broadcast"
    )
    parser.add_argument(
        "--new-messages", type=int, default=40, help="fake messages to create between runs"
    )
    parser.add_argument(
        "--deliveries",
        type=int,
        default=20,
        help="recent fake messages sent before the first run and delivered before the second",
    )
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
    undelivered: list[int] = []
    if real_api:
        detail(f"Heymarket credentials found: syncing the real account at {tap_config['api_url']}")
    else:
        fake = stack.enter_context(
            FakeHeymarket(
                contacts=args.contacts,
                messages=args.messages,
                broadcasts=1 if args.broadcast else 0,
                broadcast_size=args.broadcast,
                seed=1,
            )
        )
        # Sent in the last few hours and not delivered yet (the generated ones are older).
        sent_at = datetime.datetime.now(datetime.timezone.utc) - RECENT
        for n in range(args.deliveries):
            at = (sent_at + datetime.timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            undelivered.append(fake.create_message(date=at, status="sent")["id"])
        env |= {"TAP_HEYMARKET_API_URL": fake.url, **FAKE_API_ENV}
        step(
            f"Started the fake Heymarket API at {fake.url} with {args.contacts} contacts and"
            f" {fake.message_count()} messages (a broadcast of {args.broadcast} among them)"
        )
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
    run_pipeline(meltano, "first run: every contact and message")

    if fake is not None:
        change_the_fake(fake, args, undelivered)
    run_pipeline(meltano, "incremental: only what changed since the bookmarks")
    detail("(contacts at the bookmark's exact time, and messages created within the look-back")
    detail(" before the messages bookmark, are read again by design; upsert keeps one row)")

    show_warehouse(info, schema)
    step(f"Stored state (meltano state get {STATE_ID})")
    show_state(meltano.state())


if __name__ == "__main__":
    sys.exit(main())
