"""The PostgreSQL collector: runs a scrape's queries concurrently and assembles the families.

Round trips per scrape: one query on one pooled connection returns everything
from the catalog views as one JSON document (the database sizes join it at most
once a minute); pg_stat_statements, custom queries and table health of extra
databases run concurrently on other pooled connections.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.collectors.base import CollectError, Collector, Context
from exporter.collectors.postgres.config import PostgresTarget
from exporter.collectors.postgres.families import (
    SIZE_REFRESH_SECONDS,
    core_families,
    free_connection_slots,
    table_families,
)
from exporter.collectors.postgres.pools import Connection, NoFreeSlots, Pools, ResponseTooLarge
from exporter.collectors.postgres.queries import CustomQuery, RowError, custom_families, load_queries
from exporter.collectors.postgres.sql import core_sql, marked, tables_sql
from exporter.collectors.postgres.statements import TopStatements
from exporter.redact import url_without_userinfo


@dataclass
class _CustomResult:
    families: list[Metric]
    at: float


class PostgresCollector(Collector[PostgresTarget]):
    config_class = PostgresTarget
    up_metric = "pg_up"
    up_help = "1 if PostgreSQL answered the exporter's query, 0 if it could not be reached in time."

    def __init__(self, config: PostgresTarget, ctx: Context) -> None:
        super().__init__(config, ctx)
        self._pools = Pools(config)
        self._sizes: dict[str, float] = {}
        self._sizes_at = -1e18
        self._top = TopStatements(config.statements_limit, config.statement_text_max_length, ctx.redact)
        # pg_stat_statements' version from the last scrape: lets the statements query
        # start alongside the core one instead of after it
        self._statements_ext: str | None = None
        self._errors: dict[str, int] = {}
        # table health of other databases, from each one's last visit; visits go in
        # turn (name order), databases_per_scrape per scrape, starting after _turn
        self._tables: dict[str, list[Any]] = {}
        self._turn = ""
        self._skipped: dict[str, int] = {"no_free_slots": 0}
        self._custom_cache: dict[str, _CustomResult] = {}
        queries = config.custom_queries
        if queries is None and config.custom_queries_file:
            queries, problems = load_queries(Path(config.custom_queries_file))
            for problem in problems:
                self.log.warning("custom queries file problem", extra={"kv": {"target": config.name, "err": problem}})
        self._queries: tuple[CustomQuery, ...] = queries or ()
        for q in self._queries:
            self._errors.setdefault(q.name, 0)

    def describe(self) -> str:
        return url_without_userinfo(self.config.dsn)

    async def close(self) -> None:
        await self._pools.close()

    async def collect(self) -> list[Metric]:
        sizes_due = time.monotonic() - self._sizes_at >= SIZE_REFRESH_SECONDS
        seen = self._statements_ext if self.config.statements_limit > 0 else None
        # on a second pooled connection, so the server runs both queries at once
        early = asyncio.create_task(self._statements(seen)) if seen else None
        try:
            core = await self._fetch_core(sizes_due)
        except asyncpg.PostgresError as exc:
            await _cancel(early)
            raise CollectError(f"query failed: {_describe_error(exc)}") from None
        except ResponseTooLarge as exc:
            await _cancel(early)
            raise CollectError(f"{self.describe()}: {exc}") from None
        except (OSError, asyncpg.exceptions.InterfaceError, asyncpg.exceptions.ClientConfigurationError) as exc:
            await _cancel(early)
            raise CollectError(f"cannot connect to {self.describe()}: {_describe_error(exc)}") from None
        except BaseException:
            await _cancel(early)
            raise
        if sizes_due:
            self._sizes = {
                d["datname"]: float(d["size_bytes"])
                for d in core.get("databases") or ()
                if d.get("size_bytes") is not None
            }
            self._sizes_at = time.monotonic()
        self._pools.set_free_slots(free_connection_slots(core))

        extra: list[Any] = []
        ext = str(core["statements_ext"]) if core.get("statements_ext") else None
        if ext is None or self.config.statements_limit <= 0:
            await _cancel(early)
        elif early is not None and ext == seen:
            extra.append(early)
        else:
            await _cancel(early)
            extra.append(self._statements(ext))
        self._statements_ext = ext
        if self._queries:
            extra.append(self._custom(core["version_num"]))
        databases = self._extra_databases(core)
        turn = self._turn
        due = self._due(databases)
        extra.extend(self._tables_of(datname, core["version_num"]) for datname in due)
        results = await asyncio.gather(*extra) if extra else []

        families: list[Metric] = [GaugeMetricFamily("pg_up", self.up_help, value=1)]
        families.extend(core_families(core, self._sizes))
        table_rows: list[tuple[str, list[Any]]] = [(core["dbname"], core.get("tables") or [])]
        skipped: list[str] = []
        for res in results:
            if isinstance(res, tuple):  # (datname, rows) from _tables_of, or (datname, None) if skipped
                datname, rows = res
                if rows is None:
                    skipped.append(datname)
                else:
                    self._tables[datname] = rows
            else:
                families.extend(res)
        if skipped:
            # a skipped database keeps its turn: the next scrape starts with it
            first = min(due.index(d) for d in skipped)
            self._turn = due[first - 1] if first > 0 else turn
        # a database dropped or excluded since is forgotten
        self._tables = {d: self._tables[d] for d in databases if d in self._tables}
        table_rows.extend(sorted(self._tables.items()))
        if self.config.tables_limit > 0:
            families.extend(table_families(table_rows))
        families.extend(self._guard_families(late_turn=len(databases) - len(due), skipped=len(skipped)))
        families.append(self._error_family())
        return families

    async def _fetch_core(self, with_sizes: bool) -> dict[str, Any]:
        async def query(conn: Connection) -> dict[str, Any]:
            version = conn.get_server_version()
            version_num = version.major * 10000 + (version.minor if version.major >= 10 else 0)
            text = await conn.fetchval(core_sql(version_num, self.config.tables_limit, with_sizes))
            data: dict[str, Any] = json.loads(text)
            return data

        return await self._pools.run(query, essential=True)

    def _count_error(self, query: str, exc: BaseException | str) -> None:
        self._errors[query] = self._errors.get(query, 0) + 1
        err = exc if isinstance(exc, str) else _describe_error(exc)
        self.log.warning(
            "query failed; its metrics are dropped",
            extra={"kv": {"target": self.config.name, "query": query, "err": err}},
        )

    def _error_family(self) -> Metric:
        fam = CounterMetricFamily(
            "stack_exporter_query_errors",
            "Queries that failed (SQL error, timeout, NULL, wrong type, duplicate series); their metrics were dropped.",
            labels=["collector", "query"],
        )
        for query, count in sorted(self._errors.items()):
            fam.add_metric(["postgres", query], float(count))
        return fam

    def _guard_families(self, late_turn: int, skipped: int) -> list[Metric]:
        late = GaugeMetricFamily(
            "stack_exporter_postgres_databases_late",
            "Databases whose table health in this scrape is from an earlier visit (or absent): "
            "turn = more databases than databases_per_scrape, no_free_slots = the server had too few free slots.",
            labels=["reason"],
        )
        late.add_metric(["turn"], float(late_turn))
        late.add_metric(["no_free_slots"], float(skipped))
        skips = CounterMetricFamily(
            "stack_exporter_postgres_databases_skipped",
            "Visits to a database skipped because the server had min_free_connections or fewer free slots.",
            labels=["reason"],
        )
        for reason, count in sorted(self._skipped.items()):
            skips.add_metric([reason], float(count))
        return [
            late,
            skips,
            GaugeMetricFamily(
                "stack_exporter_postgres_connections",
                "Sessions the exporter holds on this target's server.",
                value=float(self._pools.open_connections),
            ),
            GaugeMetricFamily(
                "stack_exporter_postgres_connections_max",
                "The most sessions the exporter may hold on this target's server (max_connections).",
                value=float(self._pools.cap),
            ),
        ]

    def _due(self, databases: list[str]) -> list[str]:
        """The databases to visit this scrape: the next databases_per_scrape in name order."""
        ordered = sorted(databases)
        start = next((i for i, d in enumerate(ordered) if d > self._turn), 0)
        due = (ordered[start:] + ordered[:start])[: self.config.databases_per_scrape]
        if due:
            self._turn = due[-1]
        return due

    def _extra_databases(self, core: Mapping[str, Any]) -> list[str]:
        if self.config.tables_limit <= 0:
            return []
        main = core.get("dbname", "")
        if self.config.auto_discover:
            names = [
                d["datname"]
                for d in core.get("databases") or ()
                if d.get("datallowconn") and not d.get("datistemplate")
            ]
            names = [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in self.config.exclude_databases)]
        else:
            names = list(self.config.databases)
        return [n for n in dict.fromkeys(names) if n != main]

    # ------------------------------------------------------------------ optional parts

    async def _statements(self, ext_version: str) -> list[Metric]:
        try:
            async with self._pools.connection() as conn:
                rows = await self._top.fetch(conn, ext_version)
        except Exception as exc:  # noqa: BLE001 - the rest of the scrape goes on
            self._count_error("pg_stat_statements", exc)
            return []
        return self._top.families(rows)

    async def _tables_of(self, datname: str, version_num: int) -> tuple[str, list[Any] | None] | list[Metric]:
        query = f"tables:{datname}"
        self._errors.setdefault(query, 0)

        async def fetch(conn: Connection) -> str | None:
            text: str | None = await conn.fetchval(tables_sql(version_num, self.config.tables_limit))
            return text

        try:
            text = await self._pools.run(fetch, datname)
        except NoFreeSlots as exc:
            self._skipped["no_free_slots"] += 1
            self.log.info(
                "database skipped", extra={"kv": {"target": self.config.name, "datname": datname, "err": str(exc)}}
            )
            return (datname, None)
        except Exception as exc:  # noqa: BLE001 - one database failing must not fail the scrape
            self._count_error(query, exc)
            self._tables.pop(datname, None)
            return []
        return (datname, json.loads(text) if text else [])

    async def _custom(self, version_num: int) -> list[Metric]:
        now = time.monotonic()
        due = [
            q
            for q in self._queries
            if q.runs_on(version_num)
            and (q.name not in self._custom_cache or now - self._custom_cache[q.name].at >= q.cache_seconds)
        ]
        if due:
            try:
                async with self._pools.connection(custom=True) as conn:
                    for i, q in enumerate(due):
                        if conn.is_closed():  # cut by the size guard or the server: the rest cannot run
                            cause = self._pools.guard_error(conn) or "the connection was closed"
                            for rest in due[i:]:
                                self._count_error(rest.name, f"not run: {cause}")
                                self._custom_cache.pop(rest.name, None)
                            break
                        await self._run_custom(conn, q)
            except Exception as exc:  # noqa: BLE001 - no connection: each due query failed
                for q in due:
                    self._count_error(q.name, exc)
                    self._custom_cache.pop(q.name, None)
        out: list[Metric] = []
        for q in self._queries:
            cached = self._custom_cache.get(q.name)
            if cached is not None and q.runs_on(version_num):
                out.extend(cached.families)
        return out

    async def _run_custom(self, conn: Connection, q: CustomQuery) -> None:
        """Run one custom query and cache its families; a failure is counted and drops them."""
        try:
            # a transaction per query: a failed one must not poison the next
            records = await conn.fetch(marked(q.sql))
            fams = custom_families(q, records)
        except asyncpg.PostgresError as exc:
            self._count_error(q.name, self._pools.guard_error(conn) or exc)
        except RowError as exc:
            self._count_error(q.name, str(exc))
        else:
            self._custom_cache[q.name] = _CustomResult(fams, time.monotonic())
            return
        self._custom_cache.pop(q.name, None)


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _describe_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text
