"""`eventstore.open`: a target and options to a HistoryStore, wired to its layers.

Above the store and the backends (it uses both): it picks and opens the
backend (`eventstore.backends.open_backend`) and gives the store the
evolution layer's catalog recorder, so that the store itself never imports
upward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from .backends import open_backend
from .codec import Codec
from .errors import EventStoreError, TargetError
from .store.history import HistoryStore
from .store.results import DEFAULT_WRITER_VERSION, StoreObserver, _now_ms
from .store.window import configure_write_generation

__all__ = ["open"]

_STORE_OPTIONS: Final = (
    "readonly",
    "codec",
    "clock",
    "writer_version",
    "observer",
    "write_generation",
)


def _record_catalog(store: HistoryStore) -> object:
    # Imported on the first append only: plain reads never load the catalogs.
    from .evolution.recording import record_catalog

    return record_catalog(store)


def open(  # noqa: A001 - the natural name, as sqlite3.connect / shelve.open
    target: str,
    *,
    readonly: bool = False,
    codec: Codec | None = None,
    clock: Callable[[], int] = _now_ms,
    writer_version: str = DEFAULT_WRITER_VERSION,
    observer: StoreObserver | None = None,
    write_generation: str | None = None,
    **backend_options: Any,
) -> HistoryStore:
    """Open (creating the history table if absent) a store.

    `target` is a file path, `sqlite:///relative/path`, `sqlite:////absolute/path`,
    `:memory:`, or a `postgresql://` URL (the `postgres` extra). Backend options:
    SQLite takes `busy_timeout_ms` (5000), `synchronous` ("normal", see
    eventstore.backends.sqlite), `group_commit` (False: True commits the appends
    of concurrent threads together, see proposals/asyncio.md) and `group_size`
    (128 appends per commit at most); PostgreSQL takes `schema` ("public"), `pool_min_size`,
    `pool_max_size`, `lock_timeout_ms` and `connect_timeout` (see
    proposals/postgres-backend.md). An unknown or ill-typed option is a
    TargetError naming it and listing the valid ones.

    `write_generation` ("V1" or "V0b"; None adopts what the store records,
    V1 when nothing is) is the generation appends write. "V0b" on a store
    that records none opens a dual-write window: history rows in the legacy
    shape, their V1 forms in a shadow table (see
    proposals/schema-evolution-runbook.md). A value the store does not record
    is a WriteGenerationError naming both.
    """
    if codec is not None and not isinstance(codec, Codec):
        raise TargetError(f"option codec must be an eventstore Codec, not {codec!r}")
    if not callable(clock):
        raise TargetError(f"option clock must be callable (ms since the epoch), not {clock!r}")
    backend = open_backend(target, readonly=readonly, options=backend_options, also=_STORE_OPTIONS)
    try:
        store = HistoryStore(
            backend,
            codec=codec,
            clock=clock,
            writer_version=writer_version,
            observer=observer,
            catalog_recorder=_record_catalog,
        )
    except ValueError as exc:
        backend.close()
        raise TargetError(f"option writer_version: {exc}") from None
    try:
        configure_write_generation(store, write_generation)
    except EventStoreError:
        backend.close()
        raise
    return store
