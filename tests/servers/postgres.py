"""Real PostgreSQL and PgBouncer on loopback for the test suite.

* :class:`PostgresServer`: a throwaway cluster (initdb, then ``postgres`` in the
  foreground as the ``postgres`` user, which initdb and the server require), on a
  free port, with ``pg_stat_statements`` preloaded, plus the roles the tests use:
  ``monitor`` (a non-superuser holding ``pg_monitor``, password protected) and
  ``app`` (an application user).
* a streaming replica made with ``pg_basebackup -R``;
* :class:`PgBouncer` in transaction mode in front of the primary's ``appdb``, with
  a small pool so tests can make clients wait.

Fixtures at the bottom; loaded through ``pytest_plugins`` in tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psycopg
import pytest

from peers.process import LOOPBACK, Process, ProcessError, free_port, temp_dir, wait_until

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PGBOUNCER = "/usr/sbin/pgbouncer"
PG_USER = "postgres"

# Distinctive so tests can grep metrics, logs and errors for leaks.
MONITOR_PASSWORD = "pg-M0nitor-s3cret-91c4"
APP_PASSWORD = "pg-App-s3cret-5d2e"
STATS_PASSWORD = "pgb-Stats-s3cret-77aa"

START_TIMEOUT = 30.0


def _as_postgres(args: list[str]) -> list[str]:
    # setpriv execs in place (runuser would fork), so the pid we hold is the server's.
    return ["setpriv", "--reuid", PG_USER, "--regid", PG_USER, "--init-groups", "--", *args]


def _run(args: list[str], timeout: float = 60.0) -> None:
    proc = subprocess.run(_as_postgres(args), capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise ProcessError(f"{args[0]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def private_dir(prefix: str) -> Path:
    """A temp dir the postgres user owns (pytest's tmp dirs are root-only)."""
    return temp_dir(prefix, owner=PG_USER)


HBA = """\
local all all trust
host replication postgres 127.0.0.1/32 trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
"""


class PostgresServer:
    """One PostgreSQL server; ``primary`` given means a streaming replica of it."""

    def __init__(self, base: Path, *, primary: PostgresServer | None = None, name: str = "primary") -> None:
        self.base = base
        self.name = name
        self.data = base / name
        self.port = free_port()
        self.primary = primary
        self.process: Process | None = None

    def __repr__(self) -> str:
        return f"<PostgresServer {self.name} {LOOPBACK}:{self.port}>"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- lifecycle -------------------------------------------------------------

    def _init(self) -> None:
        if self.data.exists():
            return
        if self.primary is None:
            _run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", PG_USER, "--auth-local=trust", "-E", "UTF8",
                  "--no-sync"])  # fmt: skip
            (self.data / "pg_hba.conf").write_text(HBA)
        else:
            _run([str(PG_BIN / "pg_basebackup"), "-h", LOOPBACK, "-p", str(self.primary.port), "-U", PG_USER,
                  "-D", str(self.data), "-R", "-X", "stream", "-c", "fast", "--no-sync"])  # fmt: skip

    def start(self) -> None:
        self._init()
        args = [
            str(PG_BIN / "postgres"), "-D", str(self.data),
            "-c", f"port={self.port}",
            "-c", f"listen_addresses={LOOPBACK}",
            "-c", f"unix_socket_directories={self.base}",
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
            "-c", "synchronous_commit=off",
            "-c", "shared_preload_libraries=pg_stat_statements",
            "-c", "max_connections=60",
            "-c", "log_min_messages=warning",
            "-c", "wal_receiver_status_interval=1s",
        ]  # fmt: skip
        self.process = Process(_as_postgres(args), self.base / f"{self.name}.log")
        self.process.start()
        try:
            wait_until(self._ready, START_TIMEOUT, interval=0.05, message=f"{self!r} accepts queries",
                       ignore=(psycopg.Error, AssertionError))  # fmt: skip
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        assert self.process is not None
        self.process.check_running()
        with self.connect(connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    def stop(self) -> None:
        """Fast shutdown (SIGINT): unlike SIGTERM it does not wait for clients to leave."""
        if self.process is None:
            return
        self.thaw()
        self.process.signal(signal.SIGINT)
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: not self.process or not self.process.running, 10, interval=0.05)
        self.process.stop()

    # -- access ----------------------------------------------------------------

    def dsn(self, user: str = PG_USER, dbname: str = "postgres", password: str | None = None) -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@{LOOPBACK}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        """A superuser psycopg connection (autocommit), for setting up and checking state."""
        return psycopg.connect(host=LOOPBACK, port=self.port, user=PG_USER, dbname=dbname, autocommit=True, **kwargs)

    def query(self, sql: str, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        with self.connect(dbname) as conn:
            return conn.execute(sql).fetchall()  # type: ignore[arg-type]

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        with self.connect(dbname) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def _pids(self) -> list[int]:
        """The postmaster and its children: backends call setsid(), so a process group signal misses them."""
        assert self.process is not None and self.process.pid is not None
        root = self.process.pid
        pids = [root]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat[stat.rindex(")") + 2 :].split()[1]) == root:
                    pids.append(int(entry.name))
        return pids

    def freeze(self) -> None:
        """SIGSTOP the server and every backend: connections stay open, nothing answers."""
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def scalar(self, sql: str, dbname: str = "postgres") -> Any:
        return self.query(sql, dbname)[0][0]

    def setup_roles(self) -> None:
        with self.connect() as conn:
            conn.execute(f"CREATE ROLE monitor LOGIN PASSWORD '{MONITOR_PASSWORD}'")
            conn.execute("GRANT pg_monitor TO monitor")
            conn.execute(f"CREATE ROLE app LOGIN PASSWORD '{APP_PASSWORD}'")
            conn.execute("CREATE DATABASE appdb OWNER app")
            conn.execute("CREATE EXTENSION pg_stat_statements")
        with self.connect("appdb") as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            conn.execute("CREATE TABLE events (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, body text)")
            conn.execute(
                "INSERT INTO events (created_at, body) "
                "SELECT now() - (i || ' hours')::interval, md5(i::text) FROM generate_series(1, 500) i"
            )
            conn.execute("CREATE TABLE small (id int)")
            conn.execute("ALTER TABLE events OWNER TO app")
            conn.execute("ANALYZE")


