"""PostgreSQL scenario: stack-exporter against Debian's prometheus-postgres-exporter (0.11).

Backend: a private PostgreSQL 15 cluster on a free loopback port (initdb as the postgres user,
fsync off), ``pg_stat_statements`` preloaded and created, filled with ``pgbench -i -s 10``
(1M accounts) plus 20 extra tables of 10,000 rows each, then a short pgbench run so the
statistics views have content.

Both exporters connect as the same superuser over TCP. postgres_exporter runs its default
collectors (``DATA_SOURCE_NAME``); ours runs its default config for the target, which also
reads pg_stat_statements (top 50) and table health (top 20 tables) that postgres_exporter
does not collect by default: we do more work per scrape, not less.

Options (``--set key=value``): ``scale=N`` (pgbench scale, default 10).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import psycopg

from bench.harness import BenchEnv, BenchError, ExporterSpec, Plan, Scenario, log, stack_exporter_spec
from bench.scale import PG_BIN, start_postgres

REFERENCE = "/usr/bin/prometheus-postgres-exporter"
EXTRA_TABLES = 20

CONFIG = """\
postgres:
  - name: bench
    dsn: postgresql://postgres@127.0.0.1:{port}/bench
"""


def plan(env: BenchEnv) -> Plan:
    """The PostgreSQL scenario: a pgbench database, stack-exporter and postgres_exporter on it.

    Long because the scenario's closures (start the backend, load it, start each
    exporter) share the ports and paths chosen at the top; each closure is short.
    """
    pg_port = env.free_port()
    ours_port = env.free_port()
    theirs_port = env.free_port()
    scale = int(env.options.get("scale", "10"))
    config = env.workdir / "stack-exporter.yml"
    config.write_text(CONFIG.format(port=pg_port))
    dsn = f"postgresql://postgres@127.0.0.1:{pg_port}/bench?sslmode=disable"

    def start_backend() -> Mapping[str, Any]:
        """Start a private PostgreSQL, then pgbench -i and the extra tables."""
        env.require(str(PG_BIN / "pgbench"), "apt-get install postgresql-15")
        start_postgres(env, pg_port)
        with psycopg.connect(host="127.0.0.1", port=pg_port, user="postgres", dbname="postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE bench")
        t0 = time.monotonic()
        pgb = [str(PG_BIN / "pgbench"), "-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres"]
        load = env.spawn("pgbench-init", [*pgb, "-i", "-q", "-s", str(scale), "bench"])
        if load.wait(600) != 0:
            raise BenchError(f"pgbench -i failed:\n{load.log_tail()}")
        with psycopg.connect(host="127.0.0.1", port=pg_port, user="postgres", dbname="bench", autocommit=True) as c:
            c.execute("CREATE EXTENSION pg_stat_statements")
            for i in range(EXTRA_TABLES):
                select = "SELECT g AS id, md5(g::text) AS v, now() AS created_at FROM generate_series(1, 10000) g"
                c.execute(f"CREATE TABLE extra_{i} AS {select}")
                c.execute(f"CREATE INDEX ON extra_{i} (created_at)")
            c.execute("ANALYZE")
        run = env.spawn("pgbench-run", [*pgb, "-c", "4", "-T", "5", "-n", "bench"])
        if run.wait(60) != 0:
            raise BenchError(f"pgbench run failed:\n{run.log_tail()}")
        load_s = time.monotonic() - t0
        with psycopg.connect(host="127.0.0.1", port=pg_port, user="postgres", dbname="bench") as c:
            size = c.execute("SELECT pg_database_size('bench')").fetchone()
            version = c.execute("SHOW server_version").fetchone()
            statements = c.execute("SELECT count(*) FROM pg_stat_statements").fetchone()
        log(f"postgres: pgbench scale {scale} + {EXTRA_TABLES} tables loaded in {load_s:.1f}s")
        return {
            "postgres_version": version[0] if version else "?",
            "pgbench_scale": scale,
            "extra_tables": EXTRA_TABLES,
            "database_mib": round((size[0] if size else 0) / 2**20, 1),
            "pg_stat_statements_entries": statements[0] if statements else 0,
            "load_seconds": round(load_s, 1),
        }

    return Plan(
        ours=stack_exporter_spec(config, ours_port),
        theirs=ExporterSpec(
            name="postgres_exporter",
            argv=[REFERENCE, "--web.listen-address", f"127.0.0.1:{theirs_port}", "--log.level", "warn"],
            port=theirs_port,
            ready_path="/",  # 0.11 has no readiness endpoint; its landing page answers once listening
            install_hint="apt-get install prometheus-postgres-exporter",
            version_argv=[REFERENCE, "--version"],
            env={"DATA_SOURCE_NAME": dsn},
        ),
        start_backend=start_backend,
    )


SCENARIO = Scenario(
    name="postgres",
    title="PostgreSQL: stack-exporter vs prometheus-postgres-exporter on one PostgreSQL 15",
    plan=plan,
)
