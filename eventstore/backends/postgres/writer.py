"""Write units of the PostgreSQL backend: one transaction (or savepoint) under the table's lock.

The write lock, and why the global feed never skips an event
------------------------------------------------------------

Feed positions come from an identity column (a sequence): a value is taken
when a row is inserted, but transactions commit in their own order. Without
care, T1 could take position 9 and stay open while T2 takes 10 and commits; a
reader would then see 10, resume after 10, and never see 9 when T1 commits.

We prevent that by serialising the writers of a table. Each write
transaction (`writing()`, and `transaction()` from its first append) first
takes `pg_advisory_xact_lock(key)`, where key is derived from the
schema-qualified table name, and only then reads the last event id and
inserts; PostgreSQL releases the lock when the transaction ends. So:

1. Positions are drawn only while the lock is held, hence a transaction that
   draws positions after another one started drawing also waits for that one
   to end: if T1 drew 9, T2 cannot draw 10 before T1 committed or rolled back.
2. At commit PostgreSQL makes the transaction visible (ProcArrayEndTransaction)
   before it releases its locks (ResourceOwnerRelease), so when T2 is visible,
   T1 is visible too: any snapshot that contains position 10 contains every
   committed position below it.
3. Hence a feed query `position > after ORDER BY position` can never return a
   row and later see a smaller position appear: the feed is gap-free and in
   commit order. (Positions of rolled-back transactions are simply absent.)

This costs write parallelism (one writer per table at a time, like SQLite
and like the `eventsourcing` library's table lock), not read parallelism:
readers take no lock. The alternative of an `xid8` column filtered by
`pg_snapshot_xmin(pg_current_snapshot())` alone is not sound here, because
inside `transaction()` the runtime's own SQL may assign the transaction id long
before the append draws its positions, so transaction-id order and position
order can disagree (see proposals/postgres-backend.md).

Rows that other programs insert without taking this lock (duroxide itself,
on a table it shares with us) are outside this guarantee.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import psycopg

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
from . import window
from .catalog import CatalogWrites
from .queries import INSERT_ROWS, TABLE, Queries
from .translate import DRIVER_ERRORS, translate

__all__ = ["PostgresWriter", "lock_key", "write_unit"]


def lock_key(schema: str, purpose: str = "") -> int:
    """A stable signed 64-bit advisory-lock key for one table (and purpose)."""
    name = f"eventstore:{schema}.{TABLE}" + (f":{purpose}" if purpose else "")
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresWriter(CatalogWrites):
    """The statements of one write unit (see `PostgresBackend.writing`).

    The unit opens lazily, with its first statement: BEGIN (at top level; a
    unit inside `transaction()` is a savepoint already) and the table's write
    lock travel in front of that statement, in one round trip. Every
    statement goes through `_execute`, `_executemany` or `last_event_id`,
    which send the opening first: nothing of the unit reaches the table
    before the lock is held, wherever the next method is added.

    An append's first question, the execution's last event id, rides with the
    opening: BEGIN, the lock and the read are statements of one simple query.
    Under READ COMMITTED each statement of a simple query takes its own
    snapshot when it starts, so the read's snapshot is taken after the lock
    is granted and sees every append that committed before: the check and the
    insert see the same history.
    """

    __slots__ = ("_con", "_cur", "_lock_args", "_opening", "_q", "opened")

    def __init__(
        self,
        con: psycopg.Connection[Any],
        cur: psycopg.Cursor[Any],
        queries: Queries,
        lock_args: tuple[int, str],
        *,
        begin: bool,
    ) -> None:
        self._con = con
        self._cur = cur
        self._q = queries
        self._lock_args = lock_args
        self._opening = (b"BEGIN; " if begin else b"") + queries.lock
        self.opened = False
        """Whether the opening was sent (set before sending: a failed BEGIN
        or lock still asks for a ROLLBACK)."""

    def _open(self, then: bytes = b"", args: Sequence[object] = ()) -> psycopg.Cursor[Any]:
        """Send the opening, and `then` in the same simple query (psycopg
        binds the values client-side and quotes them; the text is our own)."""
        self.opened = True
        cur = psycopg.ClientCursor(self._con)
        cur.execute(self._opening + then, (*self._lock_args, *args))
        while cur.nextset():  # to the result of the last statement
            pass
        return cur

    def _execute(self, query: bytes, args: Sequence[object] = ()) -> psycopg.Cursor[Any]:
        if not self.opened:
            self._open()
        return self._cur.execute(query, args)

    def _executemany(self, query: bytes, rows: Sequence[Sequence[object]]) -> None:
        if not self.opened:
            self._open()
        self._cur.executemany(query, rows)

    def last_event(self, instance_id: str, execution_id: int) -> tuple[int, str]:
        args = (instance_id, execution_id)
        if self.opened:
            row = self._cur.execute(self._q.last_event, args).fetchone()
        else:
            row = self._open(b"; " + self._q.last_event, args).fetchone()
        return (int(row[0]), str(row[1])) if row else (0, "")

    def rows_between(
        self, instance_id: str, execution_id: int, first: int, last: int
    ) -> list[StoredRow]:
        rows = self._execute(self._q.rows_between, (instance_id, execution_id, first, last))
        return [StoredRow(*r) for r in rows.fetchall()]

    def insert(self, batch: NewEvents) -> None:
        # One multi-row INSERT per chunk: one statement instead of a pipelined
        # executemany, which psycopg drives statement by statement.
        instance_id, execution_id, ids, types, data = batch
        for start in range(0, len(ids), INSERT_ROWS):
            params: list[object] = []
            for event_id, event_type, event_data in zip(
                ids[start : start + INSERT_ROWS],
                types[start : start + INSERT_ROWS],
                data[start : start + INSERT_ROWS],
                strict=True,
            ):
                params += (instance_id, execution_id, event_id, event_type, event_data.decode())
            self._execute(self._q.insert_rows(len(params) // 5), params)

    def insert_or_compare(self, row: InsertRow) -> str | None:
        if self._execute(self._q.insert_or_nothing, row).fetchone() is not None:
            return None
        found = self._execute(self._q.event_data_at, row[:3]).fetchone()
        return str(found[0]) if found else None

    # -- schema evolution ------------------------------------------------------

    def ensure_evolution_tables(self) -> None:
        for ddl in self._q.evolution.ddl:
            self._execute(ddl)

    def record_schema_version(self, row: SchemaVersionRow) -> bool:
        return self._execute(self._q.evolution.record_version, row).fetchone() is not None

    def set_schema_metadata(self, version_id: str, metadata: str) -> None:
        self._execute(self._q.evolution.set_metadata, (metadata, version_id))

    def save_migration_run(self, run: MigrationRun) -> None:
        self._execute(self._q.evolution.save_run, run)

    def rows_after(self, after: RowKey, limit: int) -> list[RawRow]:
        rows = self._execute(self._q.evolution.rows_after, (*after, limit))
        return [RawRow(*r) for r in rows.fetchall()]

    def archive_rows(self, run_id: str, rows: Sequence[ArchivedRow]) -> None:
        self._executemany(self._q.evolution.archive, [(run_id, *row) for row in rows])

    def update_rows_by_key(self, changes: Sequence[ArchivedRow]) -> None:
        self._executemany(
            self._q.evolution.update_by_key,
            [
                (r.event_type, r.event_data, r.instance_id, r.execution_id, r.event_id)
                for r in changes
            ],
        )

    def log_migration(self, entries: Sequence[MigrationLogRow]) -> None:
        self._executemany(self._q.evolution.log, entries)

    # -- the dual-write window (window.py) ---------------------------------------

    def _rows(self, query: bytes, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self._execute(query, args).fetchall()

    def recorded_generation(self) -> str | None:
        return window.recorded(self._rows, self._q.window)

    def set_write_generation(self, generation: str, at: str) -> None:
        for ddl in self._q.window.ddl:
            self._execute(ddl)
        self._execute(self._q.window.set_generation, (generation, at))

    def insert_shadow(self, batch: NewEvents) -> None:
        instance_id, execution_id, ids, types, data = batch
        self._executemany(
            self._q.window.insert_shadow,
            [
                (instance_id, execution_id, event_id, event_type, event_data.decode())
                for event_id, event_type, event_data in zip(ids, types, data, strict=True)
            ],
        )

    def shadow_rows(self, first: RowKey, last: RowKey) -> dict[RowKey, tuple[str, str]]:
        q = self._q.window
        if window.recorded(self._rows, q) is None:
            return {}
        rows = self._rows(q.shadow_rows, (*first, *last))
        return {(r[0], int(r[1]), int(r[2])): (str(r[3]), str(r[4])) for r in rows}


@contextlib.contextmanager
def write_unit(
    connection: AbstractContextManager[psycopg.Connection[Any]],
    *,
    nested: bool,
    queries: Queries,
    lock_args: tuple[int, str],
) -> Iterator[PostgresWriter]:
    """A write unit on a connection: a savepoint when `nested` (inside the
    runtime's transaction), else a transaction of its own, opened lazily.

    The notification for `wait_for_events` rides with the lock: PostgreSQL
    delivers it when, and only if, the outermost transaction commits; a
    commit that wrote nothing (an idempotent retry) wakes waiters for a
    re-check only.
    """
    with connection as con:
        try:
            if nested:
                with con.transaction(), con.cursor() as cur:
                    yield PostgresWriter(con, cur, queries, lock_args, begin=False)
                return
            with con.cursor() as cur:
                writer = PostgresWriter(con, cur, queries, lock_args, begin=True)
                try:
                    yield writer
                except BaseException:
                    if writer.opened:
                        with contextlib.suppress(psycopg.Error):
                            con.execute(b"ROLLBACK")
                    raise
                if writer.opened:
                    con.execute(b"COMMIT")
        except DRIVER_ERRORS as exc:
            raise translate(exc, "write failed") from None
