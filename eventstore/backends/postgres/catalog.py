"""The execution catalog's tables and statements on PostgreSQL.

The same two tables as SQLite's (`eventstore.backends.sqlite.catalog`), in the
store's schema beside the history table: `eventstore_executions` (one row per
execution, instance ids sorted bytewise like the history's) and
`eventstore_catalog_state` (the feed position caught up to). Created with the
history table when eventstore creates it, or by `eventstore catalog rebuild`;
never in a schema whose history table duroxide created (no
`eventstore_position` column): there the store derives records from the
history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from psycopg import sql

from ...store.protocol import CatalogDelta, CatalogQuery, CatalogRow, ExecutionSummary

__all__ = ["CATALOG_TABLES", "CatalogQueries", "CatalogReads", "CatalogWrites", "summary_of"]

CATALOG_TABLES: Final = ("eventstore_executions", "eventstore_catalog_state")

_DDL: Final = (
    "CREATE TABLE IF NOT EXISTS {executions} ("
    ' instance_id TEXT COLLATE "C" NOT NULL, execution_id BIGINT NOT NULL,'
    " name TEXT, version TEXT, status TEXT NOT NULL, started_ms BIGINT, ended_ms BIGINT,"
    " last_event_id BIGINT NOT NULL, event_count BIGINT NOT NULL, bytes BIGINT NOT NULL,"
    " shard TEXT NOT NULL, PRIMARY KEY (instance_id, execution_id))",
    "CREATE INDEX IF NOT EXISTS eventstore_executions_started ON {executions} (started_ms)",
    "CREATE INDEX IF NOT EXISTS eventstore_executions_shard ON {executions} (shard)",
    "CREATE TABLE IF NOT EXISTS {state} (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
)
_COLUMNS: Final = (
    "instance_id, execution_id, name, version, status, started_ms, ended_ms,"
    " last_event_id, event_count, bytes, shard"
)
_SUMMARY_OF: Final = (
    "SELECT g.instance_id, g.execution_id, g.mx, g.n, g.b,"
    " f.event_id, f.event_type, f.event_data, l.event_id, l.event_type, l.event_data"
    " FROM (SELECT instance_id, execution_id, MIN(event_id) AS mn, MAX(event_id) AS mx,"
    " COUNT(*) AS n, SUM(octet_length(event_data)) AS b FROM {history} WHERE {where}"
    " GROUP BY instance_id, execution_id ORDER BY instance_id, execution_id {limit}) AS g"
    " JOIN {history} f ON f.instance_id = g.instance_id AND f.execution_id = g.execution_id"
    " AND f.event_id = g.mn"
    " JOIN {history} l ON l.instance_id = g.instance_id AND l.execution_id = g.execution_id"
    " AND l.event_id = g.mx"
    " ORDER BY g.instance_id, g.execution_id"
)


_LAST_IDS: Final = (
    "SELECT instance_id, execution_id, last_event_id FROM {executions}"
    " WHERE (instance_id, execution_id) IN (SELECT * FROM unnest(%s::text[], %s::bigint[]))"
)


class CatalogQueries:
    """The catalog's statements for one schema (identifiers quoted)."""

    def __init__(self, schema: str, table: str) -> None:
        names = {
            "executions": sql.Identifier(schema, "eventstore_executions"),
            "state": sql.Identifier(schema, "eventstore_catalog_state"),
            "history": sql.Identifier(schema, table),
        }

        def text(template: str) -> bytes:
            return sql.SQL(template).format(**names).as_bytes(None)

        self.table = f'"{schema}".eventstore_executions'
        self.ddl = [text(ddl) for ddl in _DDL]
        self.put = text(
            "INSERT INTO {executions} (" + _COLUMNS + ") VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (instance_id, execution_id) DO UPDATE SET name = EXCLUDED.name,"
            " version = EXCLUDED.version, status = EXCLUDED.status,"
            " started_ms = EXCLUDED.started_ms, ended_ms = EXCLUDED.ended_ms,"
            " last_event_id = EXCLUDED.last_event_id, event_count = EXCLUDED.event_count,"
            " bytes = EXCLUDED.bytes, shard = EXCLUDED.shard"
        )
        # Forward only from where the row says the execution ends (see
        # store/catalog.py `advance`): a stale row matches nothing.
        self.advance = text(
            "UPDATE {executions} SET status = %s, ended_ms = %s, last_event_id = %s,"
            " event_count = event_count + %s, bytes = bytes + %s"
            " WHERE instance_id = %s AND execution_id = %s AND last_event_id = %s"
        )
        self.remove = text("DELETE FROM {executions} WHERE instance_id = %s AND execution_id = %s")
        self.clear = (text("DELETE FROM {executions}"), text("DELETE FROM {state}"))
        self.set_position = text(
            "INSERT INTO {state} (name, value) VALUES ('feed_position', %s)"
            " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value"
        )
        self.position = text("SELECT value FROM {state} WHERE name = 'feed_position'")
        self.select = text("SELECT " + _COLUMNS + " FROM {executions} e")
        self.row = text(
            "SELECT " + _COLUMNS + " FROM {executions} WHERE instance_id = %s AND execution_id = %s"
        )
        self.last_ids = text(_LAST_IDS)
        self.page = text(
            "SELECT " + _COLUMNS + " FROM {executions} WHERE (instance_id, execution_id) > (%s, %s)"
            " ORDER BY instance_id, execution_id LIMIT %s"
        )
        self.latest = text(
            "e.execution_id = (SELECT MAX(m.execution_id) FROM {executions} m"
            " WHERE m.instance_id = e.instance_id)"
        )
        self.summary = text(
            _SUMMARY_OF.replace("{where}", "instance_id = %s AND execution_id = %s").replace(
                "{limit}", ""
            )
        )
        self.summaries = text(
            _SUMMARY_OF.replace("{where}", "(instance_id, execution_id) > (%s, %s)").replace(
                "{limit}", "LIMIT %s"
            )
        )

    def query(self, query: CatalogQuery) -> tuple[bytes, list[object]]:
        """The SELECT of `catalog_rows` for these filters, and its parameters."""
        where: list[bytes] = []
        args: list[object] = []
        if query.latest_only:
            where.append(self.latest)
        if query.status is not None:
            where.append(b"status = ANY(%s)")
            args.append(list(query.status))
        for clause, value in (
            (b"name = %s", query.name),
            (b"shard = %s", query.shard),
            (b"started_ms >= %s", query.since_ms),
            (b"started_ms < %s", query.until_ms),
            (b"instance_id LIKE %s", query.instance_like),  # backslash escapes, as documented
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        statement = self.select
        if where:
            statement += b" WHERE " + b" AND ".join(where)
        statement += (
            b" ORDER BY started_ms DESC NULLS LAST, instance_id, execution_id LIMIT %s OFFSET %s"
        )
        args += (query.limit, query.offset)
        return statement, args


def summary_of(row: Sequence[Any]) -> ExecutionSummary:
    return ExecutionSummary(
        str(row[0]),
        int(row[1]),
        int(row[2]),
        int(row[3]),
        int(row[4] or 0),
        (int(row[5]), str(row[6]), row[7]),
        (int(row[8]), str(row[9]), row[10]),
    )


class CatalogWrites:
    """PostgresWriter's catalog operations (store.protocol.CatalogWriter)."""

    __slots__ = ()
    _q: Any  # the backend's Queries; `.catalog` is a CatalogQueries

    _execute: Callable[..., Any]
    _executemany: Callable[..., None]

    def ensure_catalog(self) -> None:
        for ddl in self._q.catalog.ddl:
            self._execute(ddl)

    def catalog_advance(self, delta: CatalogDelta) -> bool:
        # Part of an append: under the execution's lock the append holds
        # (append=True; locks.py), not the table's exclusive key.
        row, previous = delta
        if previous == 0:
            self._execute(self._q.catalog.put, row, append=True)
            return True
        instance_id, execution_id, _, _, status, _, ended, last, count, size, _ = row
        cursor = self._execute(
            self._q.catalog.advance,
            (status, ended, last, count, size, instance_id, execution_id, previous),
            append=True,
        )
        return bool(cursor.rowcount == 1)

    # put and remove run where they are called: in an append's fallback
    # (store/catalog.py `refresh`, the append's own execution) under the
    # execution's key the append holds; asking for the table's key there
    # would be an upgrade from shared, and two appends doing it at once
    # would deadlock. Every other caller (import, migrations, catch-up,
    # rebuild) opened its unit with the table's key exclusively.
    def catalog_put(self, rows: Sequence[CatalogRow]) -> None:
        if rows:
            self._executemany(self._q.catalog.put, rows, append=True)

    def catalog_remove(self, keys: Sequence[tuple[str, int]]) -> None:
        if keys:
            self._executemany(self._q.catalog.remove, keys, append=True)

    def catalog_clear(self) -> None:
        for statement in self._q.catalog.clear:
            self._execute(statement)

    def set_catalog_position(self, position: int) -> None:
        self._execute(self._q.catalog.set_position, (position,))

    def execution_summary(self, instance_id: str, execution_id: int) -> ExecutionSummary | None:
        rows = self._execute(
            self._q.catalog.summary, (instance_id, execution_id), append=True
        ).fetchall()
        return summary_of(rows[0]) if rows else None


class CatalogReads:
    """PostgresBackend's catalog reads (store.protocol.ExecutionCatalog)."""

    can_keep_catalog: bool
    _q: Any  # the backend's Queries; `.catalog` is a CatalogQueries

    _all: Callable[..., list[Any]]

    def catalog_kept(self) -> bool:
        if not self.can_keep_catalog:
            return False
        return bool(
            self._all(b"SELECT to_regclass(%s) IS NOT NULL", (self._q.catalog.table,))[0][0]
        )

    def catalog_rows(self, query: CatalogQuery) -> list[CatalogRow]:
        statement, args = self._q.catalog.query(query)
        return [tuple(r) for r in self._all(statement, args)]

    def catalog_row(self, instance_id: str, execution_id: int) -> CatalogRow | None:
        rows = self._all(self._q.catalog.row, (instance_id, execution_id))
        return tuple(rows[0]) if rows else None

    def catalog_last_ids(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        if not keys:
            return {}
        args = ([k[0] for k in keys], [k[1] for k in keys])
        return {
            (str(r[0]), int(r[1])): int(r[2]) for r in self._all(self._q.catalog.last_ids, args)
        }

    def catalog_page(self, after: tuple[str, int], limit: int) -> list[CatalogRow]:
        return [tuple(r) for r in self._all(self._q.catalog.page, (*after, limit))]

    def catalog_position(self) -> int:
        rows = self._all(self._q.catalog.position)
        return int(rows[0][0]) if rows else 0

    def feed_end(self) -> int:
        return int(self._all(self._q.feed_end)[0][0])

    def execution_summaries(self, after: tuple[str, int], limit: int) -> list[ExecutionSummary]:
        return [summary_of(r) for r in self._all(self._q.catalog.summaries, (*after, limit))]
