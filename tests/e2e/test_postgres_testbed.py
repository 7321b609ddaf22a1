"""The throwaway PostgreSQL server: reachable over TCP with a password, isolated, and cleaned up."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from testbed.postgres import (
    PostgresError,
    PostgresInfo,
    ThrowawayPostgres,
    accepts_connections,
    pg_binary,
)

pytestmark = pytest.mark.e2e  # each test starts PostgreSQL servers of its own


def psql_over_tcp(
    info: PostgresInfo, sql: str, *, password: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Connect the way a loader does: TCP to 127.0.0.1 with a password, not via the socket."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["PGPASSWORD"] = info.password if password is None else password
    return subprocess.run(
        [
            *(pg_binary("psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"),
            *("-p", str(info.port), "-U", info.user, "-d", info.database, "-c", sql),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


def test_round_trip_over_tcp_then_everything_is_gone() -> None:
    pg = ThrowawayPostgres()
    info = pg.start()
    data_dir = pg.data_dir
    assert data_dir is not None
    try:
        assert (info.host, info.user, info.database) == ("127.0.0.1", "heymarket", "warehouse")
        assert info.dsn() == f"postgresql://heymarket:heymarket@127.0.0.1:{info.port}/warehouse"
        assert info.target_env()["TARGET_POSTGRES_PORT"] == str(info.port)
        assert accepts_connections(info.port)

        created = psql_over_tcp(
            info,
            "CREATE TABLE contacts (id int PRIMARY KEY, name text, tags jsonb);"
            " INSERT INTO contacts VALUES (1, 'Ann', '[\"a\"]'), (2, NULL, '{}');"
            " SELECT current_user, count(*) FROM contacts;",
        )
        assert created.returncode == 0, created.stderr
        assert created.stdout.strip() == "heymarket|2"

        refused = psql_over_tcp(info, "SELECT 1", password="wrong")
        assert refused.returncode != 0
        assert "password authentication failed" in refused.stderr

        assert pg.query("SELECT id, name, tags FROM contacts ORDER BY id") == [
            ("1", "Ann", '["a"]'),
            ("2", "", "{}"),
        ]
        awkward = "it's\ta\\b\nc"
        assert pg.query("SELECT $1::text, $2::int + 1, $1 = $1;", awkward, 41) == [
            (awkward, "42", "t")
        ]
        with pytest.raises(PostgresError, match="no_such_table"):
            pg.query("SELECT * FROM no_such_table")
    finally:
        pg.stop()

    assert not accepts_connections(info.port)
    assert not data_dir.exists()
    pg.stop()  # idempotent
    with pytest.raises(RuntimeError, match="not running"):
        pg.query("SELECT 1")


def test_parallel_instances_do_not_collide() -> None:
    servers = [ThrowawayPostgres(database=f"db{n}") for n in range(2)]
    errors: list[BaseException] = []

    def start(server: ThrowawayPostgres) -> None:
        try:
            server.start()
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=start, args=(server,)) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert not errors
        assert servers[0].info.port != servers[1].info.port
        assert servers[0].data_dir != servers[1].data_dir
        servers[0].query("CREATE TABLE only_here (x int)")
        assert servers[1].query("SELECT to_regclass('only_here') IS NULL, current_database()") == [
            ("t", "db1")
        ]
    finally:
        for server in servers:
            server.stop()


def test_kept_data_dir_is_reused_and_a_failed_start_shows_the_log(tmp_path: Path) -> None:
    data_dir = tmp_path / "cluster"
    with ThrowawayPostgres(data_dir) as pg:
        pg.query("CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)")
    assert (data_dir / "PG_VERSION").exists()

    with ThrowawayPostgres(data_dir, password="rotated") as pg:
        assert psql_over_tcp(pg.info, "SELECT x FROM kept").stdout.strip() == "7"

    with (data_dir / "postgresql.conf").open("a") as conf:
        conf.write("no_such_setting_here = 1\n")
    broken = ThrowawayPostgres(data_dir)
    with pytest.raises(PostgresError, match=r"(?s)server log tail.*no_such_setting_here"):
        broken.start()
    assert broken.data_dir is None
    assert not (data_dir / "postmaster.pid").exists()
