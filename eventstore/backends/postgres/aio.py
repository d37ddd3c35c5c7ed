"""The PostgreSQL backend for eventstore.aio: psycopg's AsyncConnectionPool.

The twin of PostgresBackend on the same table (`PostgresBackend.asynchronous`):
the same statements (`Queries`), the same session settings, the same write
lock taken the same way, so everything `writer.py` argues about the feed and
the concurrency check holds for async writers too, and the two kinds of
writer serialise on one lock. The common append goes in one call through the
same server-side function as the sync store's (`append_in_one_flight`,
one_flight.py). Driver errors are translated here, as there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ...errors import PositionsRenumberedError, ReadOnlyError, StoreBusyError, StoreError
from ...store.protocol import (
    CatalogDelta,
    CatalogRow,
    ExecutionRow,
    ExecutionSummary,
    FeedRow,
    NewEvents,
    StoredRow,
)
from ...store.row_types import OneFlightAppend
from .catalog import summary_of
from .feed_head import AsyncFeedHeadReads
from .locks import Statement, WriteLocks
from .one_flight import declined_if_partition_gone, new_partition
from .partitions import ShardPartitions
from .queries import Queries
from .target import mask
from .translate import DRIVER_ERRORS, translate
from .writer import (
    dropped_meanwhile,
    insert_chunks,
    last_event_query,
    last_of,
    partition_missing,
    rows_between_query,
)

if TYPE_CHECKING:
    from .backend import PostgresBackend

__all__ = ["AsyncPostgresBackend", "AsyncPostgresWriter"]


class AsyncPostgresWriter:
    """PostgresWriter's append statements, awaited; the locks (`locks.WriteLocks`)
    travel with the first statement, as there."""

    __slots__ = ("_con", "_cur", "_locks", "_partitions", "_q", "_shards")

    def __init__(
        self,
        con: psycopg.AsyncConnection[Any],
        cur: psycopg.AsyncCursor[Any],
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

    @property
    def opened(self) -> bool:
        return self._locks.opened

    async def _send(self, before: Statement, then: bytes = b"", args: Sequence[object] = ()) -> Any:
        cur = psycopg.AsyncClientCursor(self._con)
        await cur.execute(before[0] + then, (*before[1], *args))
        while cur.nextset():  # to the result of the last statement
            pass
        return cur

    async def _execute(self, query: bytes, args: Sequence[object] = ()) -> Any:
        """An append's body statement, under the locks `last_event` took."""
        if not self._locks.opened:
            await self._send(self._locks.for_table())
        return await self._cur.execute(query, args)

    async def _one(self, before: Statement, query: bytes, args: Sequence[object]) -> Any:
        if before[0]:
            return await (await self._send(before, query, args)).fetchone()
        return await (await self._cur.execute(query, args)).fetchone()

    async def last_event(
        self, instance_id: str, execution_id: int, shard: str = ""
    ) -> tuple[int, str]:
        args = (instance_id, execution_id)
        q = self._q
        before = self._locks.for_execution(instance_id, execution_id)
        query: bytes = q.last_event
        params: tuple[object, ...] = args
        if q.partitioned:  # as PostgresWriter.last_event
            found = await self._one(before, q.catalog_shard, args)
            before = (b"", ())
            query, params = last_event_query(q, args, found, shard)
        return last_of(await self._one(before, query, params), args, self._shards)

    async def rows_between(
        self, instance_id: str, execution_id: int, first: int, last: int
    ) -> list[StoredRow]:
        query, params = rows_between_query(
            self._q, (instance_id, execution_id, first, last), self._shards
        )
        cur = await self._execute(query, params)
        return [StoredRow(*r) for r in await cur.fetchall()]

    async def insert(self, batch: NewEvents) -> None:
        stored = self._shards.get((batch.instance_id, batch.execution_id))
        shard = stored or batch.shard or "root"
        partitions = self._partitions
        if partitions is not None:
            # Once per new day per process, on a connection of its own.
            await asyncio.to_thread(partitions.ensure, shard)
        try:
            for query, params in insert_chunks(batch, self._q, stored):
                await self._execute(query, params)
        except psycopg.errors.CheckViolation as exc:
            if partitions is None or not partition_missing(exc, batch, stored):
                raise
            # As PostgresWriter._start_over: the day was dropped by another process.
            partitions.forget(shard)
            if self._locks.nested:
                await asyncio.to_thread(partitions.ensure, shard)
                raise dropped_meanwhile(batch, shard) from None
            await self._con.execute(b"ROLLBACK")
            self._locks.restart()
            await asyncio.to_thread(partitions.ensure, shard)
            if (await self.last_event(batch.instance_id, batch.execution_id, shard))[0] != 0:
                raise dropped_meanwhile(batch, shard) from None
            for query, params in insert_chunks(batch, self._q, None):
                await self._execute(query, params)

    # -- the execution catalog (the sync writer's statements, awaited) ----------

    async def catalog_advance(self, delta: CatalogDelta) -> bool:
        row, previous = delta
        if previous == 0:
            await self._execute(self._q.catalog.put, row)
            return True
        instance_id, execution_id, _, _, status, _, ended, last, count, size, _ = row
        cur = await self._execute(
            self._q.catalog.advance,
            (status, ended, last, count, size, instance_id, execution_id, previous),
        )
        return bool(cur.rowcount == 1)

    async def catalog_put(self, rows: Sequence[CatalogRow]) -> None:
        for row in rows:
            await self._execute(self._q.catalog.put, row)

    async def catalog_remove(self, keys: Sequence[tuple[str, int]]) -> None:
        for key in keys:
            await self._execute(self._q.catalog.remove, key)

    async def execution_summary(
        self, instance_id: str, execution_id: int
    ) -> ExecutionSummary | None:
        cur = await self._execute(self._q.catalog.summary, (instance_id, execution_id))
        rows = await cur.fetchall()
        return summary_of(rows[0]) if rows else None


