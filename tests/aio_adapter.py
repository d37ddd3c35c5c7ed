"""The sync view of an AsyncHistoryStore that the conformance suite runs against.

Not a copy of the suite: each call of the suite runs the async store's
coroutine to completion on the adapter's own event loop, so every test of
eventstore.testing.conformance (and its Hypothesis model) holds the async
store to the same contract. What has no coroutine (import, export) goes to
the store's `sync` HistoryStore, as a user of eventstore.aio would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import eventstore.aio
from eventstore.aio import AsyncHistoryStore, AsyncTransaction

T = TypeVar("T")


class SyncTransaction:
    def __init__(self, adapter: SyncOverAsync, tx: AsyncTransaction) -> None:
        self._adapter = adapter
        self._tx = tx
        self.connection = tx.connection

    def append(self, *args: Any, **kwargs: Any) -> Any:
        return self._adapter.run(self._tx.append(*args, **kwargs))


class SyncOverAsync:
    """HistoryStore's calls, each run on the async store it wraps."""

    def __init__(self, target: str, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        try:
            self.aio: AsyncHistoryStore = self.run(eventstore.aio.open(target, **options))
        except BaseException:
            self.loop.close()
            raise

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def append(self, *args: Any, **kwargs: Any) -> Any:
        return self.run(self.aio.append(*args, **kwargs))

    def read(self, *args: Any) -> Any:
        return self.run(self.aio.read(*args))

    def last_event_id(self, *args: Any) -> int:
        return self.run(self.aio.last_event_id(*args))

    def executions(self, instance_id: str) -> list[int]:
        return self.run(self.aio.executions(instance_id))

    def instances(self) -> list[str]:
        return self.run(self.aio.instances())

    def head_position(self) -> int:
        return self.run(self.aio.head_position())

    def read_last(self, count: int) -> list[Any]:
        return self.run(self.aio.read_last(count))

    def count(self) -> int:
        return self.run(self.aio.count())

    def read_all(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        async def collect() -> list[Any]:
            return [record async for record in self.aio.read_all(*args, **kwargs)]

        return iter(self.run(collect()))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SyncTransaction]:
        manager = self.aio.transaction()
        tx = self.run(manager.__aenter__())
        try:
            yield SyncTransaction(self, tx)
        except BaseException as exc:
            if not self.run(manager.__aexit__(type(exc), exc, exc.__traceback__)):
                raise
        else:
            self.run(manager.__aexit__(None, None, None))

    def close(self) -> None:
        if self.loop.is_closed():
            return
        try:
            self.run(self.aio.close())
        finally:
            self.loop.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.aio.sync, name)
