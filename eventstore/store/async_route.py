"""AsyncHistoryStore over a backend that is awaited itself (PostgreSQL's async pool).

The append contract is not repeated here: `_Appender.prepare` checks, fills
and encodes, and `_Appender.write_prepared` runs the checks against stored
rows against a `_Replay` writer. That writer answers from what has been
fetched so far and, for a row it lacks, raises `RowsNeeded` (eventstore.errors); the route
awaits those rows on the real writer (inside the same transaction, under
the same lock) and runs `write_prepared` again. Its only write, the insert,
comes last and is only recorded, so a run that stops for rows has written
nothing, and the route awaits the insert once the run went through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from ..codec import RowDecodeError
from ..errors import PositionsRenumberedError, RowsNeeded, WriteGenerationError
from ..events import Event
from . import one_flight
from .async_protocol import AsyncAppendsInOneFlight, AsyncCatalogWriter, AsyncHistoryBackend
from .catalog import as_row, record_from_summary
from .protocol import CatalogDelta, FeedRow, InsertRow, NewEvents, StoredRow
from .results import AppendResult, FeedRecord

if TYPE_CHECKING:
    from .history import HistoryStore

__all__ = ["AsyncPagedFeed", "AsyncRoute"]

_PAGE = 1000


class _Replay:
    """A HistoryWriter that answers from fetched rows and records the insert."""

    def __init__(self, last: tuple[int, str], fetched: dict[tuple[int, int], list[StoredRow]]):
        self._last = last
        self._fetched = fetched
        self.inserted: NewEvents | None = None
        self.catalog: CatalogDelta | None = None

    def last_event(self, instance_id: str, execution_id: int, shard: str = "") -> tuple[int, str]:
        return self._last

    def rows_between(
        self, instance_id: str, execution_id: int, first: int, last: int
    ) -> list[StoredRow]:
        found = self._fetched.get((first, last))
        if found is None:
            raise RowsNeeded(first, last)
        return found

    def insert(self, batch: NewEvents) -> None:
        self.inserted = batch

    def insert_or_compare(self, row: InsertRow) -> str | None:
        raise NotImplementedError("import runs on the sync store")

    def catalog_advance(self, delta: CatalogDelta) -> bool:
        self.catalog = delta  # applied after the insert, awaited (AsyncRoute.append)
        return True


async def _written_in_one_flight(
    backend: AsyncAppendsInOneFlight,
    store: HistoryStore,
    new: NewEvents,
    filled: list[Event],
    expected: int | None,
) -> bool:
    """`one_flight.written`, awaited: the same plan, sent on the async pool."""
    append = one_flight.plan(store, new, filled, expected)
    return append is not None and await backend.append_in_one_flight(append)


class AsyncRoute:
    """Appends and reads of an AsyncHistoryStore, awaited on `backend`."""

    def __init__(self, store: HistoryStore, backend: AsyncHistoryBackend) -> None:
        dual_write = store._dual_write
        if dual_write is not None:
            # The dual write's shadow insert and its re-read of the recorded
            # generation run on a sync writer; the replay here has neither.
            raise WriteGenerationError(
                f"{store.description}: the write generation is {dual_write.generation},"
                " and eventstore.aio on PostgreSQL writes V1 only; append through"
                " eventstore.open() until the cutover",
                configured="V1",
                recorded=dual_write.generation,
            )
        self.store = store
        self.backend = backend
        self._one_flight = (
            backend if isinstance(backend, AsyncAppendsInOneFlight) and backend.one_flight else None
        )
        """The backend when the common append can go in one call (store/one_flight.py)."""

    async def append(
        self,
        instance_id: str,
        execution_id: int,
        events: Iterable[Event],
        expected_last_event_id: int | None,
        pinned: Any = None,
        committed_later: list[tuple[list[Event], float]] | None = None,
    ) -> AppendResult:
        store = self.store
        appender = store._appender
        started = time.perf_counter()
        batch = list(events)
        filled, new = appender.prepare(instance_id, execution_id, batch, expected_last_event_id)
        flight = self._one_flight if pinned is None and committed_later is None else None
        if flight is not None and await _written_in_one_flight(
            flight, store, new, filled, expected_last_event_id
        ):
            result = AppendResult(filled, filled[-1].event_id, True)
        else:  # the plain route (and every append inside transaction())
            result = await self._write(new, batch, filled, expected_last_event_id, pinned)
        if result.written:
            seconds = time.perf_counter() - started
            if committed_later is not None:  # inside transaction(): after its commit
                committed_later.append((filled, seconds))
                return result
            if store.observer is not None:
                store.observer.appended(filled, seconds)
            if not store._catalog_recorded:
                # In a thread: the recording takes the table's key
                # exclusively, which other tasks' appends on this event loop
                # hold shared until they commit; waiting for it on the loop
                # would stall them until the lock timeout.
                await asyncio.to_thread(store._record_catalog)
        return result

    async def _write(
        self,
        new: NewEvents,
        batch: list[Event],
        filled: list[Event],
        expected_last_event_id: int | None,
        pinned: Any,
    ) -> AppendResult:
        """The plain route: `write_prepared` replayed against fetched rows,
        then the insert and the catalog's row awaited, in one transaction."""
        instance_id, execution_id = new.instance_id, new.execution_id
        appender = self.store._appender
        async with self.backend.writing(pinned) as writer:
            # Read under the write lock the unit takes with its first statement.
            last = await writer.last_event(instance_id, execution_id, new.shard)
            fetched: dict[tuple[int, int], list[StoredRow]] = {}
            while True:
                replay = _Replay(last, fetched)
                try:
                    result = appender.write_prepared(
                        replay, new, batch, filled, expected_last_event_id
                    )
                    break
                except RowsNeeded as need:
                    first, end = need.span
                    fetched[need.span] = await writer.rows_between(
                        instance_id, execution_id, first, end
                    )
            if replay.inserted is not None:
                await writer.insert(replay.inserted)
            if replay.catalog is not None:  # the execution catalog, same transaction
                await self._advance_catalog(
                    cast(AsyncCatalogWriter, writer), replay.catalog, instance_id, execution_id
                )
        return result

    async def _advance_catalog(
        self, writer: AsyncCatalogWriter, delta: CatalogDelta, instance_id: str, execution_id: int
    ) -> None:
        """`catalog.advance`, awaited: move the row forward, or recompute it
        from the history when rows were written without the catalog."""
        if await writer.catalog_advance(delta):
            return
        summary = await writer.execution_summary(instance_id, execution_id)
        if summary is None:
            await writer.catalog_remove([(instance_id, execution_id)])
        else:
            await writer.catalog_put([as_row(record_from_summary(self.store, summary))])

    async def read(self, instance_id: str, execution_id: int | None) -> list[Event]:
        """HistoryStore.read's steps, awaited; the codec's decode and row check."""
        backend = self.backend
        if execution_id is None:
            execution_id = await backend.latest_execution(instance_id)
            if execution_id is None:
                return []
        rows = await backend.execution_rows(instance_id, execution_id)
        try:
            return self.store.codec.decode_rows(rows, instance_id, execution_id)
        except RowDecodeError as exc:
            event_id = rows[exc.index][0]
            position = await backend.position_of(instance_id, execution_id, event_id)
            raise self.store._row_error(
                exc.message, instance_id, execution_id, event_id, position, mismatch=exc.mismatch
            ) from None

    async def last_event_id(self, instance_id: str, execution_id: int | None) -> int:
        if execution_id is None:
            execution_id = await self.backend.latest_execution(instance_id)
            if execution_id is None:
                return 0
        return await self.backend.last_event_id(instance_id, execution_id)


