"""pytest plugin: `history_store` and `history_builder` fixtures.

Installed through the `pytest11` entry point, so any project that installs
eventstore gets it. `--eventstore-backend` (or the `eventstore_backend` ini
setting) chooses where `history_store` lives:

* `sqlite` (default): a fresh SQLite file in the test's temporary directory;
* `memory`: a fresh in-memory SQLite store;
* a `postgresql://` URL: a store in a schema of its own on that database
  (created for the test, dropped after it).
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..store import HistoryStore
from ..store import open as open_store
from .builder import HistoryBuilder

__all__ = ["history_builder", "history_store", "pytest_addoption"]

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


def store_target(backend: str, directory: Path) -> str:
    """The store target for a backend name (or URL) and a private directory."""
    if backend == "sqlite":
        return str(directory / "history.db")
    if backend == "memory":
        return ":memory:"
    if _is_postgres(backend):
        return backend
    raise pytest.UsageError(
        f"{_OPTION}: expected sqlite, memory or a postgresql:// URL, not {backend!r}"
    )


def _is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


@pytest.fixture
def history_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HistoryStore]:
    """A fresh, empty HistoryStore, closed (and on PostgreSQL dropped) after the test."""
    target = store_target(_backend(request.config), tmp_path)
    schema = f"eventstore_test_{uuid.uuid4().hex[:16]}" if _is_postgres(target) else None
    store = open_store(target, schema=schema) if schema else open_store(target)
    try:
        yield store
    finally:
        if schema is not None:
            with contextlib.suppress(Exception), store.transaction() as tx:
                tx.connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        store.close()


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
