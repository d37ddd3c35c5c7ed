"""The shipped conformance suite against the async store and the threaded group-commit store.

The async store runs it through tests/aio_adapter.py (each call awaited on
the adapter's loop), not a copy; the sync store opened with
group_commit=True runs it as it is.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

import eventstore
from eventstore.store import HistoryStore
from eventstore.testing.conformance import HistoryStoreConformance
from tests.aio_adapter import SyncOverAsync


class _AsyncByTarget(HistoryStoreConformance):
    def new_target(self) -> str:
        n = next(self.__dict__.setdefault("files", itertools.count()))
        return str(self.tmp_path / f"store-{n}.db")

    def create_store(self, **options: Any) -> HistoryStore:
        target = self.new_target()
        store = SyncOverAsync(target, **options)
        self.__dict__.setdefault("targets", {})[id(store)] = target
        return store  # type: ignore[return-value]

    def reopen_store(self, store: HistoryStore, **options: Any) -> HistoryStore:
        return SyncOverAsync(self.__dict__["targets"][id(store)], **options)  # type: ignore[return-value]


class TestAsyncSQLiteFile(_AsyncByTarget):
    pass


class TestAsyncSQLiteMemory(_AsyncByTarget):
    def new_target(self) -> str:
        return ":memory:"

    def reopen_store(self, store: HistoryStore, **options: Any) -> HistoryStore:
        pytest.skip("an in-memory database cannot be reopened")


class TestGroupCommitSQLiteFile(HistoryStoreConformance):
    """The threaded store with group_commit=True: HistoryStore itself, grouped appends."""

    def create_store(self, **options: Any) -> HistoryStore:
        n = next(self.__dict__.setdefault("files", itertools.count()))
        target = str(self.tmp_path / f"grouped-{n}.db")
        store = eventstore.open(target, group_commit=True, **options)
        self.__dict__.setdefault("targets", {})[id(store)] = target
        return store

    def reopen_store(self, store: HistoryStore, **options: Any) -> HistoryStore:
        return eventstore.open(self.__dict__["targets"][id(store)], group_commit=True, **options)


@pytest.mark.postgres
class TestAsyncPostgreSQL(_AsyncByTarget):
    """eventstore.aio on PostgreSQL: psycopg's AsyncConnectionPool, the same contract."""

    def new_target(self) -> str:
        factory: Callable[[], str] = self.request.getfixturevalue("postgres_target_factory")
        return factory()
