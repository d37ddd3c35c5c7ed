"""The protocols of a backend that eventstore.aio awaits (PostgreSQL's async pool).

The asyncio counterparts of `HistoryBackend` and `HistoryWriter` in
store/protocol.py, narrowed to what eventstore.aio calls; a sync backend
offers its twin through `protocol.HasAsyncTwin`. Rows are the same types.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable

from .protocol import (
    CatalogDelta,
    CatalogRow,
    ExecutionRow,
    ExecutionSummary,
    FeedRow,
    NewEvents,
    StoredRow,
)
from .row_types import OneFlightAppend

__all__ = [
    "AsyncAppendsInOneFlight",
    "AsyncCatalogWriter",
    "AsyncHasFeedHead",
    "AsyncHistoryBackend",
    "AsyncHistoryWriter",
]


@runtime_checkable
class AsyncHistoryWriter(Protocol):
    """HistoryWriter's append statements, awaited (one transaction or savepoint)."""

    async def last_event(
        self, instance_id: str, execution_id: int, shard: str = ""
    ) -> tuple[int, str]: ...

    async def rows_between(
        self, instance_id: str, execution_id: int, first: int, last: int
    ) -> list[StoredRow]: ...

    async def insert(self, batch: NewEvents) -> None: ...


@runtime_checkable
class AsyncCatalogWriter(Protocol):
    """CatalogWriter's append statements, awaited (the execution catalog)."""

    async def catalog_advance(self, delta: CatalogDelta) -> bool: ...

    async def catalog_put(self, rows: Sequence[CatalogRow]) -> None: ...

    async def catalog_remove(self, keys: Sequence[tuple[str, int]]) -> None: ...

    async def execution_summary(
        self, instance_id: str, execution_id: int
    ) -> ExecutionSummary | None: ...


@runtime_checkable
class AsyncHistoryBackend(Protocol):
    """What eventstore.aio awaits of a backend with a driver of its own for asyncio
    (PostgreSQL: psycopg's AsyncConnectionPool). The rules stay in the store."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def writing(self, pinned: Any = None) -> AbstractAsyncContextManager[AsyncHistoryWriter]:
        """A write unit: a transaction of its own, or a savepoint on `pinned`
        (the connection of an open `transaction()`)."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        """An outer transaction; yields its connection (the runtime's own SQL)."""
        ...

    async def execution_rows(self, instance_id: str, execution_id: int) -> list[ExecutionRow]: ...

    async def position_of(
        self, instance_id: str, execution_id: int, event_id: int
    ) -> int | None: ...

    async def latest_execution(self, instance_id: str) -> int | None: ...

    async def last_event_id(self, instance_id: str, execution_id: int) -> int: ...

    async def executions(self, instance_id: str) -> list[int]: ...

    async def instances(self) -> list[str]: ...

    async def feed(self, after: int, limit: int) -> list[FeedRow]: ...

    async def key_at(self, position: int) -> tuple[str | bytes, int, int] | None: ...

    async def count(self) -> int: ...


@runtime_checkable
class AsyncHasFeedHead(Protocol):
    """`protocol.HasFeedHead`, awaited: the feed's last rows, in feed order."""

    async def feed_last(self, limit: int) -> list[FeedRow]: ...


@runtime_checkable
class AsyncAppendsInOneFlight(Protocol):
    """`protocol.AppendsInOneFlight`, awaited: the common append checked and
    written by the database in one call, or declined with nothing written
    (then the store takes the plain route)."""

    one_flight: bool

    async def append_in_one_flight(self, append: OneFlightAppend) -> bool: ...
