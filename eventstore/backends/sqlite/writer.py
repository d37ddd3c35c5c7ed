"""Write units of the SQLite backend: BEGIN IMMEDIATE (or a savepoint) and its statements.

BEGIN IMMEDIATE takes the write lock up front (or waits up to the busy
timeout). Checking the last event id and inserting therefore happen under one
lock: no other writer can slip in between, which is what makes the
optimistic-concurrency check sound.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Sequence
from typing import Any, Final, Protocol

from ...store.protocol import (
    ArchivedRow,
    InsertRow,
    MigrationLogRow,
    MigrationRun,
    NewEvents,
    RawRow,
    RowKey,
    SchemaVersionRow,
    StoredRow,
)
from . import tables, window
from .catalog import CatalogWrites
from .translate import BINDING_ERRORS, translate
from .undecoded import RAW_AFTER, fetch_tolerant, key_args

__all__ = ["LAST_EVENT_ID", "SQLiteWrite", "SQLiteWriter"]

LAST_EVENT_ID: Final = (
    "SELECT MAX(event_id) FROM history WHERE instance_id = ? AND execution_id = ?"
)
_LAST_EVENT: Final = (
    "SELECT event_id, event_type FROM history WHERE instance_id = ? AND execution_id = ?"
    " ORDER BY event_id DESC LIMIT 1"
)
_INSERT_ROWS: Final = 300
"""Rows per INSERT statement: 2 + 3 * 300 parameters stay under the 999 that
SQLite builds before 3.32 allow."""


@functools.lru_cache(maxsize=_INSERT_ROWS)
def _insert_sql(rows: int) -> str:
    # One multi-row statement binds instance and execution once (?1, ?2) and
    # steps once: about a fifth cheaper per row than executemany at 100 rows.
    # Parameters go column by column (ids, then types, then data), so the
    # batch's parallel lists are bound by concatenation, without building
    # rows. Data is bound as str (see _as_text); CAST keeps any bytes that
    # are bound as they are TEXT, as duroxide reads them.
    values = ",".join(
        f"(?1,?2,?{n},?{n + rows},CAST(?{n + 2 * rows} AS TEXT))" for n in range(3, rows + 3)
    )
    return (
        "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
        f" VALUES {values}"
    )


def _as_text(encoded: list[bytes]) -> list[str] | list[bytes]:
    # sqlite3 binds str (and int, float, bytearray) directly, but looks up an
    # adapter for every bytes parameter, raising and clearing two
    # AttributeErrors each time: per event, more than the decode to str
    # costs (about 4% of a ten-event append, counted with callgrind). Bytes
    # that are not UTF-8 (an UnknownEvent's raw JSON) are bound as they are,
    # and the CAST in the statement stores them as TEXT as before.
    try:
        return list(map(bytes.decode, encoded))
    except UnicodeDecodeError:
        return encoded


# An execution in one row: SQLite concatenates in C what the driver would
# otherwise turn into three Python objects per row. The UNIQUE index on
# (instance_id, execution_id, event_id) yields rows in event-id order, which
# execution_packed checks rather than trusts. The separator is a newline
# literal: `char(10)` would be a function call per row and aggregate (a
# seventh of a 50-event read).
_IMPORT: Final = (
    "INSERT INTO history"
    " (instance_id, execution_id, event_id, event_type, event_data, created_at)"
    " VALUES (?, ?, ?, ?, ?, COALESCE(?, CURRENT_TIMESTAMP))"
    " ON CONFLICT (instance_id, execution_id, event_id) DO NOTHING"
)


class SQLiteWriter(CatalogWrites):
    __slots__ = ("_con", "_cursor")

    def __init__(self, con: sqlite3.Connection) -> None:
        self._con = con
        # One cursor reused by the append path's statements (always under the
        # write lock): Connection.execute would allocate one per statement.
        self._cursor = con.cursor()

    def last_event(self, instance_id: str, execution_id: int, shard: str = "") -> tuple[int, str]:
        row: tuple[int, str] | None = self._cursor.execute(
            _LAST_EVENT, (instance_id, execution_id)
        ).fetchone()
        return (0, "") if row is None else row  # (event_id, event_type) as selected

    def rows_between(
        self, instance_id: str, execution_id: int, first: int, last: int
    ) -> list[StoredRow]:
        return [
            StoredRow(*r)
            for r in self._con.execute(
                "SELECT event_id, event_type, CAST(event_data AS BLOB), rowid FROM history"
                " WHERE instance_id = ? AND execution_id = ? AND event_id BETWEEN ? AND ?"
                " ORDER BY event_id",
                (instance_id, execution_id, first, last),
            )
        ]

    def insert(self, batch: NewEvents) -> None:
        instance_id, execution_id, ids, types, encoded, _ = batch
        data = _as_text(encoded)
        count = len(ids)
        if count <= _INSERT_ROWS:
            self._cursor.execute(
                _insert_sql(count), [instance_id, execution_id, *ids, *types, *data]
            )
            return
        for start in range(0, count, _INSERT_ROWS):
            end = start + _INSERT_ROWS
            self._cursor.execute(
                _insert_sql(len(ids[start:end])),
                [instance_id, execution_id, *ids[start:end], *types[start:end], *data[start:end]],
            )

    def insert_or_compare(self, row: InsertRow) -> str | None:
        cur = self._con.execute(_IMPORT, row)
        if cur.rowcount == 1:
            return None
        found = self._con.execute(
            "SELECT event_data FROM history"
            " WHERE instance_id = ? AND execution_id = ? AND event_id = ?",
            row[:3],
        ).fetchone()
        return str(found[0])

    # -- schema evolution ----------------------------------------------------

    def ensure_evolution_tables(self) -> None:
        for ddl in tables.evolution_ddl():
            self._con.execute(ddl)

    def record_schema_version(self, row: SchemaVersionRow) -> bool:
        cur = self._con.execute(
            "INSERT INTO eventstore_schema_versions"
            " (version_id, hash, first_used_at, catalog, metadata) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (version_id) DO NOTHING",
            row,
        )
        return cur.rowcount == 1

    def set_schema_metadata(self, version_id: str, metadata: str) -> None:
        self._con.execute(
            "UPDATE eventstore_schema_versions SET metadata = ? WHERE version_id = ?",
            (metadata, version_id),
        )

    def save_migration_run(self, run: MigrationRun) -> None:
        self._con.execute(
            "INSERT OR REPLACE INTO eventstore_migration_runs (run_id, kind, strategy, target,"
            " status, started_at, finished_at, rows, cursor, details)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            run,
        )

    def rows_after(self, after: RowKey, limit: int) -> list[RawRow]:
        return [RawRow(*r) for r in fetch_tolerant(self._con, RAW_AFTER, key_args(after, limit))]

    def archive_rows(self, run_id: str, rows: Sequence[ArchivedRow]) -> None:
        self._con.executemany(
            "INSERT INTO eventstore_archive (run_id, instance_id, execution_id, event_id,"
            " event_type, event_data) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(run_id, *row) for row in rows],
        )

    def update_rows_by_key(self, changes: Sequence[ArchivedRow]) -> None:
        self._con.executemany(
            "UPDATE history SET event_type = ?, event_data = ?"
            " WHERE instance_id = ? AND execution_id = ? AND event_id = ?",
            [
                (r.event_type, r.event_data, r.instance_id, r.execution_id, r.event_id)
                for r in changes
            ],
        )

    def log_migration(self, entries: Sequence[MigrationLogRow]) -> None:
        self._con.executemany(
            "INSERT OR REPLACE INTO eventstore_migration_log (run_id, instance_id, execution_id,"
            " first_event_id, strategy, status, changes) VALUES (?, ?, ?, ?, ?, ?, ?)",
            entries,
        )

    # -- the dual-write window (window.py) -------------------------------------

    def recorded_generation(self) -> str | None:
        return window.recorded_generation(self._con)

    def set_write_generation(self, generation: str, at: str) -> None:
        window.set_write_generation(self._con, generation, at)

    def insert_shadow(self, batch: NewEvents) -> None:
        window.insert_shadow(self._con, batch)

    def shadow_rows(self, first: RowKey, last: RowKey) -> dict[RowKey, tuple[str, str]]:
        return window.shadow_rows(self._con, first, last)


class WriteState(Protocol):
    """What a write unit needs of its backend: the lock, the nesting, the writer."""

    _lock: Any  # a threading.RLock
    _depth: int
    _writer: SQLiteWriter


class SQLiteWrite:
    """The context `SQLiteBackend.writing()` returns.

    A class rather than a generator: it runs once per append, and a
    generator-based context manager costs about 2 µs more per call, a tenth
    of the Python work of a ten-event append.

    Ordering: the backend's lock is taken before BEGIN IMMEDIATE and released
    only after COMMIT or ROLLBACK, so threads sharing the connection never
    interleave statements of two writes. A failed write is rolled back
    (to its savepoint when nested) before the error leaves, so nothing of it
    stays behind, and sqlite3's error is translated after the rollback.
    """

    __slots__ = ("_backend", "_nested")

    def __init__(self, backend: WriteState) -> None:
        self._backend = backend
        self._nested = False

    def __enter__(self) -> SQLiteWriter:
        backend = self._backend
        backend._lock.acquire()
        nested = self._nested = backend._depth > 0
        try:
            backend._writer._cursor.execute("SAVEPOINT append" if nested else "BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            backend._lock.release()
            raise translate(exc, "cannot begin a write") from None
        backend._depth += 1
        writer: SQLiteWriter = backend._writer
        return writer

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: object,
    ) -> None:
        backend = self._backend
        cursor = backend._writer._cursor
        nested = self._nested
        try:
            backend._depth -= 1
            if exc is None:
                try:
                    cursor.execute("RELEASE append" if nested else "COMMIT")
                except sqlite3.Error as error:
                    with contextlib.suppress(sqlite3.Error):
                        cursor.execute("ROLLBACK")
                    raise translate(error, "cannot commit") from None
                return
            with contextlib.suppress(sqlite3.Error):
                if nested:
                    cursor.execute("ROLLBACK TO append")
                    cursor.execute("RELEASE append")
                else:
                    cursor.execute("ROLLBACK")
            if isinstance(exc, BINDING_ERRORS):
                raise translate(exc, "write failed") from None
        finally:
            backend._lock.release()
