"""The shard manifest, purges and migration pruning on SQLite (eventstore.lifecycle).

Three tables of our own, created on the first lifecycle write:
`eventstore_shards` (one row per shard), `eventstore_shard_archives` (one
per archive file retention wrote) and `eventstore_archived_executions`
(where each archived execution is: which archive, which gzip member).

Every write here is a short BEGIN IMMEDIATE transaction of the backend's
own `writing()`: retention deletes a bounded batch of whole executions per
transaction so that appenders never wait long for the write lock.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from ...store.lifecycle_protocol import (
    ArchivedExecution,
    CatalogCensusRow,
    ExecutionKey,
    PurgeKey,
    ShardArchiveRow,
    ShardRow,
)
from ...store.protocol import RawRow
from . import catalog
from .translate import translate

if TYPE_CHECKING:
    from .writer import SQLiteWrite

__all__ = [
    "CHECKPOINT_AFTER_ROWS",
    "LIFECYCLE_DDL",
    "LIFECYCLE_TABLES",
    "SQLiteManifest",
    "SQLiteManifestWriter",
]

LIFECYCLE_TABLES: Final = (
    "eventstore_shards",
    "eventstore_shard_archives",
    "eventstore_archived_executions",
)

LIFECYCLE_DDL: Final = (
    "CREATE TABLE IF NOT EXISTS eventstore_shards (shard TEXT PRIMARY KEY,"
    " state TEXT NOT NULL, executions INTEGER NOT NULL, running INTEGER NOT NULL,"
    " rows INTEGER NOT NULL, bytes INTEGER NOT NULL, earliest_ms INTEGER, latest_ms INTEGER,"
    " generations TEXT NOT NULL, archive_location TEXT, archive_rows INTEGER NOT NULL,"
    " archive_checksum TEXT, updated_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS eventstore_shard_archives (archive_id TEXT PRIMARY KEY,"
    " shard TEXT NOT NULL, state TEXT NOT NULL, location TEXT NOT NULL,"
    " rows INTEGER NOT NULL, executions INTEGER NOT NULL, checksum TEXT NOT NULL,"
    " created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS eventstore_archived_executions (instance_id TEXT NOT NULL,"
    " execution_id INTEGER NOT NULL, archive_id TEXT NOT NULL, shard TEXT NOT NULL,"
    " rows INTEGER NOT NULL, member_offset INTEGER NOT NULL, last_position INTEGER,"
    " PRIMARY KEY (instance_id, execution_id))",
    "CREATE INDEX IF NOT EXISTS eventstore_archived_by_archive"
    " ON eventstore_archived_executions (archive_id, instance_id, execution_id)",
)

_SHARD_COLUMNS: Final = (
    "shard, state, executions, running, rows, bytes, earliest_ms, latest_ms, generations,"
    " archive_location, archive_rows, archive_checksum, updated_at"
)
_ARCHIVE_COLUMNS: Final = (
    "archive_id, shard, state, location, rows, executions, checksum, created_at"
)
_INDEX_COLUMNS: Final = (
    "instance_id, execution_id, archive_id, shard, rows, member_offset, last_position"
)
_EXECUTION_ROWS: Final = (
    "SELECT rowid, instance_id, execution_id, event_id, event_type, CAST(event_data AS BLOB),"
    " created_at FROM history WHERE instance_id = ? AND execution_id = ? ORDER BY event_id"
)


# The catalog's page for the lifecycle's census: each execution's fields and
# the first bytes of its first and last rows (two primary-key probes each),
# so the census reads no other row of the history.
_CATALOG_CENSUS: Final = (
    "SELECT c.instance_id, c.execution_id, c.status, c.started_ms, c.event_count, c.bytes,"
    " c.shard,"
    " (SELECT substr(CAST(h.event_data AS BLOB), 1, 3) FROM history h"
    "  WHERE h.instance_id = c.instance_id AND h.execution_id = c.execution_id"
    "  ORDER BY h.event_id LIMIT 1),"
    " (SELECT substr(CAST(h.event_data AS BLOB), 1, 3) FROM history h"
    "  WHERE h.instance_id = c.instance_id AND h.execution_id = c.execution_id"
    "  ORDER BY h.event_id DESC LIMIT 1)"
    " FROM eventstore_executions c WHERE (c.instance_id, c.execution_id) > (?, ?)"
    " ORDER BY c.instance_id, c.execution_id LIMIT ?"
)


# An execution goes only while it holds exactly the rows its archive holds:
# a row that arrived after archiving (an import) keeps the whole execution,
# and so does a last row at another position than the archived one's: the
# id was purged and started again (a run finishing an interrupted purge
# meets it), with as many rows by chance.
#
# Positions are the rowid (our tables alias it as `position`, duroxide's
# table has only the implicit one, so the statement says `rowid`). SQLite
# gives a new row max(rowid) + 1, so deleting the table's newest row would
# hand its position out again, and a feed reader resuming after it (the
# exporter, the catalog's catch-up, `tail`) would never see the new rows.
# The execution holding the newest row therefore stays in the table (it is
# archived, and reads take the table's rows); a later run deletes it once
# a newer row exists.
_PURGE: Final = (
    "DELETE FROM history WHERE instance_id = ?1 AND execution_id = ?2"
    " AND (SELECT COUNT(*) FROM history WHERE instance_id = ?1 AND execution_id = ?2) = ?3"
    " AND (SELECT MAX(rowid) FROM history WHERE instance_id = ?1 AND execution_id = ?2)"
    " < (SELECT MAX(rowid) FROM history)"
    " AND (?4 IS NULL OR"
    " (SELECT MAX(rowid) FROM history WHERE instance_id = ?1 AND execution_id = ?2) = ?4)"
)


CHECKPOINT_AFTER_ROWS: Final = 1000
"""Purged rows between two PASSIVE checkpoints (a few hundred WAL pages)."""

_PRUNE: Final = (
    "DELETE FROM eventstore_archive WHERE rowid IN"
    " (SELECT rowid FROM eventstore_archive WHERE run_id = ? LIMIT ?)",
    "DELETE FROM eventstore_migration_log WHERE rowid IN"
    " (SELECT rowid FROM eventstore_migration_log WHERE run_id = ? LIMIT ?)",
)


class SQLiteManifestWriter:
    """The manifest's writes on the connection of one write transaction."""

    __slots__ = ("_con",)

    def __init__(self, con: sqlite3.Connection) -> None:
        self._con = con

    def ensure_lifecycle_tables(self) -> None:
        for ddl in LIFECYCLE_DDL:
            self._con.execute(ddl)
        # An index made before archived positions were recorded gains the
        # column; its rows keep NULL there (purged by row count alone).
        columns = {
            r[1] for r in self._con.execute("PRAGMA table_info(eventstore_archived_executions)")
        }
        if "last_position" not in columns:
            self._con.execute(
                "ALTER TABLE eventstore_archived_executions ADD COLUMN last_position INTEGER"
            )

    def save_shard(self, row: ShardRow) -> None:
        self._con.execute(
            "INSERT OR REPLACE INTO eventstore_shards (" + _SHARD_COLUMNS + ")"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )

    def drop_shard(self, shard: str) -> None:
        self._con.execute("DELETE FROM eventstore_shards WHERE shard = ?", (shard,))

    def save_archive(self, row: ShardArchiveRow) -> None:
        self._con.execute(
            "INSERT OR REPLACE INTO eventstore_shard_archives (" + _ARCHIVE_COLUMNS + ")"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )

    def forget_archive(self, archive_id: str) -> None:
        self._con.execute(
            "DELETE FROM eventstore_archived_executions WHERE archive_id = ?", (archive_id,)
        )
        self._con.execute(
            "DELETE FROM eventstore_shard_archives WHERE archive_id = ?", (archive_id,)
        )

    def index_archived(self, rows: Sequence[ArchivedExecution]) -> None:
        self._con.executemany(
            "INSERT INTO eventstore_archived_executions (" + _INDEX_COLUMNS + ")"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (instance_id, execution_id) DO UPDATE SET"
            " archive_id = excluded.archive_id, shard = excluded.shard, rows = excluded.rows,"
            " member_offset = excluded.member_offset, last_position = excluded.last_position",
            rows,
        )