class AsyncPagedFeed:
    """The global feed over an awaited backend, page by page (HistoryStore.read_all's rules)."""

    def __init__(self, route: AsyncRoute, after: int | FeedRecord, limit: int | None) -> None:
        self._route = route
        self._after = after
        self._remaining = limit
        self._page: list[FeedRow] = []
        self._done = False

    def __aiter__(self) -> AsyncPagedFeed:
        return self

    async def __anext__(self) -> FeedRecord:
        while not self._page:
            if self._done:
                raise StopAsyncIteration
            await self._fetch()
        # Decoded one by one, as HistoryStore.read_all does: a bad row raises
        # where it stands in the feed, after the rows before it.
        position, instance_id, execution_id, event_id, event_type, data, _ = self._page.pop()
        event = self._route.store._decode(
            (event_id, event_type, data, position), instance_id, execution_id
        )
        return FeedRecord(position, instance_id, execution_id, event)

    async def _fetch(self) -> None:
        after = self._after
        if isinstance(after, FeedRecord):
            key = await self._route.backend.key_at(after.position)
            if key != (after.instance_id, after.execution_id, after.event.event_id):
                raise PositionsRenumberedError(
                    f"position {after.position} no longer holds event {after.event.event_id} "
                    f"of {after.instance_id!r} execution {after.execution_id}; "
                    "re-read the feed from the start",
                )
            after = self._after = after.position
        size = _PAGE if self._remaining is None else min(_PAGE, self._remaining)
        rows = await self._route.backend.feed(after, size) if size > 0 else []
        if rows:
            self._after = rows[-1][0]
        if self._remaining is not None:
            self._remaining -= len(rows)
        self._done = len(rows) < size or size == 0
        self._page = rows[::-1]  # popped from the end
