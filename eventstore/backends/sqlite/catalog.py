"""The execution catalog's table and statements on SQLite.

`eventstore_executions` holds one row per execution (see eventstore/store/catalog.py
for what a row says); `eventstore_catalog_state` the feed position the
catalog was caught up to. Both are created with the history table when
eventstore creates it, or by `eventstore catalog rebuild`; never on a file
duroxide created (its history table has no `position` column), where the
store derives records from the history instead.

The DDL is written here rather than by sqlite-utils: the table is WITHOUT
ROWID (the key is the row, one B-tree instead of two: an append's update
touches one page fewer), which sqlite-utils does not write.

One secondary index, on `started_ms` (`ls --since/--until`; a listing by
shard narrows its time filter to the shard's day, store/shard_key.py
`shard_start_bounds`). Every index is a B-tree a new execution's append
writes into and a page its commit writes to the log: the index on `shard`
that stores made before it was dropped cost a new execution's append 11,900
instructions and one page (benchmarks/append_callgrind.py), and
`drop_retired_indexes` removes it from those stores when they are opened
for writing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Final

from ...store.protocol import (
    CatalogDelta,
    CatalogQuery,
    CatalogRow,
    ExecutionSummary,
    UndecodedText,
)
from .undecoded import fetch_tolerant

__all__ = ["CATALOG_DDL", "CATALOG_TABLES"]

CATALOG_TABLES: Final = ("eventstore_executions", "eventstore_catalog_state")

CATALOG_DDL: Final = (
    "CREATE TABLE IF NOT EXISTS eventstore_executions ("
    " instance_id TEXT NOT NULL, execution_id INTEGER NOT NULL,"
    " name TEXT, version TEXT, status TEXT NOT NULL,"
    " started_ms INTEGER, ended_ms INTEGER,"
    " last_event_id INTEGER NOT NULL, event_count INTEGER NOT NULL, bytes INTEGER NOT NULL,"
    " shard TEXT NOT NULL,"
    " PRIMARY KEY (instance_id, execution_id)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS eventstore_executions_started"
    " ON eventstore_executions (started_ms)",
    "CREATE TABLE IF NOT EXISTS eventstore_catalog_state ("
    " name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)

COLUMNS: Final = (
    "instance_id, execution_id, name, version, status, started_ms, ended_ms,"
    " last_event_id, event_count, bytes, shard"
)
_PUT: Final = f"INSERT OR REPLACE INTO eventstore_executions ({COLUMNS}) VALUES" + (
    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# An existing execution moves forward only from where its row says it ends:
# a row left behind by rows another program wrote matches nothing, and the
# store recomputes it from the history instead.
_ADVANCE: Final = (
    "UPDATE eventstore_executions SET status = ?, ended_ms = ?, last_event_id = ?,"
    " event_count = event_count + ?, bytes = bytes + ?"
    " WHERE instance_id = ? AND execution_id = ? AND last_event_id = ?"
)
# A running execution that stays running (most appends): the row already
# says `running` and no end, because its last event, the one at
# `last_event_id`, was no terminal event (the append would have been
# refused), so only the three columns that move are written.
_ADVANCE_RUNNING: Final = (
    "UPDATE eventstore_executions SET last_event_id = ?,"
    " event_count = event_count + ?, bytes = bytes + ?"
    " WHERE instance_id = ? AND execution_id = ? AND last_event_id = ?"
)
_POSITION: Final = "SELECT value FROM eventstore_catalog_state WHERE name = 'feed_position'"
_SET_POSITION: Final = (
    "INSERT OR REPLACE INTO eventstore_catalog_state (name, value) VALUES ('feed_position', ?)"
)
_ORDER: Final = " ORDER BY started_ms IS NULL, started_ms DESC, instance_id, execution_id"

# An execution as the history holds it: counts from one grouped pass over the
# key index, then its first and last rows by key.
_SUMMARY_OF: Final = (
    "SELECT g.instance_id, g.execution_id, g.mx, g.n, g.b,"
    " f.event_id, f.event_type, CAST(f.event_data AS BLOB),"
    " l.event_id, l.event_type, CAST(l.event_data AS BLOB)"
    " FROM (SELECT instance_id, execution_id, MIN(event_id) AS mn, MAX(event_id) AS mx,"
    " COUNT(*) AS n, SUM(length(CAST(event_data AS BLOB))) AS b FROM history"
    " WHERE {where} AND typeof(execution_id) = 'integer' AND typeof(instance_id) = 'text'"
    " GROUP BY instance_id, execution_id ORDER BY instance_id, execution_id{limit}) AS g"
    " JOIN history f ON f.instance_id = g.instance_id AND f.execution_id = g.execution_id"
    " AND f.event_id = g.mn"
    " JOIN history l ON l.instance_id = g.instance_id AND l.execution_id = g.execution_id"
    " AND l.event_id = g.mx"
    " ORDER BY g.instance_id, g.execution_id"
)
_SUMMARIES_AFTER: Final = _SUMMARY_OF.format(
    where="(instance_id, execution_id) > (CASE WHEN ? THEN CAST(? AS TEXT) ELSE ? END, ?)",
    limit=" LIMIT ?",
)
_SUMMARY: Final = _SUMMARY_OF.format(where="instance_id = ? AND execution_id = ?", limit="")


def like_to_glob(pattern: str) -> str:
    """A SQL LIKE pattern (`%`, `_`, backslash escapes) as a GLOB pattern:
    SQLite's LIKE ignores ASCII case, GLOB does not, as PostgreSQL's LIKE."""
    out: list[str] = []
    escaped = False
    for char in pattern:
        if escaped or char not in "%_\\":
            out.append(f"[{char}]" if char in "*?[" else char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append("*" if char == "%" else "?")
    if escaped:
        out.append("\\")
    return "".join(out)


def ensure(con: sqlite3.Connection) -> None:
    for ddl in CATALOG_DDL:
        con.execute(ddl)
    drop_retired_indexes(con)


# An index earlier versions made that no query needs any more (a listing by
# shard searches the index on started_ms through the shard's day).
_RETIRED_INDEX_FOUND: Final = (
    "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'eventstore_executions_shard'"
)
_DROP_RETIRED_INDEX: Final = "DROP INDEX IF EXISTS eventstore_executions_shard"


def drop_retired_indexes(con: sqlite3.Connection) -> None:
    """Drop the index on `shard` where a store still has it (opening for writing).

    A store another process is writing to may keep it for now: a busy or
    locked database leaves it to the next open rather than fail this one
    (it costs appends time, never correctness).
    """
    if con.execute(_RETIRED_INDEX_FOUND).fetchone() is None:
        return
    try:
        con.execute(_DROP_RETIRED_INDEX)
    except sqlite3.OperationalError:
        return


def exists(con: sqlite3.Connection) -> bool:
    row = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'eventstore_executions'"
    ).fetchone()
    return row is not None


def advance(cursor: sqlite3.Cursor, delta: CatalogDelta) -> bool:
    row, previous = delta
    if previous == 0:
        cursor.execute(_PUT, row)
        return True
    instance_id, execution_id, _, _, status, _, ended, last, count, size, _ = row
    if status == "running":
        cursor.execute(_ADVANCE_RUNNING, (last, count, size, instance_id, execution_id, previous))
    else:
        cursor.execute(
            _ADVANCE, (status, ended, last, count, size, instance_id, execution_id, previous)
        )
    return cursor.rowcount == 1


def put(con: sqlite3.Connection, rows: Sequence[CatalogRow]) -> None:
    con.executemany(_PUT, rows)


def remove(con: sqlite3.Connection, keys: Sequence[tuple[str, int]]) -> None:
    con.executemany(
        "DELETE FROM eventstore_executions WHERE instance_id = ? AND execution_id = ?", keys
    )


def clear(con: sqlite3.Connection) -> None:
    con.execute("DELETE FROM eventstore_executions")
    con.execute("DELETE FROM eventstore_catalog_state")


def set_position(con: sqlite3.Connection, position: int) -> None:
    con.execute(_SET_POSITION, (position,))


def position(con: sqlite3.Connection) -> int:
    row = con.execute(_POSITION).fetchone()
    return int(row[0]) if row is not None else 0


def _summary(row: Any) -> ExecutionSummary:
    return ExecutionSummary(
        row[0],
        int(row[1]),
        int(row[2]),
        int(row[3]),
        int(row[4] or 0),
        (row[5], row[6], row[7]),
        (row[8], row[9], row[10]),
    )


def summary(
    con: sqlite3.Connection, instance_id: str, execution_id: int
) -> ExecutionSummary | None:
    rows = fetch_tolerant(con, _SUMMARY, (instance_id, execution_id))
    return _summary(rows[0]) if rows else None


def summaries(
    con: sqlite3.Connection, after: tuple[str, int], limit: int
) -> list[ExecutionSummary]:
    instance_id, execution_id = after
    undecoded = isinstance(instance_id, UndecodedText)
    args = (undecoded, instance_id, instance_id, execution_id, limit)
    return [_summary(r) for r in fetch_tolerant(con, _SUMMARIES_AFTER, args)]


def query_sql(query: CatalogQuery) -> tuple[str, list[object]]:
    """The SELECT of `catalog_rows` for these filters, and its parameters."""
    where: list[str] = []
    args: list[object] = []
    if query.latest_only:
        where.append(
            "e.execution_id = (SELECT MAX(m.execution_id) FROM eventstore_executions m"
            " WHERE m.instance_id = e.instance_id)"
        )
    if query.status is not None:
        where.append(f"status IN ({', '.join('?' * len(query.status))})")
        args += query.status
    for clause, value in (
        ("name = ?", query.name),
        ("shard = ?", query.shard),
        ("started_ms >= ?", query.since_ms),
        ("started_ms < ?", query.until_ms),
    ):
        if value is not None:
            where.append(clause)
            args.append(value)
    if query.instance_like is not None:
        where.append("instance_id GLOB ?")
        args.append(like_to_glob(query.instance_like))
    sql = f"SELECT {COLUMNS} FROM eventstore_executions e"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += _ORDER + " LIMIT ? OFFSET ?"
    args += (-1 if query.limit is None else query.limit, query.offset)
    return sql, args


ROW: Final = (
    f"SELECT {COLUMNS} FROM eventstore_executions WHERE instance_id = ? AND execution_id = ?"
)
PAGE: Final = (
    f"SELECT {COLUMNS} FROM eventstore_executions WHERE (instance_id, execution_id) > (?, ?)"
    " ORDER BY instance_id, execution_id LIMIT ?"
)


class CatalogWrites:
    """SQLiteWriter's catalog operations (store.protocol.CatalogWriter)."""

    __slots__ = ()

    _con: sqlite3.Connection
    _cursor: sqlite3.Cursor

    def ensure_catalog(self) -> None:
        ensure(self._con)

    def catalog_advance(self, delta: CatalogDelta) -> bool:
        return advance(self._cursor, delta)

    def catalog_put(self, rows: Sequence[CatalogRow]) -> None:
        put(self._con, rows)

    def catalog_remove(self, keys: Sequence[tuple[str, int]]) -> None:
        remove(self._con, keys)

    def catalog_clear(self) -> None:
        clear(self._con)

    def set_catalog_position(self, position: int) -> None:
        set_position(self._con, position)

    def execution_summary(self, instance_id: str, execution_id: int) -> ExecutionSummary | None:
        return summary(self._con, instance_id, execution_id)


