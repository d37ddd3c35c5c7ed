"""AsyncHistoryStore: HistoryStore's API as coroutines, appends in group commits.

It wraps a HistoryStore and adds no rules of its own: an append is checked,
filled and encoded by the store's `_Appender.prepare` in the calling task,
then checked against the stored rows and inserted by `write_prepared`.

On SQLite that runs inside a group's transaction (store/async_group.py), and
reads are the store's reads: short indexed reads on a connection of their
own (WAL), run on the loop, since a hop to a thread would cost more than the
read. On a backend with an asyncio twin (PostgreSQL) every call is awaited
through `AsyncRoute` (store/async_route.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

from ..errors import StoreError
from ..events import Event
from . import feed_api
from .async_group import AsyncGroup
from .async_protocol import AsyncHasFeedHead
from .async_route import AsyncPagedFeed, AsyncRoute
from .grouping import GroupedAppender
from .history import HistoryStore
from .protocol import GroupCommitting, HasAsyncTwin
from .results import AppendResult, FeedRecord
from .row_types import RawRow

__all__ = ["AsyncFeed", "AsyncHistoryStore", "AsyncTransaction"]

T = TypeVar("T")

_IN_TRANSACTION: ContextVar[tuple[AsyncHistoryStore, object, AsyncTransaction] | None] = ContextVar(
    "eventstore_async_transaction", default=None
)
"""(store, task, transaction) while that task has the store's transaction() open:
its appends join it. The task is named because tasks it starts inherit the
variable, and their appends must wait for the transaction like any other's."""


def _open_here(store: AsyncHistoryStore) -> AsyncTransaction | None:
    found = _IN_TRANSACTION.get()
    if found is not None and found[0] is store and found[1] is asyncio.current_task():
        return found[2]
    return None


_FEED_TURN = 1000
"""read_all gives the loop a turn after this many records."""

_Append = Callable[[str, int, Iterable[Event], "int | None"], Awaitable[AppendResult]]


class AsyncTransaction:
    """An open transaction: appends and the runtime's own SQL, as one."""

    def __init__(self, connection: Any, append: _Append) -> None:
        self.connection = connection
        """The backend's connection (sqlite3.Connection, psycopg.AsyncConnection)."""
        self._append = append
        self.appended: list[tuple[list[Event], float]] = []
        """What this transaction appended, reported to the observer on commit."""

    async def append(
        self,
        instance_id: str,
        execution_id: int,
        events: Iterable[Event],
        *,
        expected_last_event_id: int | None = None,
    ) -> AppendResult:
        return await self._append(instance_id, execution_id, events, expected_last_event_id)


class AsyncFeed:
    """`read_all` as an async iterator (the global feed, in commit order)."""

    def __init__(self, records: Iterator[FeedRecord]) -> None:
        self._records = records
        self._count = 0

    def __aiter__(self) -> AsyncFeed:
        return self

    async def __anext__(self) -> FeedRecord:
        self._count += 1
        if self._count % _FEED_TURN == 0:
            await asyncio.sleep(0)  # a long feed does not hold the loop
        try:
            return next(self._records)
        except StopIteration:
            raise StopAsyncIteration from None


