"""Opening a store: target parsing and backend choice."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..codec import (
    Codec,
)
from ..errors import (
    TargetError,
)
from .history import HistoryStore
from .protocol import (
    Backend,
)
from .results import DEFAULT_WRITER_VERSION, StoreObserver, _now_ms

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
SUPPORTED_TARGETS = (
    "a SQLite file path, sqlite:///relative/path, sqlite:////absolute/path, :memory:"
    " or a postgresql:// URL"
)


def _refuse_unknown_scheme(target: str) -> None:
    # Only the scheme is named: the rest of a URL may hold a password.
    found = _SCHEME.match(target)
    if found and found.group(1).lower() not in ("postgresql", "postgres", "sqlite"):
        raise TargetError(
            f"{found.group(1)}:// is not a supported store; a store is {SUPPORTED_TARGETS}"
        )


def _sqlite_path(target: str) -> str:
    if target == ":memory:":
        return target
    if target.startswith("sqlite:"):
        # SQLAlchemy's convention: sqlite:///relative, sqlite:////absolute.
        rest = target[len("sqlite:") :]
        if rest in ("", "//", "///", "///:memory:", "//:memory:"):
            return ":memory:"
        if not rest.startswith("///"):
            raise TargetError(
                "SQLite URLs are sqlite:///relative/path or sqlite:////absolute/path,"
                f" not {target!r}"
            )
        return rest[3:]
    return target


def open(  # noqa: A001 - the natural name, as sqlite3.connect / shelve.open
    target: str,
    *,
    readonly: bool = False,
    codec: Codec | None = None,
    clock: Callable[[], int] = _now_ms,
    writer_version: str = DEFAULT_WRITER_VERSION,
    observer: StoreObserver | None = None,
    **backend_options: Any,
) -> HistoryStore:
    """Open (creating the history table if absent) a store.

    `target` is a file path, `sqlite:///relative/path`, `sqlite:////absolute/path`,
    `:memory:`, or a `postgresql://` URL (the `postgres` extra). Backend options:
    SQLite takes `busy_timeout_ms` (5000) and `synchronous` ("normal", see
    eventstore.backends.sqlite); PostgreSQL takes `schema` ("public"), `pool_min_size`,
    `pool_max_size`, `lock_timeout_ms` and `connect_timeout` (see
    proposals/postgres-backend.md). An unknown option is a TargetError.
    """
    if not isinstance(target, str) or not target:
        raise TargetError("a store target must be a non-empty string")
    _refuse_unknown_scheme(target)
    backend: Backend
    if target.startswith(("postgresql://", "postgres://")):
        from ..backends.postgres import PostgresBackend  # optional dependency

        backend = PostgresBackend(target, readonly=readonly, **backend_options)
    else:
        from ..backends.sqlite import SQLiteBackend

        try:
            backend = SQLiteBackend(_sqlite_path(target), readonly=readonly, **backend_options)
        except TypeError as exc:
            raise TargetError(f"unknown option for a SQLite store: {exc}") from None
    return HistoryStore(
        backend, codec=codec, clock=clock, writer_version=writer_version, observer=observer
    )
