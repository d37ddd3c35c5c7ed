"""The store's evolution facade: catalogs, migration runs and log, the archive.

`HistoryStore.evolution` is how `eventstore.evolution` (check, recording,
migrate, backfill, rollback) reaches the `eventstore_*` tables, without
holding a backend: reads go straight through, and `writing()` opens one write
transaction of the backend (its write lock held) in which only evolution
operations can be called. The SQL stays in the backends, the decisions in
`eventstore.evolution`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, cast

from ..errors import StoreError
from .protocol import (
    ArchivedRow,
    EvolutionBackend,
    EvolutionWriter,
    MigrationLogRow,
    MigrationRun,
    RawRow,
    RowKey,
    SchemaVersionRow,
    WindowBackend,
    WindowCounts,
    WindowWriter,
)

__all__ = ["EvolutionTransaction", "StoreEvolution"]

CatalogRefresh = Callable[[Any, Iterable[tuple[str | bytes, int]]], None]
"""Recompute the execution catalog rows of these executions in the writer's transaction."""


class EvolutionTransaction:
    """The evolution operations of one write transaction (see `StoreEvolution.writing`)."""

    __slots__ = ("_refresh", "_writer")

    def __init__(self, writer: EvolutionWriter, refresh: CatalogRefresh | None = None) -> None:
        self._writer = writer
        self._refresh = refresh

    def ensure_evolution_tables(self) -> None:
        """Create the eventstore_* tables if absent (they exist once anything was recorded)."""
        self._writer.ensure_evolution_tables()

    def record_schema_version(self, row: SchemaVersionRow) -> bool:
        """Insert a catalog record; False (and nothing changed) when its id exists."""
        return self._writer.record_schema_version(row)

    def set_schema_metadata(self, version_id: str, metadata: str) -> None:
        self._writer.set_schema_metadata(version_id, metadata)

    def save_migration_run(self, run: MigrationRun) -> None:
        """Insert or replace a run record."""
        self._writer.save_migration_run(run)

    def rows_after(self, after: RowKey, limit: int) -> list[RawRow]:
        """History rows after a key, in key order, read under the write lock."""
        return self._writer.rows_after(after, limit)

    def archive_rows(self, run_id: str, rows: Sequence[ArchivedRow]) -> None:
        """Keep original rows for a rollback (a row already archived keeps its first copy)."""
        self._writer.archive_rows(run_id, rows)

    def update_rows_by_key(self, changes: Sequence[ArchivedRow]) -> None:
        """Rewrite event_type and event_data of the history rows with these keys."""
        self._writer.update_rows_by_key(changes)
        if self._refresh is not None:  # the execution catalog, in this transaction
            self._refresh(self._writer, [(c.instance_id, c.execution_id) for c in changes])

    def log_migration(self, entries: Sequence[MigrationLogRow]) -> None:
        """Insert or replace per-execution migration log records."""
        self._writer.log_migration(entries)

    # The dual-write window (only on a store whose `StoreEvolution.has_window`).

    def recorded_generation(self) -> str | None:
        """The write generation, read under this transaction's write lock."""
        return cast(WindowWriter, self._writer).recorded_generation()

    def set_write_generation(self, generation: str, at: str) -> None:
        cast(WindowWriter, self._writer).set_write_generation(generation, at)

    def shadow_rows(self, first: RowKey, last: RowKey) -> dict[RowKey, tuple[str, str]]:
        """(event_type, event_data) of the shadow rows with keys first..last."""
        return cast(WindowWriter, self._writer).shadow_rows(first, last)


class StoreEvolution:
    """A store's schema-evolution records, for `eventstore.evolution`."""

    __slots__ = ("_backend", "_refresh")

    def __init__(self, backend: EvolutionBackend, refresh: CatalogRefresh | None = None) -> None:
        self._backend = backend
        self._refresh = refresh

    @contextmanager
    def writing(self) -> Iterator[EvolutionTransaction]:
        """One write transaction (all or nothing) over the evolution tables and history rows;
        rows it rewrites have their execution catalog rows recomputed in it."""
        with self._backend.evolving() as writer:
            yield EvolutionTransaction(writer, self._refresh)

    def run_lock(self, what: str) -> AbstractContextManager[None]:
        """The store's run lock, held while the block runs (see eventstore.evolution.lock)."""
        return self._backend.migration_lock(what)

    def schema_versions(self) -> list[SchemaVersionRow]:
        """Recorded catalogs, oldest first (none before the first was recorded)."""
        return self._backend.schema_versions()

    def migration_runs(self) -> list[MigrationRun]:
        """Every migration and backfill run, oldest first."""
        return self._backend.migration_runs()

    def migration_log(self, run_id: str) -> list[MigrationLogRow]:
        """What each batch of a run changed, per execution."""
        return self._backend.migration_log(run_id)

    def archived_rows(self, run_id: str, after: RowKey, limit: int) -> list[ArchivedRow]:
        """A run's archived originals after a key, in key order."""
        return self._backend.archived_rows(run_id, after, limit)

    @property
    def has_window(self) -> bool:
        """Whether this store can keep a dual-write window (its backend's capability)."""
        return isinstance(self._backend, WindowBackend)

    def write_generation(self) -> str | None:
        """The recorded write generation; None when none was recorded (V1)."""
        if not isinstance(self._backend, WindowBackend):
            return None
        return self._backend.write_generation()

    def window_counts(self) -> WindowCounts | None:
        """The dual-write window's counts; None when the store cannot keep one."""
        if not isinstance(self._backend, WindowBackend):
            return None
        return self._backend.window_counts()

    def require_window(self, what: str) -> None:
        if not self.has_window:
            raise StoreError(f"{what}: this store keeps no dual-write window")