class AsyncHistoryStore:
    """Orchestration histories for asyncio: `await eventstore.aio.open(target)`.

    The same contract and errors as HistoryStore. On SQLite, appends of
    concurrent tasks commit together; each `await append(...)` returns only
    once the commit holding it is done, and a refused append
    (ConcurrencyError, a ValidationError) fails alone. On PostgreSQL every
    call is awaited on psycopg's AsyncConnectionPool.
    """

    def __init__(self, store: HistoryStore, route: AsyncRoute | None = None) -> None:
        self.sync = store
        """The underlying HistoryStore, for what has no coroutine here (import,
        export, verify, evolution): it blocks the loop while it runs."""
        self._route = route
        backend = store.backend
        grouped = isinstance(backend, GroupCommitting) and backend.group_commit
        appender = store._appender
        if grouped and not isinstance(appender, GroupedAppender):
            raise StoreError(f"{store.description}: the store does not append in groups")
        self._group = AsyncGroup(backend) if grouped else None  # type: ignore[arg-type]
        self._appender = appender if isinstance(appender, GroupedAppender) else None

    @classmethod
    async def opened(cls, store: HistoryStore) -> AsyncHistoryStore:
        """The async store over `store`, with its backend's asyncio twin opened if it has one."""
        backend = store.backend
        if not isinstance(backend, HasAsyncTwin):
            return cls(store)
        twin = backend.asynchronous()
        try:
            await twin.open()
        except BaseException:
            store.close()
            raise
        return cls(store, AsyncRoute(store, twin))

    @property
    def description(self) -> str:
        return self.sync.description

    @property
    def readonly(self) -> bool:
        return self.sync.readonly

    @property
    def stable_positions(self) -> bool:
        return self.sync.stable_positions

    def __repr__(self) -> str:
        return f"<AsyncHistoryStore {self.sync.description}>"

    async def __aenter__(self) -> AsyncHistoryStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close, after the group committing now (if any)."""
        if self._route is not None:
            try:
                await self._route.backend.close()
            finally:
                self.sync.close()
            return
        async with self._group.lock if self._group is not None else contextlib.nullcontext():
            self.sync.close()

    # -- writing -------------------------------------------------------------

    async def append(
        self,
        instance_id: str,
        execution_id: int,
        events: Iterable[Event],
        *,
        expected_last_event_id: int | None = None,
    ) -> AppendResult:
        """HistoryStore.append; on SQLite committed with the appends of other tasks."""
        tx = _open_here(self)
        if tx is not None:  # inside this task's transaction(): joins it
            return await tx.append(
                instance_id, execution_id, events, expected_last_event_id=expected_last_event_id
            )
        if self._route is not None:
            return await self._route.append(
                instance_id, execution_id, events, expected_last_event_id
            )
        group, appender = self._group, self._appender
        if group is None or appender is None:  # read-only: refused as ever
            return self.sync.append(
                instance_id, execution_id, events, expected_last_event_id=expected_last_event_id
            )
        started = time.perf_counter()
        unit = appender.unit(instance_id, execution_id, events, expected_last_event_id)
        result = appender.committed(await group.run(unit), started)
        if result.written and not self.sync._catalog_recorded:
            async with group.lock:  # a write of its own: not inside a task's transaction
                self.sync._record_catalog()
        return result

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncTransaction]:
        """A transaction in which appends and the runtime's own SQL commit as one.

        On SQLite groups wait while it is open. The observer hears of its
        appends after its commit. Inside it, this task's `store.append` joins it.
        """
        if _open_here(self) is not None:
            raise StoreError("transaction() cannot be nested")
        if self._route is not None:
            async with self._pg_transaction() as tx:
                yield tx
            return
        lock = self._group.lock if self._group is not None else None
        async with lock if lock is not None else contextlib.nullcontext():
            with self.sync.transaction() as sync_tx:

                async def append(*args: Any) -> AppendResult:
                    return sync_tx.append(*args[:3], expected_last_event_id=args[3])

                async with self._joined(AsyncTransaction(sync_tx.connection, append)) as tx:
                    yield tx

    @contextlib.asynccontextmanager
    async def _pg_transaction(self) -> AsyncIterator[AsyncTransaction]:
        route = self._route
        assert route is not None
        async with route.backend.transaction() as connection:

            async def append(
                instance_id: str, execution_id: int, events: Iterable[Event], expected: int | None
            ) -> AppendResult:
                return await route.append(
                    instance_id, execution_id, events, expected, connection, tx.appended
                )

            tx = AsyncTransaction(connection, append)
            async with self._joined(tx):
                yield tx
        observer = self.sync.observer
        if observer is not None:
            for events, seconds in tx.appended:
                observer.appended(events, seconds)
        if tx.appended and not self.sync._catalog_recorded:  # after the commit (append.py)
            self.sync._record_catalog()

    @contextlib.asynccontextmanager
    async def _joined(self, tx: AsyncTransaction) -> AsyncIterator[AsyncTransaction]:
        token = _IN_TRANSACTION.set((self, asyncio.current_task(), tx))
        try:
            yield tx
        finally:
            try:
                _IN_TRANSACTION.reset(token)
            except ValueError:  # left in another task than it was entered in
                _IN_TRANSACTION.set(None)

    # -- reading -------------------------------------------------------------

    async def read(self, instance_id: str, execution_id: int | None = None) -> list[Event]:
        """The events of one execution (the latest by default), in event-id order.

        Like HistoryStore.read, an execution retention moved to an archive is
        read from the archive the shard manifest names (ArchiveMissingError,
        ArchiveError as there), only when the table holds none of its rows.
        """
        if self._route is None:
            return self.sync.read(instance_id, execution_id)
        events = await self._route.read(instance_id, execution_id)
        if events or self.sync._lifecycle is None:
            return events
        # The manifest lookup and the file's gzip member are blocking work:
        # off the loop. Reached only by reads the table had nothing for.
        return await asyncio.to_thread(self.sync.read_archived, instance_id, execution_id)

    async def last_event_id(self, instance_id: str, execution_id: int | None = None) -> int:
        """The last stored event id of an execution (the latest by default); 0 if none."""
        if self._route is not None:
            return await self._route.last_event_id(instance_id, execution_id)
        return self.sync.last_event_id(instance_id, execution_id)

    async def executions(self, instance_id: str, *, include_archived: bool = False) -> list[int]:
        """HistoryStore.executions: the table's (and with `include_archived`,
        the archives') execution ids of the instance, in order."""
        if self._route is None or include_archived:
            return await self._off_loop_if_routed(
                self.sync.executions, instance_id, include_archived=include_archived
            )
        return await self._route.backend.executions(instance_id)

    async def instances(self, *, include_archived: bool = False) -> list[str]:
        """HistoryStore.instances (with `include_archived`, the archives' too)."""
        if self._route is None or include_archived:
            return await self._off_loop_if_routed(
                self.sync.instances, include_archived=include_archived
            )
        return await self._route.backend.instances()

    async def _off_loop_if_routed(self, call: Callable[..., T], *args: Any, **kw: Any) -> T:
        """A sync store call: in a thread where the store has an awaited route
        (its sync pool blocks), inline on SQLite as every other read there."""
        if self._route is None:
            return call(*args, **kw)
        return await asyncio.to_thread(call, *args, **kw)

    async def count(self) -> int:
        if self._route is not None:
            return await self._route.backend.count()
        return self.sync.count()

    async def head_position(self) -> int:
        """`HistoryStore.head_position`, awaited: the feed position of the last
        event a reader can see now (0: none); resuming after it skips nothing."""
        rows = await self._last_rows(1)
        return rows[-1].position if rows else 0

    async def read_last(self, count: int) -> list[FeedRecord]:
        """`HistoryStore.read_last`, awaited: the last `count` events of the
        global feed, in commit order."""
        return feed_api.records(self.sync, await self._last_rows(count))

    async def _last_rows(self, count: int) -> list[RawRow]:
        backend = self._route.backend if self._route is not None else None
        if not isinstance(backend, AsyncHasFeedHead):
            return self.sync.read_last_raw(count)
        if feed_api.check_count(count) == 0:
            return []
        return [RawRow._make(row) for row in await backend.feed_last(count)]

    def read_all(
        self, after: int | FeedRecord = 0, limit: int | None = None
    ) -> AsyncFeed | AsyncPagedFeed:
        """The global feed, in commit order: `async for record in store.read_all(...)`."""
        if self._route is not None:
            return AsyncPagedFeed(self._route, after, limit)
        return AsyncFeed(self.sync.read_all(after, limit))


def _show_as_aio(*classes: type[Any]) -> None:
    for cls in classes:
        cls.__module__ = "eventstore.aio"


_show_as_aio(AsyncHistoryStore, AsyncTransaction, AsyncFeed, AsyncPagedFeed)
