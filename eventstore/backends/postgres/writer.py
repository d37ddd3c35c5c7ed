"""Write units of the PostgreSQL backend, and why the global feed never skips an event.

Writers, and the order they need
--------------------------------

An append takes its table's advisory key shared and its execution's key
exclusively (`locks.py`), then reads the execution's last event, checks and
inserts: writers of different executions run side by side, writers of one
execution take turns. Feed positions come from an identity column (a
sequence), drawn at insert, and transactions commit in their own order, so
positions no longer follow commit order: T1 draws 9 and stays open while T2
draws 10 and commits. A feed read by position would show 10, resume after
10, and never show 9.

The feed's order: (transaction id, position), below the snapshot's horizon
---------------------------------------------------------------------------

Every row records the id of the transaction that wrote it
(`eventstore_xid xid8 DEFAULT pg_current_xact_id()`: the top-level
transaction's 64-bit id, also from inside a savepoint). The feed
(`Queries._compose_feed`) returns rows in (eventstore_xid, position) order,
and only rows whose transaction id is below the reading statement's snapshot
horizon, `pg_snapshot_xmin(pg_current_snapshot())`: the lowest transaction
id still running when the snapshot was taken. Why that is gap-free:

1. Every transaction with an id below the horizon has ended, and the
   snapshot sees every committed one (the horizon is computed together with
   the snapshot). So the set of rows with a transaction id below a horizon
   is final: nothing can join it later, whatever commits afterwards.
2. A transaction that has no id yet gets one at its first write, from the
   counter, which is above every horizon already taken. So rows written
   later always come after every row already returned.
3. Hence each page is a prefix (in that order) of everything the feed will
   ever hold past its start, and a reader that resumes strictly after the
   (transaction id, position) of its last record neither skips a row nor
   sees one twice. Positions are unique, so the order is total. Rows of
   rolled-back transactions never appear; rows of transactions that ended
   before the column existed carry id 0 and come first, in position order,
   which was their commit order under the earlier table-wide lock.
4. The same holds on a hot standby: it derives its snapshots from the
   primary's WAL, and treats every id it has not seen end (including ids
   skipped over by the records it replayed) as running, so its horizon is
   never above a transaction that is still open on the primary.

The resume token stays the position: `feed(after=position)` looks the row's
transaction id up by position (the unique index, one probe per page), so
checkpoints and `read_all(after=record)` keep working; what changes is that
positions no longer increase along the feed on PostgreSQL. A position whose
row is gone cannot be resumed from (`PositionsRenumberedError`).

Per execution, feed order must agree with event-id order. A plain append
gets its transaction id at its insert, after it holds the execution's key,
so after the previous writer of that execution committed: its id is higher.
Only inside `transaction()` can the runtime's own SQL have got the id
earlier, before a writer of the same execution committed with a higher id;
`last_event` reads that case with the last row and the append is refused
with StoreBusyError (the runtime retries its transaction, which then gets a
fresh id), before it writes.

The price: one long-open transaction that has written anything anywhere in
the cluster holds the horizon, and the feed (not the writers) waits for it:
committed rows behind it are held back until it ends. `held_back` measures
that (how many committed rows, how old the oldest), and `wait_for_events`
re-checks on a short timer while rows are held back, since the transaction
that releases them may never notify.

Rows that other programs insert without taking these locks (duroxide itself,
on a table it shares with us) get transaction ids too, so they stay in the
feed's order; only the per-execution checks do not cover them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from ...errors import StoreBusyError
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
from .locks import Statement, WriteLocks, lock_key
from .partitions import ShardPartitions
from .queries import INSERT_ROWS, Queries
from .translate import DRIVER_ERRORS, translate

__all__ = [
    "PostgresWriter",
    "dropped_meanwhile",
    "insert_chunks",
    "lock_key",
    "partition_missing",
    "refuse_later_writer",
    "write_unit",
]


def last_event_query(
    queries: Queries, args: tuple[str, int], found: tuple[Any, ...] | None, derived: str
) -> tuple[bytes, tuple[object, ...]]:
    """A partitioned table: where the execution's last event can be.

    Its rows are in the shard derived from its first event (the catalog's
    shard, or `derived` when this batch starts it) or in root (imports,
    other programs' rows, legacy rows until rebase). With neither a catalog
    row nor a batch starting at event 1 (the catalog row of an execution
    `transaction()` appended to follows that commit), every partition."""
    if found is not None:
        return queries.last_event_in, (*args, str(found[0]))
    if derived:
        return queries.last_event_in, (*args, derived)
    return queries.last_event, args


def rows_between_query(
    queries: Queries, args: tuple[str, int, int, int], shards: dict[tuple[str, int], str]
) -> tuple[bytes, tuple[object, ...]]:
    shard = shards.get((args[0], args[1]))
    if shard is None:
        return queries.rows_between, args
    return queries.rows_between_in, (*args, shard)


def last_of(
    row: tuple[Any, ...] | None, args: tuple[str, int], shards: dict[tuple[str, int], str]
) -> tuple[int, str]:
    """(last event id, its type) from the last-event row; the stored shard
    noted for the insert; the later-writer refusal (module docstring)."""
    if row is None:
        return 0, ""
    if row[2]:
        raise refuse_later_writer(*args)
    if row[3] is not None:
        shards[args] = str(row[3])
    return int(row[0]), str(row[1])


def insert_chunks(
    batch: NewEvents, queries: Queries, stored_shard: str | None
) -> Iterator[tuple[bytes, list[object]]]:
    """The multi-row INSERTs of a batch: one statement per chunk rather than
    a pipelined executemany, which psycopg drives statement by statement. On
    a partitioned table every row names the shard: the stored execution's
    (read with its last event), else the one the batch derived, else root."""
    instance_id, execution_id, ids, types, data, new_shard = batch
    shard = stored_shard or new_shard or "root"
    extra: tuple[str, ...] = (shard,) if queries.partitioned else ()
    for start in range(0, len(ids), INSERT_ROWS):
        params: list[object] = []
        for event_id, event_type, event_data in zip(
            ids[start : start + INSERT_ROWS],
            types[start : start + INSERT_ROWS],
            data[start : start + INSERT_ROWS],
            strict=True,
        ):
            params += (instance_id, execution_id, event_id, event_type, event_data.decode())
            params += extra
        yield queries.insert_rows(len(params) // queries.row_params), params


def partition_missing(exc: Exception, batch: NewEvents, stored: str | None) -> bool:
    """The insert of a new execution failed because its day's partition, which
    this process made or saw earlier, is gone: another process (retention)
    dropped it. SQLSTATE 23514 with PostgreSQL's routing message."""
    return (
        stored is None
        and isinstance(exc, psycopg.errors.CheckViolation)
        and "no partition of relation" in str(exc)
    )


def dropped_meanwhile(batch: NewEvents, shard: str) -> StoreBusyError:
    return StoreBusyError(
        f"cannot append to {batch.instance_id!r} execution {batch.execution_id}: the"
        f" partition of shard {shard} was dropped by another process and is made again;"
        " nothing was written, retry"
    )


def refuse_later_writer(instance_id: str, execution_id: int) -> StoreBusyError:
    """The append inside `transaction()` whose transaction id is below the
    execution's last writer's (see the module docstring)."""
    return StoreBusyError(
        f"cannot append to {instance_id!r} execution {execution_id} in this transaction: an"
        " append to it committed after this transaction began writing, so the feed would"
        " order them wrongly; nothing was written, retry the transaction"
    )


class PostgresWriter(CatalogWrites):
    """The statements of one write unit (see `PostgresBackend.writing`).

    The unit opens lazily, with its first statement: BEGIN (at top level; a
    unit inside `transaction()` is a savepoint already), the locks it needs
    (`locks.WriteLocks`) and the notification travel in front of that
    statement, in one round trip. Every statement goes through `_execute`,
    `_executemany` or `last_event`, which send the locks first: nothing of
    the unit reaches the table before they are held, wherever the next
    method is added. The statements of an append's body (`append=True`) run
    under the execution's key `last_event` took; any other statement takes
    the table's key exclusively.

    An append's first question, the execution's last event, rides with the
    locks: they and the read are statements of one simple query. Under READ
    COMMITTED each statement of a simple query takes its own snapshot when it
    starts, so the read's snapshot is taken after the locks are granted and
    sees every append that committed before: the check and the insert see
    the same history.
    """

    __slots__ = ("_con", "_cur", "_locks", "_partitions", "_q", "_shards")

    def __init__(
        self,
        con: psycopg.Connection[Any],
        cur: psycopg.Cursor[Any],
        queries: Queries,
        locks: WriteLocks,
        partitions: ShardPartitions | None = None,
    ) -> None:
        self._con = con
        self._cur = cur
        self._q = queries
        self._locks = locks
        self._partitions = partitions
        self._shards: dict[tuple[str, int], str] = {}
        """The stored shard of each execution this unit read (partitioned table)."""

    @property
    def opened(self) -> bool:
        """Whether the opening was sent (set before sending: a failed BEGIN
        or lock still asks for a ROLLBACK)."""
        return self._locks.opened

    def _send(self, before: Statement, then: bytes = b"", args: Sequence[object] = ()) -> Any:
        """`before` and `then` as one simple query (psycopg binds the values
        client-side and quotes them; the text is our own); the last result."""
        cur = psycopg.ClientCursor(self._con)
        cur.execute(before[0] + then, (*before[1], *args))
        while cur.nextset():  # to the result of the last statement
            pass
        return cur

    def _execute(
        self, query: bytes, args: Sequence[object] = (), *, append: bool = False
    ) -> psycopg.Cursor[Any]:
        if not (append and self._locks.opened):
            before = self._locks.for_table()
            if before[0]:
                self._send(before)
        return self._cur.execute(query, args)

    def _executemany(
        self, query: bytes, rows: Sequence[Sequence[object]], *, append: bool = False
    ) -> None:
        if not (append and self._locks.opened):
            before = self._locks.for_table()
            if before[0]:
                self._send(before)
        self._cur.executemany(query, rows)

    def last_event(self, instance_id: str, execution_id: int, shard: str = "") -> tuple[int, str]:
        args = (instance_id, execution_id)
        q = self._q
        before = self._locks.for_execution(instance_id, execution_id)
        query: bytes = q.last_event
        params: tuple[object, ...] = args
        if q.partitioned:  # the shards to look in first (Queries._compose_pruned)
            if before[0]:
                found = self._send(before, q.catalog_shard, args).fetchone()
                before = (b"", ())
            else:
                found = self._cur.execute(q.catalog_shard, args).fetchone()
            query, params = last_event_query(q, args, found, shard)
        if before[0]:
            row = self._send(before, query, params).fetchone()
        else:
            row = self._cur.execute(query, params).fetchone()
        return last_of(row, args, self._shards)

    def rows_between(
        self, instance_id: str, execution_id: int, first: int, last: int
    ) -> list[StoredRow]:
        query, params = rows_between_query(
            self._q, (instance_id, execution_id, first, last), self._shards
        )
        rows = self._execute(query, params, append=True)
        return [StoredRow(*r) for r in rows.fetchall()]

    def insert(self, batch: NewEvents) -> None:
        stored = self._shards.get((batch.instance_id, batch.execution_id))
        shard = stored or batch.shard or "root"
        if self._partitions is not None:
            self._partitions.ensure(shard)
        try:
            for query, params in insert_chunks(batch, self._q, stored):
                self._execute(query, params, append=True)
        except psycopg.errors.CheckViolation as exc:
            if self._partitions is None or not partition_missing(exc, batch, stored):
                raise
            self._start_over(batch, shard, self._partitions)

    def _start_over(self, batch: NewEvents, shard: str, partitions: ShardPartitions) -> None:
        """The day's partition this process knew was dropped by another
        (retention): make it again and retry the append once, in a new
        transaction, under the same locks and checks. The failed insert was
        the unit's first write (an append's reads come before it), and the
        execution was new: if it still is, the checks the store made hold
        and the insert is redone; if another writer created it meanwhile,
        StoreBusyError (nothing written). A unit inside `transaction()`
        cannot start over: StoreBusyError, and the retry of the transaction
        finds the partition."""
        partitions.forget(shard)
        if self._locks.nested:
            partitions.ensure(shard)
            raise dropped_meanwhile(batch, shard)
        self._con.execute(b"ROLLBACK")
        self._locks.restart()
        partitions.ensure(shard)
        if self.last_event(batch.instance_id, batch.execution_id, shard)[0] != 0:
            raise dropped_meanwhile(batch, shard)
        for query, params in insert_chunks(batch, self._q, None):
            self._execute(query, params, append=True)

    def insert_or_compare(self, row: InsertRow) -> str | None:
        args: Sequence[object] = (*row, row[0], row[1]) if self._q.partitioned else row
        if self._execute(self._q.insert_or_nothing, args).fetchone() is not None:
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

    def _append_rows(self, query: bytes, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self._execute(query, args, append=True).fetchall()

    def recorded_generation(self) -> str | None:
        # Read again under the append's locks: a cutover's switch holds the
        # table's key exclusively, so it is either all before or all after.
        return window.recorded(self._append_rows, self._q.window)

    def set_write_generation(self, generation: str, at: str) -> None:
        for ddl in self._q.window.ddl:
            self._execute(ddl)
        self._execute(self._q.window.set_generation, (generation, at))

    def insert_shadow(self, batch: NewEvents) -> None:
        instance_id, execution_id, ids, types, data, _ = batch
        self._executemany(
            self._q.window.insert_shadow,
            [
                (instance_id, execution_id, event_id, event_type, event_data.decode())
                for event_id, event_type, event_data in zip(ids, types, data, strict=True)
            ],
            append=True,
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
    schema: str,
    partitions: ShardPartitions | None = None,
) -> Iterator[PostgresWriter]:
    """A write unit on a connection: a savepoint when `nested` (inside the
    runtime's transaction), else a transaction of its own, opened lazily.

    A transaction of its own ends with `queries.commit`: COMMIT, then the
    notification for `wait_for_events` as a transaction of its own, in one
    simple query (see `Queries._compose_locks`); waiters are woken only
    after the commit, never by a rollback, and a commit that wrote nothing
    (an idempotent retry) wakes them for a re-check only. A savepoint sends
    none: `transaction()` notifies after the runtime's transaction commits.
    """
    with connection as con:
        try:
            if nested:
                with con.transaction(), con.cursor() as cur:
                    locks = WriteLocks(queries, schema, begin=False)
                    yield PostgresWriter(con, cur, queries, locks, partitions)
                return
            with con.cursor() as cur:
                locks = WriteLocks(queries, schema, begin=True)
                writer = PostgresWriter(con, cur, queries, locks, partitions)
                try:
                    yield writer
                except BaseException:
                    if writer.opened:
                        with contextlib.suppress(psycopg.Error):
                            con.execute(b"ROLLBACK")
                    raise
                if writer.opened:
                    psycopg.ClientCursor(con).execute(queries.commit)
        except DRIVER_ERRORS as exc:
            raise translate(exc, "write failed") from None