class CatalogReads:
    """SQLiteBackend's catalog reads (store.protocol.ExecutionCatalog).

    Reads go through the backend's `_all` (its read connection and lock), so
    a group-commit store reads them beside the writer, never waiting for it.
    """

    can_keep_catalog: bool
    _reader: sqlite3.Connection
    _read_lock: Any

    _all: Callable[..., list[Any]]

    def catalog_kept(self) -> bool:
        if not self.can_keep_catalog:
            return False
        with self._read_lock:
            return exists(self._reader)

    def catalog_rows(self, query: CatalogQuery) -> list[CatalogRow]:
        sql, args = query_sql(query)
        return self._all(sql, tuple(args))  # sqlite3 rows are tuples already

    def catalog_row(self, instance_id: str, execution_id: int) -> CatalogRow | None:
        rows = self._all(ROW, (instance_id, execution_id))
        return tuple(rows[0]) if rows else None

    def catalog_page(self, after: tuple[str, int], limit: int) -> list[CatalogRow]:
        return self._all(PAGE, (*after, limit))

    def catalog_position(self) -> int:
        with self._read_lock:
            return position(self._reader)

    def feed_end(self) -> int:
        return int(self._all("SELECT COALESCE(MAX(rowid), 0) FROM history")[0][0])

    def execution_summaries(self, after: tuple[str, int], limit: int) -> list[ExecutionSummary]:
        with self._read_lock:
            return summaries(self._reader, after, limit)
