"""PostgresBackend: the pool, the sessions, the table, reads and subscriptions."""

from __future__ import annotations

import contextlib
import operator
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from ...errors import (
    PositionsRenumberedError,
    ReadOnlyError,
    StoreError,
    TargetError,
)
from ...store.protocol import (
    ArchivedRow,
    FeedRow,
    IntegrityResult,
    MigrationLogRow,
    MigrationRun,
    PackedExecution,
    PackedFeed,
    RawRow,
    RowKey,
    SchemaVersionRow,
    WindowCounts,
)
from . import catalog, feed_head, window
from .aio import AsyncPostgresBackend
from .integrity import postgres_integrity
from .manifest import LIFECYCLE_TABLES, ManifestQueries, PostgresManifest
from .one_flight import OneFlight, OneFlightAppends, ensure_function, function_of
from .partitions import ShardPartitions
from .pruned import ExecutionReads, PrunedQueries
from .queries import EVOLUTION_TABLES, TABLE, Queries, channel_of
from .run_lock import run_lock
from .table import prepare
from .target import describe, parse_target
from .translate import DRIVER_ERRORS, translate
from .writer import PostgresWriter, lock_key, write_unit

__all__ = ["PostgresBackend"]

_CLOSE_CHECK_SECONDS: Final = 0.5
_PACKED_COLUMNS: Final = tuple(map(operator.itemgetter, range(6)))
"""A packed feed row's columns: position, instance, execution, event id, type, data."""
_POLL_SECONDS: Final = 0.05