class AsyncPostgresBackend(AsyncFeedHeadReads):
    """History rows of a PostgresBackend's table, through an AsyncConnectionPool."""

    def __init__(self, twin: PostgresBackend) -> None:
        self.readonly = twin.readonly
        self.description = twin.description
        self._q = twin._q
        self._partitions = twin.partitions
        self._flight = twin._flight
        self.one_flight = twin.one_flight
        """Appends in one call (one_flight.py), as the twin found at its open."""
        self._schema = twin.schema
        self._lock_timeout_ms = twin._lock_timeout_ms
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            twin._conninfo,
            min_size=twin._pool.min_size,
            max_size=twin._pool.max_size,
            kwargs={"autocommit": True},
            configure=self._configure,
            timeout=twin._connect_timeout,
            open=False,
            name="eventstore-aio",
        )
        self._closed = False

    async def _configure(self, con: psycopg.AsyncConnection[Any]) -> None:
        """The sessions PostgresBackend._configure sets up: UTC, lock timeout, read-only."""
        await con.execute("SET TIME ZONE 'UTC'")
        await con.execute(
            sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{self._lock_timeout_ms}ms"))
        )
        if self.readonly:
            await con.execute("SET default_transaction_read_only = on")

    async def open(self) -> None:
        try:
            await self._pool.open(wait=True)
        except (psycopg.Error, PoolTimeout) as exc:
            await self._pool.close()
            raise translate(exc, f"cannot open {self.description}") from None

    async def close(self) -> None:
        self._closed = True
        await self._pool.close()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self._closed:
            raise StoreError(f"{self.description} is closed")
        try:
            pooled = self._pool.connection()
            con = await pooled.__aenter__()
        except PoolTimeout as exc:
            raise StoreBusyError(
                f"{self.description}: no connection available ({mask(str(exc))})"
            ) from None
        except psycopg.Error as exc:
            raise translate(exc, f"cannot connect to {self.description}") from None
        try:
            yield con
        except BaseException as exc:
            await pooled.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        else:
            await pooled.__aexit__(None, None, None)

    # -- writes ----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def writing(self, pinned: Any = None) -> AsyncIterator[AsyncPostgresWriter]:
        """A transaction of its own, or a savepoint on `pinned` (see writer.write_unit)."""
        if self.readonly:
            raise ReadOnlyError(f"{self.description} was opened read-only")
        try:
            if pinned is not None:
                async with pinned.transaction(), pinned.cursor() as cur:
                    locks = WriteLocks(self._q, self._schema, begin=False)
                    yield AsyncPostgresWriter(pinned, cur, self._q, locks, self._partitions)
                return
            async with self._connection() as con, con.cursor() as cur:
                locks = WriteLocks(self._q, self._schema, begin=True)
                writer = AsyncPostgresWriter(con, cur, self._q, locks, self._partitions)
                try:
                    yield writer
                except BaseException:
                    if writer.opened:
                        with contextlib.suppress(psycopg.Error):
                            await con.execute(b"ROLLBACK")
                    raise
                if writer.opened:  # COMMIT, then the notification (see writer.write_unit)
                    await psycopg.AsyncClientCursor(con).execute(self._q.commit)
        except DRIVER_ERRORS as exc:
            raise translate(exc, "write failed") from None

    async def append_in_one_flight(self, append: OneFlightAppend) -> bool:
        """`OneFlightAppends.append_in_one_flight`, awaited: the same call and
        values (`OneFlight`), the same partition made first and the same
        decline when it is gone (one_flight.py). The store never asks inside
        a transaction (store/async_route.py)."""
        if not self.one_flight:
            return False
        values = self._flight.values(append)
        if values is None:
            return False
        partitions = self._partitions
        shard = new_partition(partitions, append)
        if shard is not None and partitions is not None and not partitions.knows(shard):
            await asyncio.to_thread(partitions.ensure, shard)  # a connection of its own
        row = None
        try:
            async with self._connection() as con:
                with declined_if_partition_gone(partitions, append, shard):
                    # Its own transaction (autocommit); the notification follows the commit.
                    row = await (await con.execute(self._flight.call, values)).fetchone()
                    await con.execute(self._flight.notify)
        except DRIVER_ERRORS as exc:
            raise translate(exc, "write failed") from None
        return bool(row is not None and row[0])

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self.readonly:
            raise ReadOnlyError(f"{self.description} was opened read-only")
        async with self._connection() as con:
            outer = con.transaction()
            try:
                await outer.__aenter__()
            except psycopg.Error as exc:
                raise translate(exc, "cannot begin a transaction") from None
            try:
                yield con
            except BaseException as exc:  # the runtime's own errors pass through
                with contextlib.suppress(psycopg.Error):
                    await outer.__aexit__(type(exc), exc, exc.__traceback__)
                raise
            try:
                await outer.__aexit__(None, None, None)
                await con.execute(self._q.notify)
            except psycopg.Error as exc:
                raise translate(exc, "cannot commit") from None

    # -- reads -----------------------------------------------------------------

    async def _all(
        self, query: bytes, args: Sequence[object] = (), *, binary: bool = False
    ) -> list[tuple[Any, ...]]:
        async with self._connection() as con:
            try:
                return await (await con.execute(query, args, binary=binary)).fetchall()
            except DRIVER_ERRORS as exc:
                raise translate(exc, "read failed") from None

    async def execution_rows(self, instance_id: str, execution_id: int) -> list[ExecutionRow]:
        return await self._all(self._q.execution_rows, (instance_id, execution_id))

    async def position_of(self, instance_id: str, execution_id: int, event_id: int) -> int | None:
        rows = await self._all(self._q.position_of, (instance_id, execution_id, event_id))
        return int(rows[0][0]) if rows else None

    async def latest_execution(self, instance_id: str) -> int | None:
        value = (await self._all(self._q.latest_execution, (instance_id,)))[0][0]
        return int(value) if value is not None else None

    async def last_event_id(self, instance_id: str, execution_id: int) -> int:
        value = (await self._all(self._q.last_event_id, (instance_id, execution_id)))[0][0]
        return int(value) if value is not None else 0

    async def executions(self, instance_id: str) -> list[int]:
        return [int(r[0]) for r in await self._all(self._q.executions, (instance_id,))]

    async def instances(self) -> list[str]:
        return [str(r[0]) for r in await self._all(self._q.instances)]

    async def feed(self, after: int, limit: int) -> list[FeedRow]:
        query = self._q.page(self._q.feed, limit)
        rows = await self._all(query, self._q.after(after), binary=True)
        if (
            not rows
            and after
            and self._q.ordered
            and (await self._all(self._q.lost_position, (after, after)))[0][0]
        ):
            raise PositionsRenumberedError(
                f"{self.description}: no event is at feed position {after} (deleted?), so the"
                " feed cannot resume after it; resume from a position the store holds, or 0"
            )
        return rows

    async def key_at(self, position: int) -> tuple[str | bytes, int, int] | None:
        rows = await self._all(self._q.key_at, (position,))
        return (str(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows else None

    async def count(self) -> int:
        return int((await self._all(self._q.count))[0][0])
