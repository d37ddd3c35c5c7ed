"""The asyncio API: `store = await eventstore.aio.open(target)`.

AsyncHistoryStore has HistoryStore's API as coroutines (`append`, `read`,
`executions`, `instances`, `last_event_id`, `count`, `close`), `read_all` as an
async iterator and `transaction()` as an async context manager, with the
same contract and errors. On SQLite the appends of concurrent tasks commit
together (group commit, proposals/asyncio.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .backends import is_postgres
from .codec import Codec
from .errors import TargetError
from .opening import open as open_sync
from .store.async_history import AsyncFeed, AsyncHistoryStore, AsyncTransaction
from .store.async_route import AsyncPagedFeed
from .store.results import DEFAULT_WRITER_VERSION, StoreObserver, _now_ms

__all__ = ["AsyncFeed", "AsyncHistoryStore", "AsyncPagedFeed", "AsyncTransaction", "open"]


async def open(  # noqa: A001 - eventstore.open's counterpart
    target: str,
    *,
    readonly: bool = False,
    codec: Codec | None = None,
    clock: Callable[[], int] = _now_ms,
    writer_version: str = DEFAULT_WRITER_VERSION,
    observer: StoreObserver | None = None,
    **backend_options: Any,
) -> AsyncHistoryStore:
    """Open (creating the history table if absent) a store for asyncio.

    The target and options are eventstore.open's; on SQLite appends always
    commit in groups (`group_size`, 128 by default, bounds one), so
    `group_commit` is not an option here. On PostgreSQL (the `postgres`
    extra) every call is awaited on psycopg's AsyncConnectionPool, beside the
    sync pool of `store.sync`.
    """
    if "group_commit" in backend_options:
        raise TargetError("eventstore.aio always commits appends in groups: leave out group_commit")
    if not (isinstance(target, str) and is_postgres(target)):
        backend_options["group_commit"] = True
    store = open_sync(
        target,
        readonly=readonly,
        codec=codec,
        clock=clock,
        writer_version=writer_version,
        observer=observer,
        **backend_options,
    )
    return await AsyncHistoryStore.opened(store)