@dataclass(frozen=True)
class PgReplication:
    primary: PostgresServer
    replica: PostgresServer


def wait_replica_caught_up(pair: PgReplication, timeout: float = 20.0) -> None:
    """The replica has received and replayed everything the primary has written."""
    target = pair.primary.scalar("SELECT pg_current_wal_lsn()::text")

    def caught_up() -> bool:
        return bool(
            pair.replica.scalar(
                f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn AND pg_last_wal_receive_lsn() >= '{target}'"
            )
        )

    wait_until(caught_up, timeout, interval=0.05, message="replica caught up", ignore=(psycopg.Error,))


class PgBouncer:
    """PgBouncer in transaction mode in front of the primary's ``appdb``."""

    def __init__(self, base: Path, server: PostgresServer, pool_size: int = 2) -> None:
        self.base = base
        self.server = server
        self.port = free_port()
        self.pool_size = pool_size
        self.ini = base / "pgbouncer.ini"
        self.process: Process | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        users = self.base / "userlist.txt"
        users.write_text(f'"app" "{APP_PASSWORD}"\n"stats" "{STATS_PASSWORD}"\n"pgb_admin" "{STATS_PASSWORD}"\n')
        self.ini.write_text(
            f"""\
[databases]
appdb = host={LOOPBACK} port={self.server.port} dbname=appdb

[pgbouncer]
listen_addr = {LOOPBACK}
listen_port = {self.port}
unix_socket_dir =
auth_type = md5
auth_file = {users}
admin_users = pgb_admin
stats_users = stats
pool_mode = transaction
default_pool_size = {self.pool_size}
max_client_conn = 50
logfile = {self.base / "pgbouncer.log"}
pidfile = {self.base / "pgbouncer.pid"}
server_login_retry = 1
"""
        )
        for path in (users, self.ini):
            shutil.chown(path, PG_USER, PG_USER)
            path.chmod(0o600)
        self.process = Process([PGBOUNCER, "-u", PG_USER, str(self.ini)], self.base / "pgbouncer.out")
        self.process.start()
        wait_until(self._ready, START_TIMEOUT, message="pgbouncer accepts connections", ignore=(psycopg.Error,))

    def _ready(self) -> bool:
        assert self.process is not None
        self.process.check_running()
        with self.admin() as conn:
            conn.execute("SHOW VERSION")
        return True

    def stop(self) -> None:
        if self.process is not None:
            # SIGINT: "safe shutdown" waits for clients; SIGTERM is immediate.
            self.process.stop()

    @property
    def dsn(self) -> str:
        return f"postgresql://stats:{STATS_PASSWORD}@{LOOPBACK}:{self.port}/pgbouncer"

    def app_dsn(self) -> str:
        return f"postgresql://app:{APP_PASSWORD}@{LOOPBACK}:{self.port}/appdb"

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=True, prepare_threshold=None, connect_timeout=2)

    def show(self, what: str) -> list[dict[str, Any]]:
        with self.admin() as conn:
            cur = conn.execute(f"SHOW {what}")
            names = [d.name for d in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@contextlib.contextmanager
def _base(prefix: str) -> Iterator[Path]:
    base = private_dir(prefix)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- pytest fixtures ---------------------------------------------------------


@pytest.fixture(scope="session")
def pg_replication() -> Iterator[PgReplication]:
    """A shared primary (roles monitor/app, database appdb) and its streaming replica.

    Tests must leave both running and replay resumed; tests that stop servers use
    ``pg_fresh``.
    """
    with (
        _base("stack-pg-") as base,
        PostgresServer(base) as primary,
    ):
        primary.setup_roles()
        with PostgresServer(base, primary=primary, name="replica") as replica:
            pair = PgReplication(primary, replica)
            wait_replica_caught_up(pair)
            yield pair


@pytest.fixture(scope="session")
def pg_primary(pg_replication: PgReplication) -> PostgresServer:
    return pg_replication.primary


@pytest.fixture
def pg_fresh() -> Iterator[PostgresServer]:
    """A primary of this test's own, free to stop and restart."""
    with _base("stack-pgf-") as base, PostgresServer(base) as server:
        server.setup_roles()
        yield server


@pytest.fixture(scope="session")
def pgbouncer(pg_primary: PostgresServer) -> Iterator[PgBouncer]:
    with _base("stack-pgb-") as base, PgBouncer(base, pg_primary) as bouncer:
        yield bouncer


def env_without_pg() -> dict[str, str]:
    """The environment minus libpq variables that would change where clients connect."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}