class PostgresBackend(
    catalog.CatalogReads,
    feed_head.FeedHeadReads,
    PostgresManifest,
    ExecutionReads,
    OneFlightAppends,
):
    """History rows in a PostgreSQL table, through a connection pool.

    Options: `schema` (a plain identifier, default "public"; also accepted as
    `?schema=` in the URL), `pool_min_size` / `pool_max_size`, `lock_timeout_ms`
    (how long a writer waits for the write lock before StoreBusyError),
    `connect_timeout` (seconds).
    """

    def __init__(
        self,
        target: str,
        *,
        readonly: bool = False,
        schema: str | None = None,
        pool_min_size: int = 1,
        pool_max_size: int = 10,
        lock_timeout_ms: int = 30_000,
        connect_timeout: float = 10.0,
        partition_by_shard: bool = True,
    ) -> None:
        for name, value in (
            ("pool_min_size", pool_min_size),
            ("pool_max_size", pool_max_size),
            ("lock_timeout_ms", lock_timeout_ms),
        ):
            if type(value) is not int or value < 1:
                raise TargetError(f"{name} must be a positive integer, not {value!r}")
        self.readonly = readonly
        conninfo, self.schema, params = parse_target(target, schema)
        self.description = describe(params, self.schema)
        self._conninfo = conninfo
        self._lock_timeout_ms = int(lock_timeout_ms)
        self._connect_timeout = float(connect_timeout)
        self._lock_key = lock_key(self.schema)
        self._run_lock_key = lock_key(self.schema, "run")
        self._channel = channel_of(self.schema)  # LISTEN/NOTIFY (queries.channel_of)
        self._local = threading.local()
        self._listen_lock = threading.Lock()
        self._listener: psycopg.Connection[Any] | None = None
        self._listens = True
        self._closed = False
        positioned, ordered, partitioned = self._prepare_table(partition_by_shard)
        self._flight = OneFlight(self.schema, self._lock_key, self._channel, partitioned)
        self.partitions = (
            ShardPartitions(self.schema, self._connect, self.description) if partitioned else None
        )
        """The shard partitions (partitions.py); None: the table is not partitioned."""
        self.stable_positions = positioned
        # Only a table eventstore created keeps the catalog: a schema duroxide
        # created never gets a table of ours.
        self.can_keep_catalog = positioned
        self._q = Queries(self.schema, positioned, ordered, partitioned)
        self._manifest_q = ManifestQueries(self.schema, positioned, partitioned)
        self._pruned = PrunedQueries(self.schema) if partitioned else None
        try:
            self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
                conninfo,
                min_size=max(1, int(pool_min_size)),
                max_size=max(1, int(pool_max_size), int(pool_min_size)),
                kwargs={"autocommit": True},
                configure=self._configure,
                timeout=self._connect_timeout,
                open=True,
                name="eventstore",
            )
        except psycopg.Error as exc:
            raise translate(exc, f"cannot open {self.description}") from None

    # -- connections -----------------------------------------------------------

    def _configure(self, con: psycopg.Connection[Any]) -> None:
        """Session settings of every connection (UTC, read-only, lock timeout)."""
        con.execute("SET TIME ZONE 'UTC'")
        con.execute(
            sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{self._lock_timeout_ms}ms"))
        )
        if self.readonly:
            con.execute("SET default_transaction_read_only = on")

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            con = psycopg.connect(
                self._conninfo, autocommit=True, connect_timeout=max(1, int(self._connect_timeout))
            )
        except psycopg.Error as exc:
            raise translate(exc, f"cannot connect to {self.description}") from None
        try:
            self._configure(con)
        except psycopg.Error as exc:
            con.close()
            raise translate(exc, f"cannot configure a session on {self.description}") from None
        return con

    def _prepare_table(self, partition_by_shard: bool) -> tuple[bool, bool, bool]:
        """Check, create or bring up to date the history table (`table.prepare`)."""
        with contextlib.closing(self._connect()) as con:
            shape = prepare(
                con,
                self.schema,
                self.description,
                self._lock_key,
                self.readonly,
                partition_by_shard,
            )
            usable = not self.readonly and shape[1]
            try:  # appends in one round trip (one_flight.py)
                self.one_flight = ensure_function(
                    con, self.schema, self._lock_key, usable=usable, partitioned=shape[2]
                )
            except psycopg.Error as exc:
                raise translate(exc, f"cannot open {self.description}") from None
            return shape

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The thread's open transaction's connection, else one from the pool."""
        pinned: psycopg.Connection[Any] | None = getattr(self._local, "connection", None)
        if pinned is not None:
            yield pinned
            return
        con = self._checkout()  # one_flight.OneFlightAppends: the pool's errors, translated
        try:
            with con:  # as the pool's own connection(): commit, or roll back on an error
                yield con
        finally:
            self._pool.putconn(con)

    # -- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        # A waiter notices `_closed` within one wait slice (below) and lets go
        # of the listening connection.
        self._closed = True
        with self._listen_lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
        self._pool.close()

    def destroy(self) -> None:
        if self.readonly:
            raise ReadOnlyError(f"{self.description} was opened read-only")
        tables = [
            TABLE,
            *EVOLUTION_TABLES,
            *window.WINDOW_TABLES,
            *catalog.CATALOG_TABLES,
            *LIFECYCLE_TABLES,
        ]
        try:
            with self._connection() as con, con.transaction():
                for name in tables:
                    con.execute(
                        sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(self.schema, name))
                    )
                for partitioned in (False, True):
                    function = function_of(self.schema, partitioned)
                    con.execute(sql.SQL("DROP FUNCTION IF EXISTS {}").format(function))
                if self.schema != "public":
                    empty = con.execute(
                        "SELECT NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n"
                        " ON n.oid = c.relnamespace WHERE n.nspname = %s)",
                        (self.schema,),
                    ).fetchone()
                    if empty is not None and empty[0]:
                        con.execute(sql.SQL("DROP SCHEMA {}").format(sql.Identifier(self.schema)))
        except psycopg.Error as exc:
            raise translate(exc, f"cannot destroy {self.description}") from None
        finally:
            self.close()

    def asynchronous(self) -> AsyncPostgresBackend:
        """The same table through psycopg's AsyncConnectionPool (eventstore.aio)."""
        return AsyncPostgresBackend(self)

    # -- writes ----------------------------------------------------------------

    def writing(self) -> AbstractContextManager[PostgresWriter]:
        """One atomic unit of writing: a transaction, or a savepoint inside one.

        The writer takes the table's write lock before its first statement
        (see `eventstore.backends.postgres.writer`); inside `transaction()`
        the lock is then held until that transaction ends. A unit that sends
        nothing opens no transaction at all.
        """
        if self.readonly:
            raise ReadOnlyError(f"{self.description} was opened read-only")
        return write_unit(
            self._connection(),
            nested=getattr(self._local, "connection", None) is not None,
            queries=self._q,
            partitions=self.partitions,
            schema=self.schema,
        )

    evolving = writing
    """Evolution writes share the history's transaction and write lock."""

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """An outer transaction whose connection the embedding runtime may use."""
        if self.readonly:
            raise ReadOnlyError(f"{self.description} was opened read-only")
        if getattr(self._local, "connection", None) is not None:
            raise StoreError("transaction() cannot be nested")
        with self._connection() as con:
            outer = con.transaction()
            try:
                outer.__enter__()
            except psycopg.Error as exc:
                raise translate(exc, "cannot begin a transaction") from None
            self._local.connection = con
            try:
                yield con
            except BaseException as exc:
                # The runtime's own errors pass through untranslated.
                with contextlib.suppress(psycopg.Error):
                    outer.__exit__(type(exc), exc, exc.__traceback__)
                raise
            else:
                try:
                    outer.__exit__(None, None, None)
                    con.execute(self._q.notify)  # after the commit (Queries._compose_locks)
                except psycopg.Error as exc:
                    raise translate(exc, "cannot commit") from None
            finally:
                self._local.connection = None

    # -- reads -----------------------------------------------------------------

    def _all(
        self, query: bytes, args: Sequence[object] = (), *, binary: bool = False
    ) -> list[tuple[Any, ...]]:
        with self._connection() as con:
            try:
                return con.execute(query, args, binary=binary).fetchall()
            except DRIVER_ERRORS as exc:
                raise translate(exc, "read failed") from None

    def execution_packed(self, instance_id: str, execution_id: int) -> PackedExecution | None:
        return None  # rows arrive in one round trip already; see execution_rows

    def latest_execution(self, instance_id: str) -> int | None:
        value = self._all(self._q.latest_execution, (instance_id,))[0][0]
        return int(value) if value is not None else None

    def executions(self, instance_id: str) -> list[int]:
        return [int(r[0]) for r in self._all(self._q.executions, (instance_id,))]

    def instances(self) -> list[str]:
        return [str(r[0]) for r in self._all(self._q.instances)]

    def overview(self) -> list[tuple[str, int, int, int]]:
        return [(str(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in self._all(self._q.overview)]

    def feed(self, after: int, limit: int) -> list[FeedRow]:
        """Rows after the row at position `after` (0: from the start) in the
        feed's order, gap-free (the argument is in writer.py)."""
        return self._feed(self._q.feed, after, limit)

    def _feed(self, query: bytes, after: int, limit: int) -> list[FeedRow]:
        # Binary results: a page's integers arrive as 8 bytes each rather
        # than digits to parse (about 900 fewer client instructions per row,
        # callgrind); its text columns load the same either way.
        rows = self._all(self._q.page(query, limit), self._q.after(after), binary=True)
        if (
            not rows
            and after
            and self._q.ordered
            and self._all(self._q.lost_position, (after, after))[0][0]
        ):
            raise PositionsRenumberedError(
                f"{self.description}: no event is at feed position {after} (deleted?), so the"
                " feed cannot resume after it; resume from a position the store holds, or 0"
            )
        return rows

    def held_back(self) -> tuple[int, float | None]:
        """Committed events the feed holds back behind a transaction that is
        still open (writer.py): how many, and the age in seconds of the oldest
        (by its created_at); (0, None) when none are."""
        count, age = self._all(self._q.held_back)[0]
        return int(count), (None if age is None else max(0.0, float(age)))

    def feed_packed(self, after: int, limit: int) -> PackedFeed | None:
        """The feed page as columns, its event_data joined by newlines, for
        the store's one-call decode (`Codec.decode_feed`, which hands back
        any page it cannot take whole, e.g. a row whose JSON holds a newline,
        to the row route)."""
        rows = self._feed(self._q.feed_packed, after, limit)  # without created_at
        if not rows:
            return PackedFeed([], [], [], [], [], b"")
        # One C-level pass per column (a transposing zip(*rows) builds tuples
        # as long as the page, which the garbage collector then walks).
        positions, instance_ids, execution_ids, event_ids, types, data = [
            list(map(column, rows)) for column in _PACKED_COLUMNS
        ]
        return PackedFeed(
            positions, instance_ids, execution_ids, event_ids, types, "\n".join(data).encode()
        )

    def key_at(self, position: int) -> tuple[str | bytes, int, int] | None:
        rows = self._all(self._q.key_at, (position,))
        return (str(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows else None

    def scan(self, batch: int) -> Iterator[list[RawRow]]:
        # Keyset pagination on duroxide's key: constant memory, short reads.
        last: tuple[str, int, int] = ("", -1, -1)
        while True:
            rows = self._all(self._q.scan, (*last, batch))
            if not rows:
                return
            page = [RawRow(*r) for r in rows]
            yield page
            tail = page[-1]
            last = (tail.instance_id, tail.execution_id, tail.event_id)

    def count(self) -> int:
        return int(self._all(self._q.count)[0][0])

    def integrity_check(self) -> IntegrityResult:
        with self._connection() as con:
            try:
                qualified = sql.Identifier(self.schema, TABLE).as_string(con)
                return postgres_integrity(con, qualified)
            except psycopg.Error as exc:
                raise translate(exc, "the integrity check failed") from None

    def migration_lock(self, what: str) -> contextlib.AbstractContextManager[None]:
        """The table's run lock (one migration, backfill or rollback at a time);
        see `run_lock.run_lock`."""
        if self.readonly:
            raise ReadOnlyError(f"{self.description} was opened read-only")
        return run_lock(self._connect(), self._run_lock_key, self.description, what)

    # -- schema evolution ------------------------------------------------------

    def _evolution_rows(self, query: bytes, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Rows of one of our tables; none when the tables were never created."""
        exists = self._all(b"SELECT to_regclass(%s) IS NOT NULL", (self._q.evolution.log_table,))
        return self._all(query, args) if exists[0][0] else []

    def schema_versions(self) -> list[SchemaVersionRow]:
        return [SchemaVersionRow(*r) for r in self._evolution_rows(self._q.evolution.versions)]

    def migration_runs(self) -> list[MigrationRun]:
        return [MigrationRun(*r) for r in self._evolution_rows(self._q.evolution.runs)]

    def migration_log(self, run_id: str) -> list[MigrationLogRow]:
        return [
            MigrationLogRow(*r) for r in self._evolution_rows(self._q.evolution.run_log, (run_id,))
        ]

    def archived_rows(self, run_id: str, after: RowKey, limit: int) -> list[ArchivedRow]:
        return [
            ArchivedRow(*r)
            for r in self._evolution_rows(self._q.evolution.archived, (run_id, *after, limit))
        ]

    def write_generation(self) -> str | None:  # the dual-write window (window.py)
        return window.recorded(self._all, self._q.window)

    def window_counts(self) -> WindowCounts:
        return window.counts(self._all, self._q.window)

    # -- subscriptions ---------------------------------------------------------

    def wait_for_events(self, after: int, timeout: float) -> bool:
        """Wait until the feed has an event after position `after`, at most `timeout` s.

        Returns True as soon as such an event is committed (at once if one
        already is), False when `timeout` passed without one. A dedicated
        connection LISTENs on the table's channel, and every write
        transaction NOTIFYs it after its commit. The channel is subscribed
        before the feed is checked, so no commit can slip between the check
        and the wait; the feed is checked again when a notification arrives,
        and at the latest every half second without one (`_wait` says why).
        Safe to call from several threads (they take turns on the listening
        connection). Returns False promptly (within half a second) when the
        store is closed meanwhile.
        """
        deadline = time.monotonic() + max(0.0, float(timeout))
        with self._listen_lock:
            if self._closed:
                raise StoreError(f"{self.description} is closed")
            try:
                return self._wait(self._listening(), after, deadline)
            except psycopg.Error as exc:
                if self._listener is not None:
                    self._listener.close()
                    self._listener = None
                raise translate(exc, "waiting for events failed") from None

    def _wait(self, con: psycopg.Connection[Any], after: int, deadline: float) -> bool:
        """The loop of `wait_for_events`. While committed rows are held back
        (writer.py), the transaction that releases them may never notify; and
        a hot standby cannot LISTEN (nor does a primary's NOTIFY reach it).
        Then the feed is checked again on a timer, every
        `_POLL_SECONDS`, instead of on notifications.

        Otherwise on a notification, and at the end of every slice without
        one: a notification can be lost (flight_wire.py, "A notification
        that never comes"); this timer is the guarantee, the notification
        only the fast path."""
        check = True
        held = False
        while True:
            if check:
                row = con.execute(self._q.has_after, self._q.after(after)).fetchone()
                if row is not None and row[0]:
                    return True
                held = bool(row is not None and row[1]) or not self._listens
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closed:
                return False
            # Waiting in slices only lets close() interrupt us.
            slice_ = min(remaining, _POLL_SECONDS if held else _CLOSE_CHECK_SECONDS)
            # Notified or not, the feed is checked again (the docstring: a
            # notification can be lost; the timer is what guarantees a wake-up).
            for _ in con.notifies(timeout=slice_, stop_after=1):
                break
            check = True

    def _listening(self) -> psycopg.Connection[Any]:
        if self._listener is None or self._listener.closed:
            con = self._connect()
            try:
                row = con.execute("SELECT pg_is_in_recovery()").fetchone()
                self._listens = not (row is not None and row[0])
                if self._listens:  # a hot standby cannot LISTEN: it polls (`_wait`)
                    con.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            except psycopg.Error:
                con.close()
                raise
            self._listener = con
        return self._listener