class SQLiteManifest:
    """SQLiteBackend's manifest reads, purges and pruning (a mixin)."""

    _con: sqlite3.Connection
    _lock: Any
    readonly: bool
    description: str

    if TYPE_CHECKING:

        def _all(
            self, sql: str, args: tuple[object, ...] = (), *, tolerant: bool = False
        ) -> list[Any]: ...

        def writing(self) -> SQLiteWrite: ...

        def catalog_kept(self) -> bool: ...

    _last_hold_s: float = 0.0
    _purged_since_checkpoint: int = 0

    @contextlib.contextmanager
    def manifest_writing(self) -> Iterator[SQLiteManifestWriter]:
        with self._timed_write():
            yield SQLiteManifestWriter(self._con)

    @contextlib.contextmanager
    def _timed_write(self) -> Iterator[None]:
        """`writing()`, timed from BEGIN IMMEDIATE's return to COMMIT's: how
        long the write lock was held (retention sizes its batches by it)."""
        started = 0.0
        try:
            with self.writing():
                started = time.perf_counter()
                yield
        finally:
            self._last_hold_s = time.perf_counter() - started if started else 0.0

    def last_write_seconds(self) -> float:
        return self._last_hold_s

    def _has_manifest(self) -> bool:
        rows = self._all(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'eventstore_shards'"
        )
        return bool(rows)

    def shard_manifest(self) -> list[ShardRow]:
        if not self._has_manifest():
            return []
        sql = "SELECT " + _SHARD_COLUMNS + " FROM eventstore_shards ORDER BY shard"
        return [ShardRow(*r) for r in self._all(sql)]

    def shard_archives(self) -> list[ShardArchiveRow]:
        if not self._has_manifest():
            return []
        sql = (
            "SELECT " + _ARCHIVE_COLUMNS + " FROM eventstore_shard_archives"
            " ORDER BY shard, created_at, archive_id"
        )
        return [ShardArchiveRow(*r) for r in self._all(sql)]

    def archived_execution(self, instance_id: str, execution_id: int) -> ArchivedExecution | None:
        if not self._has_manifest():
            return None
        rows = self._all(
            "SELECT " + _INDEX_COLUMNS + " FROM eventstore_archived_executions"
            " WHERE instance_id = ? AND execution_id = ?",
            (instance_id, execution_id),
        )
        return ArchivedExecution(*rows[0]) if rows else None

    def archived_in(
        self, archive_id: str, after: ExecutionKey, limit: int
    ) -> list[ArchivedExecution]:
        if not self._has_manifest():
            return []
        rows = self._all(
            "SELECT " + _INDEX_COLUMNS + " FROM eventstore_archived_executions WHERE archive_id = ?"
            " AND (instance_id, execution_id) > (?, ?) ORDER BY instance_id, execution_id LIMIT ?",
            (archive_id, *after, limit),
        )
        return [ArchivedExecution(*r) for r in rows]

    def executions_rows(
        self, keys: Sequence[ExecutionKey], shard: str | None = None
    ) -> list[RawRow]:
        found: list[RawRow] = []
        for key in keys:
            found += map(RawRow._make, self._all(_EXECUTION_ROWS, key))
        return found

    def catalog_census_page(self, after: ExecutionKey, limit: int) -> list[CatalogCensusRow]:
        if not self.catalog_kept():
            return []
        return [CatalogCensusRow(*r) for r in self._all(_CATALOG_CENSUS, (*after, limit))]

    def archived_instances(self) -> list[str]:
        if not self._has_manifest():
            return []
        sql = "SELECT DISTINCT instance_id FROM eventstore_archived_executions ORDER BY instance_id"
        return [str(r[0]) for r in self._all(sql)]

    def archived_executions_of(self, instance_id: str) -> list[int]:
        if not self._has_manifest():
            return []
        sql = (
            "SELECT execution_id FROM eventstore_archived_executions WHERE instance_id = ?"
            " ORDER BY execution_id"
        )
        return [int(r[0]) for r in self._all(sql, (instance_id,))]

    def purge_executions(self, keys: Sequence[PurgeKey]) -> int:
        # One transaction per call: the caller bounds `keys` so that the
        # write lock is held for a few milliseconds (the retention benchmark
        # measures the longest hold).
        deleted = 0
        with self._timed_write():
            gone = []
            for key in keys:
                count = int(self._con.execute(_PURGE, key).rowcount)
                deleted += count
                if count:
                    gone.append(key[:2])
            # The execution catalog loses them in the same transaction.
            if gone and catalog.exists(self._con):
                catalog.remove(self._con, gone)
        # Checkpoint outside the transaction, once CHECKPOINT_AFTER_ROWS rows
        # were deleted since the last: a PASSIVE checkpoint takes no write
        # lock, so appenders go on meanwhile, and the WAL stays below the size
        # at which a COMMIT (ours or an appender's) would run one inside its
        # own timing. Not after every purge: each checkpoint syncs the WAL and
        # the database file, and retention's budgeted purges are small.
        self._purged_since_checkpoint += deleted
        if self._purged_since_checkpoint >= CHECKPOINT_AFTER_ROWS:
            self._purged_since_checkpoint = 0
            with self._lock:
                try:
                    self._con.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:
                    raise translate(exc, "checkpoint after a purge failed") from None
        return deleted

    def prune_migration_run(self, run_id: str, limit: int) -> int:
        deleted = 0
        with self.writing():
            for statement in _PRUNE:
                deleted += int(self._con.execute(statement, (run_id, limit)).rowcount)
        return deleted

    def reclaim_space(self) -> None:
        with self._lock:
            try:
                self._con.execute("VACUUM")
                self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                raise translate(exc, "cannot reclaim space (VACUUM)") from None
