"""Shared fixtures. Every test that takes `store_factory` runs once per backend
in BACKENDS (the conformance suite itself is eventstore.testing.conformance,
subclassed per backend in test_store_conformance.py)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import eventstore
from eventstore.store import HistoryStore
from tests.postgres_server import postgres_server, postgres_target_factory  # noqa: F401

FIXTURES = Path(__file__).parent / "fixtures"
DUROXIDE_DB = FIXTURES / "duroxide-0.1.32" / "runtime.db"
DUROXIDE_JSONL = FIXTURES / "duroxide-0.1.32" / "history.jsonl"
V0A_JSONL = FIXTURES / "legacy" / "v0a-history.jsonl"
V0B_JSONL = FIXTURES / "legacy" / "v0b-history.jsonl"

StoreFactory = Callable[..., HistoryStore]

# Each backend opens fresh, empty stores. PostgreSQL joins this list when its
# server fixture is available (see tests/postgres_server.py when present).
BACKENDS = ["sqlite-file", "sqlite-memory", "postgres"]


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_factory(
    backend_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[StoreFactory]:
    """Open fresh stores of the backend under test; closed after the test."""
    opened: list[HistoryStore] = []
    targets: dict[int, str] = {}
    counter = iter(range(1_000_000))

    def make(*, reopen: HistoryStore | None = None, **options: object) -> HistoryStore:
        """A new empty store, or (reopen=store) another handle on the same one."""
        n = next(counter)
        if reopen is not None:
            target = targets[id(reopen)]
        elif backend_name == "sqlite-file":
            target = str(tmp_path / f"store-{n}.db")
        elif backend_name == "sqlite-memory":
            target = ":memory:"
        else:
            target = request.getfixturevalue("postgres_target_factory")()
        store = eventstore.open(target, **options)  # type: ignore[arg-type]
        opened.append(store)
        targets[id(store)] = target
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> HistoryStore:
    return store_factory()


@pytest.fixture
def duroxide_db(tmp_path: Path) -> Path:
    """A private copy of the real duroxide database (WAL needs a writable dir)."""
    target = tmp_path / "runtime.db"
    shutil.copyfile(DUROXIDE_DB, target)
    target.chmod(0o644)
    return target
