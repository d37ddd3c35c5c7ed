"""The shipped conformance suite (eventstore.testing.conformance), once per backend."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

import eventstore
from eventstore.store import HistoryStore
from eventstore.testing.conformance import HistoryStoreConformance
from eventstore.testing.lifecycle_conformance import LifecycleConformance


class _ByTarget(HistoryStoreConformance):
    """Stores opened with eventstore.open on a target a subclass names."""

    def new_target(self) -> str:
        raise NotImplementedError

    def create_store(self, **options: Any) -> HistoryStore:
        target = self.new_target()
        store = eventstore.open(target, **options)
        self.__dict__.setdefault("targets", {})[id(store)] = target
        return store

    def reopen_store(self, store: HistoryStore, **options: Any) -> HistoryStore:
        return eventstore.open(self.__dict__["targets"][id(store)], **options)


class TestSQLiteFile(_ByTarget, LifecycleConformance):
    def new_target(self) -> str:
        n = next(self.__dict__.setdefault("files", itertools.count()))
        return str(self.tmp_path / f"store-{n}.db")


class TestSQLiteMemory(_ByTarget, LifecycleConformance):
    def new_target(self) -> str:
        return ":memory:"

    def reopen_store(self, store: HistoryStore, **options: Any) -> HistoryStore:
        pytest.skip("an in-memory database cannot be reopened")


@pytest.mark.postgres
class TestPostgreSQL(_ByTarget, LifecycleConformance):
    """A new PostgreSQL store: its history table partitioned by day shard."""

    def new_target(self) -> str:
        factory: Callable[[], str] = self.request.getfixturevalue("postgres_target_factory")
        return factory()


@pytest.mark.postgres
class TestPostgreSQLUnpartitioned(TestPostgreSQL):
    """The same suites on an unpartitioned history table (a store made before
    partitioning was the default, or with partition_by_shard=False)."""

    def create_store(self, **options: Any) -> HistoryStore:
        return super().create_store(partition_by_shard=False, **options)
