"""pg_stat_statements: the top N statements by total time, without the exporter's own.

The exporter's own statements are its noise, not the application's, and stay out
of the top N. ``pg_stat_statements(false)`` has no text to filter on, so an entry is
recognised as the exporter's (it starts with SQL_MARKER) when its text is first
fetched, and own entries are excluded in SQL; a round that meets a new one runs
again, so the N rows are the application's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import asyncpg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.collectors.postgres.pools import Connection
from exporter.collectors.postgres.sql import SQL_MARKER, STATEMENT_TEXTS_SQL, statements_sql

_PASSWORD_LITERAL = re.compile(r"(?i)(password\s+)'(?:[^']|'')*'")
STATEMENT_TEXT_CACHE = 5000  # query texts kept (by entry key); bounded memory
# Rounds of "top N, then learn which new entries are the exporter's own": each round
# learns every own entry among the rows it saw, and the exporter sends only a handful
# of distinct statements, so a second round is rare and a fifth would mean a bug.
OWN_STATEMENT_ROUNDS = 4
_KEY = 8  # column of the entry key (userid/dbid/queryid) in statements_sql's rows


class TopStatements:
    """Reads the top N and keeps, across scrapes, the texts and the exporter's own entries."""

    def __init__(self, limit: int, text_max_length: int, redact: Callable[[str], str]) -> None:
        self._limit = limit
        self._text_max_length = text_max_length
        self._redact = redact
        # by entry key: statement texts, and the entries whose text starts with SQL_MARKER
        self._texts: dict[str, str] = {}
        self._own_entries: set[str] = set()

    async def fetch(self, conn: Connection, ext_version: str) -> list[asyncpg.Record]:
        """The top N rows of ``statements_sql``, the exporter's own left out."""
        sql = statements_sql(ext_version, self._limit)
        for _ in range(OWN_STATEMENT_ROUNDS):
            rows = await conn.fetch(sql, sorted(self._own_entries))
            if not await self._learn_texts(conn, rows):
                break
        return [r for r in rows if r[_KEY] not in self._own_entries]

    async def _learn_texts(self, conn: Connection, rows: Sequence[asyncpg.Record]) -> bool:
        """Fetch the texts of statements not seen yet; True if some of ``rows`` are the exporter's own."""
        missing = {r[_KEY]: r[0] for r in rows if r[_KEY] not in self._texts and r[_KEY] not in self._own_entries}
        if not missing:
            return False
        texts = await conn.fetch(
            STATEMENT_TEXTS_SQL,
            sorted(set(missing.values())),
            int(self._text_max_length),
            f"{SQL_MARKER}%",
        )
        if len(self._texts) > STATEMENT_TEXT_CACHE:
            self._texts.clear()
        if len(self._own_entries) > STATEMENT_TEXT_CACHE:
            self._own_entries.clear()
        found = False
        for key, text, own in texts:
            if own:
                self._own_entries.add(key)
                found = found or key in missing
            else:
                self._texts[key] = self._clean_text(text)
        return found

    def _clean_text(self, text: str | None) -> str:
        # Utility statements keep their literals: CREATE/ALTER ROLE ... PASSWORD
        # 'x' would otherwise be published in a label.
        flat = " ".join(str(text or "").split())
        return self._redact(_PASSWORD_LITERAL.sub(r"\1'<redacted>'", flat))

    def families(self, rows: Sequence[asyncpg.Record]) -> list[Metric]:
        labels = ["queryid", "datname", "user"]
        calls = CounterMetricFamily("pg_stat_statements_calls", "Times the statement was executed.", labels=labels)
        secs = CounterMetricFamily(
            "pg_stat_statements_seconds", "Total time spent executing the statement.", labels=labels
        )
        nrows = CounterMetricFamily("pg_stat_statements_rows", "Rows retrieved or affected.", labels=labels)
        hit = CounterMetricFamily(
            "pg_stat_statements_block_hits", "Shared buffer hits by the statement.", labels=labels
        )
        read = CounterMetricFamily(
            "pg_stat_statements_block_reads", "Shared blocks read from disk or OS cache.", labels=labels
        )
        info = GaugeMetricFamily(
            "pg_stat_statements_query_info",
            "Always 1; the normalised text of a statement in the top N by total time.",
            labels=[*labels, "query"],
        )
        for qid, datname, user, n, total, rws, blk_hit, blk_read, key in rows:
            lv = [qid, datname, user]
            calls.add_metric(lv, float(n))
            secs.add_metric(lv, float(total))
            nrows.add_metric(lv, float(rws))
            hit.add_metric(lv, float(blk_hit))
            read.add_metric(lv, float(blk_read))
            info.add_metric([*lv, self._texts.get(key, "")], 1.0)
        return [calls, secs, nrows, hit, read, info]
