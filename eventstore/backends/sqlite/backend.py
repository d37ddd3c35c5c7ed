"""SQLiteBackend: the connection, opening a file (read-only too), and the reads.

Durability and concurrency choices, all enforced here:

* WAL journal: readers and the writer never block each other; processes share the file.
* Writes begin with BEGIN IMMEDIATE, which takes the write lock up front (or
  waits up to the busy timeout). Checking the last event id and inserting
  therefore happen under one lock: no other writer can slip in between, which
  is what makes the optimistic-concurrency check sound.
* synchronous=NORMAL by default: in WAL mode every commit is atomic and
  survives a crash of the process (SIGKILL included); a power loss or OS
  crash may undo the last commits, never corrupt the file. `synchronous="full"`
  makes every commit durable against power loss at the cost of an fsync each.
* event_data is read as a BLOB: the codec decodes bytes directly (msgspec
  validates the UTF-8), so a row holding invalid UTF-8 becomes a DecodeError
  naming that row instead of a failure of the whole fetch.
* Positions are rowids. On tables eventstore creates the rowid is aliased by
  an INTEGER PRIMARY KEY column (`position`), so VACUUM keeps it; on tables
  duroxide created it is the implicit rowid, which VACUUM may renumber
  (`stable_positions` says which).
* `group_commit=True` (a file): appends of concurrent callers commit together,
  each in its own savepoint (group.py), on the one write connection; reads
  then go to a second, read-only connection, so they never wait for a group
  or the write lock (WAL lets them read the last commit meanwhile). On
  `:memory:` there is only one connection, so reads share it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Final

import msgspec

from ...errors import ReadOnlyError, StoreError, StoreNotFoundError
from ...store.protocol import (
    ArchivedRow,
    ExecutionRow,
    FeedRow,
    GroupUnit,
    IntegrityResult,
    MigrationLogRow,
    MigrationRun,
    PackedExecution,
    PackedFeed,
    RawRow,
    RowKey,
    SchemaVersionRow,
    StoredRow,
    WindowCounts,
)
from . import catalog, feed_head, manifest, tables, window
from .catalog import CatalogReads
from .connect import connect
from .group import commit_group
from .integrity import sqlite_integrity
from .packed import packed_feed
from .run_lock import file_run_lock, memory_run_lock
from .tables import HISTORY_DDL
from .translate import BINDING_ERRORS, translate, unmatchable
from .undecoded import AFTER_KEY, fetch_tolerant, key_args
from .writer import LAST_EVENT_ID, SQLiteWrite, SQLiteWriter

__all__ = ["SQLiteBackend"]

_INT_LIST: Final = msgspec.json.Decoder(list[int])

_SYNCHRONOUS: Final = {"off", "normal", "full", "extra"}


# An execution in one row: SQLite concatenates in C what the driver would
# otherwise turn into three Python objects per row. The UNIQUE index on
# (instance_id, execution_id, event_id) yields rows in event-id order, which
# execution_packed checks rather than trusts. The separator is a newline
# literal: `char(10)` would be a function call per row and aggregate (a
# seventh of a 50-event read).
_PACKED: Final = (
    "SELECT group_concat(event_id), group_concat(event_type, '\n'),"
    " CAST(group_concat(event_data, '\n') AS BLOB)"
    " FROM history WHERE instance_id = ? AND execution_id = ?"
)


def _tables(con: sqlite3.Connection, path: str, readonly: bool) -> tables.HistoryTable | None:
    """The history table; where there is none, made with the catalog (one transaction)."""
    table = tables.inspect(con)
    if table is not None:
        if not readonly and table.stable_positions:
            catalog.drop_retired_indexes(con)  # indexes an older version made
        return table
    if readonly:
        con.close()
        raise StoreNotFoundError(f"{path} has no history table")
    con.execute("BEGIN IMMEDIATE")
    try:
        con.execute(HISTORY_DDL)
        catalog.ensure(con)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return tables.inspect(con)


_EXECUTION_ROWS: Final = "SELECT event_id, event_type, CAST(event_data AS BLOB) FROM history " + (
    "WHERE instance_id = ? AND execution_id = ? ORDER BY event_id"
)


class SQLiteBackend(CatalogReads, feed_head.FeedHeadReads, manifest.SQLiteManifest):
    """History rows in a SQLite file (or in memory)."""

    def __init__(
        self,
        path: str,
        *,
        readonly: bool = False,
        busy_timeout_ms: int = 5000,
        synchronous: str = "normal",
        group_commit: bool = False,
        group_size: int = 128,
    ) -> None:
        if synchronous.lower() not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {sorted(_SYNCHRONOUS)}")
        self.readonly = readonly
        self.memory = path == ":memory:"
        self.description = "sqlite :memory:" if self.memory else f"sqlite {path}"
        self._lock = threading.RLock()
        self._depth = 0  # nesting of transaction() / writing()
        self._transaction_thread: int | None = None  # who has transaction() open
        self._path = path
        self._run_lock = threading.Lock()  # the run lock of a :memory: database
        if not self.memory and not os.path.exists(path) and readonly:
            raise StoreNotFoundError(f"no database at {path}")
        try:
            con = connect(path, readonly=readonly)
            con.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if not readonly and not self.memory:
                con.execute("PRAGMA journal_mode = WAL")
            con.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            table = _tables(con, path, readonly)
        except sqlite3.DatabaseError as exc:
            raise translate(exc, f"cannot open {path}") from None
        if table is None or table.missing:
            con.close()
            missing = ", ".join(table.missing) if table is not None else "every column"
            raise StoreError(f"{path}: table history is not a history table (missing {missing})")
        self._con = con
        self._writer = SQLiteWriter(con)
        self.stable_positions = table.stable_positions
        # A table eventstore created (positions aliased by `position`) can
        # keep the catalog; a file duroxide created never gets a table of ours.
        self.can_keep_catalog = table.stable_positions
        self.group_commit = group_commit and not readonly
        self.group_size = group_size
        # Reads use `_reader` under `_read_lock`: the write connection and its
        # lock, unless group commit gives them their own (see the docstring).
        self._reader = con
        self._read_lock: Any = self._lock
        if self.group_commit and not self.memory:
            try:
                self._reader = connect(path, readonly=True)
            except sqlite3.DatabaseError as exc:
                raise translate(exc, f"cannot open {path} for reading") from None
            self._read_lock = threading.RLock()

    # -- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._con.close()
        if self._reader is not self._con:
            with self._read_lock:
                self._reader.close()

    def destroy(self) -> None:
        if self.readonly:
            raise ReadOnlyError(f"{self.description} was opened read-only")
        try:
            with self._lock:
                for name in (
                    "history",
                    *tables.EVOLUTION_TABLES,
                    *window.WINDOW_TABLES,
                    *catalog.CATALOG_TABLES,
                    *manifest.LIFECYCLE_TABLES,
                ):
                    self._con.execute(f'DROP TABLE IF EXISTS "{name}"')
        except sqlite3.Error as exc:
            raise translate(exc, f"cannot destroy {self.description}") from None
        finally:
            self.close()

    @property
    def connection(self) -> sqlite3.Connection:
        return self._con

    # -- writes --------------------------------------------------------------

    def migration_lock(self, what: str) -> contextlib.AbstractContextManager[None]:
        """The store's run lock (one migration, backfill or rollback at a time).

        Raises MigrationLockedError at once when another holds it; see
        run_lock.py for why a killed holder cannot leave it stuck."""
        if self.readonly:
            raise ReadOnlyError(f"{self.description} was opened read-only")
        if self.memory:
            return memory_run_lock(self._run_lock, self.description, what)
        return file_run_lock(self._path, what)

    def evolving(self) -> SQLiteWrite:
        """Evolution writes: the same transaction and write lock as `writing`."""
        return self.writing()

    def writing(self) -> SQLiteWrite:
        """One atomic unit of writing: a transaction, or a savepoint inside one.

        Inside `transaction()` a savepoint makes each append atomic on its own
        while the embedding runtime's transaction decides the final commit.
        """
        if self.readonly:
            raise ReadOnlyError(f"{self.description} was opened read-only")
        return SQLiteWrite(self)

    def in_transaction(self) -> bool:
        return self._transaction_thread == threading.get_ident()

    def commit_group(self, units: Sequence[GroupUnit]) -> list[Any]:
        """Many appends in one commit, each in its own savepoint (group.py)."""
        if self.readonly:
            raise ReadOnlyError(f"{self.description} was opened read-only")
        return commit_group(self, units)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An outer transaction whose connection the embedding runtime may use."""
        if self.readonly:
            raise ReadOnlyError(f"{self.description} was opened read-only")
        with self._lock:
            if self._depth:
                raise StoreError("transaction() cannot be nested")
            try:
                self._con.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise translate(exc, "cannot begin a transaction") from None
            self._depth = 1
            self._transaction_thread = threading.get_ident()
            try:
                yield self._con
            except BaseException:
                self._depth = 0
                self._transaction_thread = None
                with contextlib.suppress(sqlite3.Error):
                    self._con.execute("ROLLBACK")
                raise
            self._depth = 0
            self._transaction_thread = None
            try:
                self._con.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._con.execute("ROLLBACK")
                raise translate(exc, "cannot commit") from None

    # -- reads ---------------------------------------------------------------

    def _all(self, sql: str, args: tuple[object, ...] = (), *, tolerant: bool = False) -> list[Any]:
        """Every row of a read; `tolerant` for whole-store reads (see `undecoded`)."""
        con = self._reader

        def fetch(values: tuple[object, ...]) -> list[Any]:
            if tolerant:
                return fetch_tolerant(con, sql, values)
            return con.execute(sql, values).fetchall()

        with self._read_lock:
            try:
                try:
                    return fetch(args)
                except OverflowError:  # an id beyond 64 bits: nothing stored has it
                    return fetch(unmatchable(args))
            except BINDING_ERRORS as exc:
                raise translate(exc, "read failed") from None

    def execution_rows(self, instance_id: str, execution_id: int) -> list[ExecutionRow]:
        # The read hot path: plain tuples, no rowid (0.2 us per row; position_of
        # names a row when one must), and not through `_all`'s layers (2% of a
        # six-event read), which reads again and explains whatever raises.
        with self._read_lock:
            try:
                rows: list[ExecutionRow] = self._reader.execute(
                    _EXECUTION_ROWS, (instance_id, execution_id)
                ).fetchall()
                return rows
            except BINDING_ERRORS:
                pass
        return self._all(_EXECUTION_ROWS, (instance_id, execution_id))

    def execution_packed(self, instance_id: str, execution_id: int) -> PackedExecution | None:
        ((ids_text, types_text, data),) = self._all(_PACKED, (instance_id, execution_id))
        if ids_text is None:
            return PackedExecution([], [], b"")
        try:
            ids = _INT_LIST.decode(f"[{ids_text}]")
        except msgspec.DecodeError:
            return None  # an id that is not an integer: the row path names it
        if ids != sorted(ids) or types_text is None or data is None:
            return None
        return PackedExecution(ids, types_text.split("\n"), data)

    def position_of(self, instance_id: str, execution_id: int, event_id: int) -> int | None:
        rows = self._all(
            "SELECT rowid FROM history WHERE instance_id = ? AND execution_id = ? AND event_id = ?",
            (instance_id, execution_id, event_id),
        )
        return int(rows[0][0]) if rows else None

    def latest_execution(self, instance_id: str) -> int | None:
        # Integer ids only (a hand-written 'x' sorts above every integer in
        # SQLite): such a row hides no execution, verify and read_all name it.
        # `< ''` keeps the index range (numbers sort before text).
        row = self._all(
            "SELECT execution_id FROM history WHERE instance_id = ? AND execution_id < ''"
            " AND typeof(execution_id) = 'integer' ORDER BY execution_id DESC LIMIT 1",
            (instance_id,),
        )
        value = row[0][0] if row else None
        return int(value) if isinstance(value, int) else None

    def last_event_id(self, instance_id: str, execution_id: int) -> int:
        rows = self._all(
            LAST_EVENT_ID,
            (instance_id, execution_id),
        )
        return int(rows[0][0] or 0)

    def executions(self, instance_id: str) -> list[int]:
        return [
            int(r[0])
            for r in self._all(
                "SELECT DISTINCT execution_id FROM history WHERE instance_id = ?"
                " AND typeof(execution_id) = 'integer' ORDER BY execution_id",
                (instance_id,),
            )
        ]

    def instances(self) -> list[str]:
        return [
            r[0]
            for r in self._all(
                "SELECT DISTINCT instance_id FROM history ORDER BY instance_id", tolerant=True
            )
        ]

    def overview(self) -> list[tuple[str, int, int, int]]:
        return [
            (r[0], int(r[1]), int(r[2]), int(r[3]))
            for r in self._all(
                "SELECT instance_id, COUNT(DISTINCT execution_id), MAX(execution_id), COUNT(*)"
                " FROM history WHERE typeof(execution_id) = 'integer'"
                " GROUP BY instance_id ORDER BY instance_id",
                tolerant=True,
            )
        ]

    def edge_rows(
        self, instance_id: str, execution_id: int
    ) -> tuple[StoredRow | None, StoredRow | None]:
        sql = (
            "SELECT event_id, event_type, CAST(event_data AS BLOB), rowid FROM history"
            " WHERE instance_id = ? AND execution_id = ? ORDER BY event_id {} LIMIT 1"
        )
        first = self._all(sql.format("ASC"), (instance_id, execution_id))
        last = self._all(sql.format("DESC"), (instance_id, execution_id))
        return (
            StoredRow(*first[0]) if first else None,
            StoredRow(*last[0]) if last else None,
        )

    def feed(self, after: int, limit: int) -> list[FeedRow]:
        return self._all(
            "SELECT rowid, instance_id, execution_id, event_id, event_type,"
            " CAST(event_data AS BLOB), created_at FROM history WHERE rowid > ?"
            " ORDER BY rowid LIMIT ?",
            (after, limit),
            tolerant=True,
        )

    def feed_packed(self, after: int, limit: int) -> PackedFeed | None:
        with self._read_lock:
            return packed_feed(self._reader, after, limit)

    def key_at(self, position: int) -> tuple[str | bytes, int, int] | None:
        rows = self._all(
            "SELECT instance_id, execution_id, event_id FROM history WHERE rowid = ?",
            (position,),
            tolerant=True,  # the exporter compares the key of a row it skipped
        )
        if not rows:
            return None
        instance_id = rows[0][0]
        return (
            instance_id if isinstance(instance_id, bytes) else str(instance_id),
            int(rows[0][1]),
            int(rows[0][2]),
        )

    def scan(self, batch: int) -> Iterator[list[RawRow]]:
        # Keyset pagination on duroxide's key: constant memory, and each page is
        # its own short read, so a long scan never pins the WAL.
        last: tuple[str | bytes, int, int] = ("", -1, -1)
        while True:
            rows = self._all(
                "SELECT rowid, instance_id, execution_id, event_id, event_type,"
                " CAST(event_data AS BLOB), created_at FROM history" + AFTER_KEY,
                key_args(last, batch),
                tolerant=True,
            )
            if not rows:
                return
            page = [RawRow(*r) for r in rows]
            yield page
            tail = page[-1]
            last = (tail.instance_id, tail.execution_id, tail.event_id)

    def count(self) -> int:
        return int(self._all("SELECT COUNT(*) FROM history")[0][0])

    def integrity_check(self) -> IntegrityResult:
        with self._lock:
            try:
                return sqlite_integrity(self._con)
            except sqlite3.Error as exc:
                raise translate(exc, "the integrity check failed") from None

    # -- schema evolution ------------------------------------------------------

    def _evolution_rows(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        """Rows of one of our tables; none when the tables were never created."""
        with self._lock:
            try:
                found = tables.has_table(self._con, "eventstore_migration_log")
            except sqlite3.Error as exc:
                raise translate(exc, "read failed") from None
        return self._all(sql, args) if found else []

    def schema_versions(self) -> list[SchemaVersionRow]:
        return [
            SchemaVersionRow(*r)
            for r in self._evolution_rows(
                "SELECT version_id, hash, first_used_at, catalog, metadata"
                " FROM eventstore_schema_versions ORDER BY first_used_at, rowid"
            )
        ]

    def migration_runs(self) -> list[MigrationRun]:
        return [
            MigrationRun(*r)
            for r in self._evolution_rows(
                "SELECT run_id, kind, strategy, target, status, started_at, finished_at, rows,"
                " cursor, details FROM eventstore_migration_runs ORDER BY started_at, run_id"
            )
        ]

    def migration_log(self, run_id: str) -> list[MigrationLogRow]:
        return [
            MigrationLogRow(*r)
            for r in self._evolution_rows(
                "SELECT run_id, instance_id, execution_id, first_event_id, strategy, status,"
                " changes FROM eventstore_migration_log WHERE run_id = ?"
                " ORDER BY instance_id, execution_id, first_event_id",
                (run_id,),
            )
        ]

    # -- the dual-write window (window.py) -------------------------------------

    def write_generation(self) -> str | None:
        with self._lock:
            return window.recorded_generation(self._con)

    def window_counts(self) -> WindowCounts:
        with self._lock:
            return window.window_counts(self._con)

    def archived_rows(self, run_id: str, after: RowKey, limit: int) -> list[ArchivedRow]:
        return [
            ArchivedRow(*r)
            for r in self._evolution_rows(
                "SELECT instance_id, execution_id, event_id, event_type, event_data"
                " FROM eventstore_archive WHERE run_id = ?"
                " AND (instance_id, execution_id, event_id) > (?, ?, ?)"
                " ORDER BY instance_id, execution_id, event_id LIMIT ?",
                (run_id, *after, limit),
            )
        ]
