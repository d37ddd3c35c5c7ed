"""pytest plugin: `history_store`, `history_store_factory` and `history_builder`.

Installed through the `pytest11` entry point, so any project that installs
eventstore gets it. `--eventstore-backend` (or the `eventstore_backend` ini
setting) chooses where `history_store` lives:

* `sqlite` (default): a fresh SQLite file in the test's temporary directory;
* `memory`: a fresh in-memory SQLite store;
* a `postgresql://` URL: a store in a schema of its own on that database
  (created for the test, dropped after it).

`history_store_factory` opens as many fresh stores of that backend as a test
wants; it is what the shipped backend suite (`eventstore.testing.conformance`)
uses unless a subclass brings its own backend.
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..errors import EventStoreError
from ..opening import open as open_store
from ..store import HistoryStore
from .builder import HistoryBuilder

__all__ = ["history_builder", "history_store", "history_store_factory", "pytest_addoption"]

_OPTION = "--eventstore-backend"
_INI = "eventstore_backend"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("eventstore")
    group.addoption(
        _OPTION,
        action="store",
        default=None,
        metavar="BACKEND",
        help="history_store backend: sqlite (a temporary file, default), memory, "
        "or a postgresql:// URL",
    )
    parser.addini(_INI, "history_store backend (see --eventstore-backend)", default="sqlite")


def _backend(config: pytest.Config) -> str:
    chosen = config.getoption(_OPTION)
    return str(chosen if chosen else config.getini(_INI) or "sqlite")


def store_target(backend: str, directory: Path, n: int = 0) -> str:
    """The store target for a backend name (or URL), a private directory and
    the test's n-th store."""
    if backend == "sqlite":
        return str(directory / ("history.db" if n == 0 else f"history-{n}.db"))
    if backend == "memory":
        return ":memory:"
    if _is_postgres(backend):
        return backend
    raise pytest.UsageError(
        f"{_OPTION}: expected sqlite, memory or a postgresql:// URL, not {backend!r}"
    )


def _is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


@dataclass
class StoreFactory:
    """Opens fresh, empty stores of one backend; `close_all()` closes (and drops) them.

    `factory(**options)` takes `eventstore.open`'s keywords (clock, codec,
    writer_version, observer, readonly); `factory(reopen=store, ...)` opens
    another handle on a store it made (an in-memory store cannot be reopened:
    the test is skipped).
    """

    backend_name: str
    directory: Path
    _opened: list[tuple[HistoryStore, str | None]] = field(default_factory=list)
    _targets: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    _counter: Iterator[int] = field(default_factory=itertools.count)

    def __call__(self, *, reopen: HistoryStore | None = None, **options: Any) -> HistoryStore:
        if reopen is not None:
            if id(reopen) not in self._targets:
                pytest.skip("no other handle on a store this factory did not open")
            target, schema = self._targets[id(reopen)]
            if target == ":memory:":
                pytest.skip("an in-memory SQLite store cannot be reopened")
            owned = None  # the first handle drops the schema
        else:
            target = store_target(self.backend_name, self.directory, next(self._counter))
            schema = f"eventstore_test_{uuid.uuid4().hex[:16]}" if _is_postgres(target) else None
            owned = schema
        store = (
            open_store(target, schema=schema, **options)
            if schema
            else open_store(target, **options)
        )
        self._opened.append((store, owned))
        self._targets[id(store)] = (target, schema)
        return store

    def close_all(self) -> None:
        # Later handles first: a reopened handle closes before the store it shares.
        for store, schema in reversed(self._opened):
            if schema is not None and not store.readonly:
                with contextlib.suppress(EventStoreError):
                    store.destroy()  # the test's own schema, tables and all
            store.close()
        self._opened.clear()


@pytest.fixture
def history_store_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., HistoryStore]]:
    """A factory of fresh stores of the chosen backend, all closed after the test."""
    factory = StoreFactory(_backend(request.config), tmp_path)
    try:
        yield factory
    finally:
        factory.close_all()


@pytest.fixture
def history_store(history_store_factory: Callable[..., HistoryStore]) -> HistoryStore:
    """A fresh, empty HistoryStore, closed (and on PostgreSQL dropped) after the test."""
    return history_store_factory()


@pytest.fixture
def history_builder(request: pytest.FixtureRequest) -> Callable[..., HistoryBuilder]:
    """A factory of HistoryBuilders: `history_builder("Hello", "w0").activity(...)`.

    Arguments are the orchestration name and input, then HistoryBuilder's
    keywords; each builder gets its own instance id unless one is given.
    """
    counter = itertools.count(1)
    base = request.node.name.replace("[", "-").replace("]", "")

    def make(name: str = "Test", input: Any = None, **options: Any) -> HistoryBuilder:  # noqa: A002
        instance_id = options.pop("instance_id", None) or f"{base}-{next(counter)}"
        return HistoryBuilder(instance_id, name, input, **options)

    return make
