"""The SQLite backend: duroxide's history table in an embedded database file.

Durability and concurrency choices, all enforced here:

* WAL journal: readers never block the writer and vice versa, and several
  processes may share the file.
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
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Final

import msgspec

from ..errors import (
    ConflictError,
    EventStoreError,
    ReadOnlyError,
    StoreBusyError,
    StoreError,
    StoreNotFoundError,
)
from ..store.protocol import (
    ArchivedRow,
    ExecutionRow,
    FeedRow,
    InsertRow,
    MigrationLogRow,
    MigrationRun,
    NewEvents,
    PackedExecution,
    RawRow,
    RowKey,
    SchemaVersionRow,
    StoredRow,
)

__all__ = ["SQLiteBackend", "HISTORY_DDL"]

_INT_LIST: Final = msgspec.json.Decoder(list[int])

# duroxide's columns and key; `position` aliases the rowid so that positions
# survive VACUUM, and duroxide's primary key stays as a unique constraint.
# duroxide inserts with an explicit column list, so it never sees `position`.
HISTORY_DDL: Final = """
CREATE TABLE IF NOT EXISTS history (
    position INTEGER PRIMARY KEY,
    instance_id TEXT NOT NULL,
    execution_id INTEGER NOT NULL,
    event_id INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    event_data TEXT NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (instance_id, execution_id, event_id)
)
"""

_SYNCHRONOUS: Final = {"off", "normal", "full", "extra"}

_LAST_EVENT_ID: Final = (
    "SELECT MAX(event_id) FROM history WHERE instance_id = ? AND execution_id = ?"
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
    # rows. The codec hands over UTF-8 bytes; CAST stores them as TEXT, as
    # duroxide reads them, without a decode to str in Python.
    values = ",".join(
        f"(?1,?2,?{n},?{n + rows},CAST(?{n + 2 * rows} AS TEXT))" for n in range(3, rows + 3)
    )
    return (
        "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
        f" VALUES {values}"
    )


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
_IMPORT: Final = (
    "INSERT INTO history"
    " (instance_id, execution_id, event_id, event_type, event_data, created_at)"
    " VALUES (?, ?, ?, ?, ?, COALESCE(?, CURRENT_TIMESTAMP))"
    " ON CONFLICT (instance_id, execution_id, event_id) DO NOTHING"
)

# Schema evolution: our own tables (prefixed eventstore_), created on first use.
# duroxide's history table keeps its schema; only migrations change its rows.
EVOLUTION_DDL: Final = (
    "CREATE TABLE IF NOT EXISTS eventstore_schema_versions ("
    " version_id TEXT PRIMARY KEY, hash TEXT NOT NULL, first_used_at TEXT NOT NULL,"
    " catalog TEXT NOT NULL, metadata TEXT NOT NULL DEFAULT '{}')",
    "CREATE TABLE IF NOT EXISTS eventstore_migration_runs ("
    " run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, strategy TEXT NOT NULL,"
    " target TEXT NOT NULL, status TEXT NOT NULL, started_at TEXT NOT NULL,"
    " finished_at TEXT, rows INTEGER NOT NULL DEFAULT 0, cursor TEXT,"
    " details TEXT NOT NULL DEFAULT '{}')",
    "CREATE TABLE IF NOT EXISTS eventstore_archive ("
    " run_id TEXT NOT NULL, instance_id TEXT NOT NULL, execution_id INTEGER NOT NULL,"
    " event_id INTEGER NOT NULL, event_type TEXT NOT NULL, event_data TEXT NOT NULL,"
    " PRIMARY KEY (run_id, instance_id, execution_id, event_id))",
    "CREATE TABLE IF NOT EXISTS eventstore_migration_log ("
    " run_id TEXT NOT NULL, instance_id TEXT NOT NULL, execution_id INTEGER NOT NULL,"
    " first_event_id INTEGER NOT NULL, strategy TEXT NOT NULL, status TEXT NOT NULL,"
    " changes TEXT NOT NULL, PRIMARY KEY (run_id, instance_id, execution_id, first_event_id))",
)
# Keyset pagination after a key whose instance_id may be UndecodedText: bound
# as a BLOB and cast back to TEXT, so it sorts where the stored TEXT value does
# (a real BLOB key stays a BLOB, which sorts after every TEXT value).
_AFTER_KEY: Final = (
    " WHERE (instance_id, execution_id, event_id)"
    " > (CASE WHEN ? THEN CAST(? AS TEXT) ELSE ? END, ?, ?)"
    " ORDER BY instance_id, execution_id, event_id LIMIT ?"
)
_RAW_AFTER: Final = (
    "SELECT rowid, instance_id, execution_id, event_id, event_type, event_data,"
    " created_at FROM history" + _AFTER_KEY
)


class UndecodedText(bytes):
    """A TEXT value whose bytes are not UTF-8 (a hand-written row), as its bytes."""

    __slots__ = ()


def _text_or_bytes(data: bytes) -> str | bytes:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return UndecodedText(data)


def _key_args(key: tuple[str | bytes, int, int], limit: int) -> tuple[object, ...]:
    instance_id, execution_id, event_id = key
    undecoded = isinstance(instance_id, UndecodedText)
    return (undecoded, instance_id, instance_id, execution_id, event_id, limit)


def _fetch_tolerant(con: sqlite3.Connection, sql: str, args: tuple[object, ...]) -> list[Any]:
    """The rows of a whole-store read, where one bad row must not fail the rest.

    sqlite3 refuses a whole result when one TEXT value is not UTF-8 ("Could not
    decode to UTF-8 column ..."); such a page is read again with those values
    as UndecodedText, for the store to report by position. The normal case
    pays nothing: the fallback runs only after that failure.
    """
    try:
        return con.execute(sql, args).fetchall()
    except sqlite3.OperationalError as exc:
        if "Could not decode" not in str(exc):
            raise
    con.text_factory = _text_or_bytes
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.text_factory = str


def _translate(exc: sqlite3.Error, what: str) -> EventStoreError:
    """The one place sqlite3's exceptions become eventstore's."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError):
        if "locked" in text or "busy" in text:
            return StoreBusyError(f"{what}: the database stayed locked ({text})")
        if "readonly" in text or "read-only" in text:
            return ReadOnlyError(f"{what}: the store is read-only ({text})")
    if isinstance(exc, sqlite3.IntegrityError):
        return ConflictError(f"{what}: {text}")
    return StoreError(f"{what}: {text}")


class _SQLiteWriter:
    __slots__ = ("_con", "_cursor")

    def __init__(self, con: sqlite3.Connection) -> None:
        self._con = con
        # One cursor reused by the append path's statements (always under the
        # write lock): Connection.execute would allocate one per statement.
        self._cursor = con.cursor()

    def last_event_id(self, instance_id: str, execution_id: int) -> int:
        row = self._cursor.execute(_LAST_EVENT_ID, (instance_id, execution_id)).fetchone()
        return row[0] or 0

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
        instance_id, execution_id, ids, types, data = batch
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
        for ddl in EVOLUTION_DDL:
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
        return [RawRow(*r) for r in _fetch_tolerant(self._con, _RAW_AFTER, _key_args(after, limit))]

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


class _SQLiteWrite:
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

    def __init__(self, backend: SQLiteBackend) -> None:
        self._backend = backend
        self._nested = False

    def __enter__(self) -> _SQLiteWriter:
        backend = self._backend
        backend._lock.acquire()
        nested = self._nested = backend._depth > 0
        try:
            backend._writer._cursor.execute("SAVEPOINT append" if nested else "BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            backend._lock.release()
            raise _translate(exc, "cannot begin a write") from None
        backend._depth += 1
        return backend._writer

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
                    raise _translate(error, "cannot commit") from None
                return
            with contextlib.suppress(sqlite3.Error):
                if nested:
                    cursor.execute("ROLLBACK TO append")
                    cursor.execute("RELEASE append")
                else:
                    cursor.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise _translate(exc, "write failed") from None
        finally:
            backend._lock.release()


class SQLiteBackend:
    """History rows in a SQLite file (or in memory)."""

    def __init__(
        self,
        path: str,
        *,
        readonly: bool = False,
        busy_timeout_ms: int = 5000,
        synchronous: str = "normal",
    ) -> None:
        if synchronous.lower() not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {sorted(_SYNCHRONOUS)}")
        self.readonly = readonly
        self.memory = path == ":memory:"
        self.description = "sqlite :memory:" if self.memory else f"sqlite {path}"
        self._lock = threading.RLock()
        self._depth = 0  # nesting of transaction() / writing()
        if not self.memory and not os.path.exists(path) and readonly:
            raise StoreNotFoundError(f"no database at {path}")
        try:
            if readonly:
                uri = "file:" + path.replace("?", "%3f").replace("#", "%23") + "?mode=ro"
                con = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            else:
                con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            con.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if not readonly and not self.memory:
                con.execute("PRAGMA journal_mode = WAL")
            con.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            columns = con.execute("PRAGMA table_info(history)").fetchall()
            if not columns:
                if readonly:
                    con.close()
                    raise StoreNotFoundError(f"{path} has no history table")
                con.execute(HISTORY_DDL)
                columns = con.execute("PRAGMA table_info(history)").fetchall()
        except sqlite3.DatabaseError as exc:
            raise _translate(exc, f"cannot open {path}") from None
        self._con = con
        self._writer = _SQLiteWriter(con)
        # A single INTEGER PRIMARY KEY column aliases the rowid (stable).
        pk = [c for c in columns if c[5]]
        self.stable_positions = len(pk) == 1 and str(pk[0][2]).upper() == "INTEGER"

    # -- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._con.close()

    @property
    def connection(self) -> sqlite3.Connection:
        return self._con

    # -- writes --------------------------------------------------------------

    def writing(self) -> _SQLiteWrite:
        """One atomic unit of writing: a transaction, or a savepoint inside one.

        Inside `transaction()` a savepoint makes each append atomic on its own
        while the embedding runtime's transaction decides the final commit.
        """
        if self.readonly:
            raise ReadOnlyError(f"{self.description} was opened read-only")
        return _SQLiteWrite(self)

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
                raise _translate(exc, "cannot begin a transaction") from None
            self._depth = 1
            try:
                yield self._con
            except BaseException:
                self._depth = 0
                with contextlib.suppress(sqlite3.Error):
                    self._con.execute("ROLLBACK")
                raise
            self._depth = 0
            try:
                self._con.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._con.execute("ROLLBACK")
                raise _translate(exc, "cannot commit") from None

    # -- reads ---------------------------------------------------------------

    def _all(self, sql: str, args: tuple[object, ...] = (), *, tolerant: bool = False) -> list[Any]:
        with self._lock:
            try:
                if tolerant:  # whole-store reads: see _fetch_tolerant
                    return _fetch_tolerant(self._con, sql, args)
                return self._con.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise _translate(exc, "read failed") from None

    def execution_rows(self, instance_id: str, execution_id: int) -> list[ExecutionRow]:
        # The read hot path: plain tuples, and no rowid (fetching it costs
        # about 0.2 us per row); position_of names a row when one must.
        return self._all(
            "SELECT event_id, event_type, CAST(event_data AS BLOB) FROM history"
            " WHERE instance_id = ? AND execution_id = ? ORDER BY event_id",
            (instance_id, execution_id),
        )

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
        row = self._all(
            "SELECT MAX(execution_id) FROM history WHERE instance_id = ?", (instance_id,)
        )
        value = row[0][0]
        return int(value) if isinstance(value, int) else None

    def last_event_id(self, instance_id: str, execution_id: int) -> int:
        rows = self._all(
            _LAST_EVENT_ID,
            (instance_id, execution_id),
        )
        return int(rows[0][0] or 0)

    def executions(self, instance_id: str) -> list[int]:
        return [
            int(r[0])
            for r in self._all(
                "SELECT DISTINCT execution_id FROM history WHERE instance_id = ?"
                " ORDER BY execution_id",
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
                " FROM history GROUP BY instance_id ORDER BY instance_id",
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

    def key_at(self, position: int) -> tuple[str, int, int] | None:
        rows = self._all(
            "SELECT instance_id, execution_id, event_id FROM history WHERE rowid = ?", (position,)
        )
        return (str(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows else None

    def scan(self, batch: int) -> Iterator[list[RawRow]]:
        # Keyset pagination on duroxide's key: constant memory, and each page is
        # its own short read, so a long scan never pins the WAL.
        last: tuple[str | bytes, int, int] = ("", -1, -1)
        while True:
            rows = self._all(
                "SELECT rowid, instance_id, execution_id, event_id, event_type,"
                " CAST(event_data AS BLOB), created_at FROM history" + _AFTER_KEY,
                _key_args(last, batch),
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

    # -- schema evolution ------------------------------------------------------

    def _evolution_rows(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        """Rows of one of our tables; none when the tables were never created."""
        found = self._all(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"
            " AND name = 'eventstore_migration_log'"
        )
        return self._all(sql, args) if found[0][0] else []

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
