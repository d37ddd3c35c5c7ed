"""The store's lifecycle facade: the shard manifest, archives, purges, pruning.

`HistoryStore.lifecycle` is how `eventstore.lifecycle` (shards, retention,
migrations prune) reaches the manifest tables and deletes rows, without
holding a backend. The SQL stays in the backends, the decisions (which
executions, in which order, when a row may go) in `eventstore.lifecycle`.

Reads follow the archive here too (`archived_rows`): the store's `read()`
asks for an execution's rows from the archive the manifest names only when
the table holds none of them, so a row is read back exactly once whether a
retention run is before, inside or after its delete.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..errors import ArchiveError, StoreError
from .archive_file import read_member
from .lifecycle_protocol import (
    ArchivedExecution,
    CatalogCensus,
    CatalogCensusRow,
    CensusInOneSnapshot,
    ExecutionKey,
    ManifestWriter,
    MigrationPruning,
    PurgeKey,
    Purging,
    ShardArchiveRow,
    ShardManifestBackend,
    ShardPartitioning,
    ShardRow,
    TimesItsWrites,
)
from .protocol import ExecutionCatalog, RawRow

if TYPE_CHECKING:
    from ..events import Event
    from .history import HistoryStore

__all__ = ["StoreLifecycle", "archived_raw_row"]


def archived_raw_row(row: dict[str, Any]) -> RawRow:
    """An archive line back as the stored row (position 0: archives keep none)."""
    data = row["event_data"]
    if isinstance(data, dict):
        data = base64.b64decode(data["base64"])
    instance_id = row["instance_id"]
    if isinstance(instance_id, dict):
        instance_id = base64.b64decode(instance_id["base64"]).decode("utf-8", "replace")
    return RawRow(
        0,
        instance_id,
        row["execution_id"],
        row["event_id"],
        row["event_type"],
        data,
        row.get("created_at"),
    )


class StoreLifecycle:
    """A store's shard manifest, archives and purges, for `eventstore.lifecycle`."""

    __slots__ = ("_backend", "description")

    def __init__(self, backend: ShardManifestBackend, description: str) -> None:
        self._backend = backend
        self.description = description

    def writing(self) -> AbstractContextManager[ManifestWriter]:
        """One short write transaction over the manifest tables."""
        return self._backend.manifest_writing()

    def shards(self) -> list[ShardRow]:
        return self._backend.shard_manifest()

    def archives(self) -> list[ShardArchiveRow]:
        return self._backend.shard_archives()

    def archived_execution(self, instance_id: str, execution_id: int) -> ArchivedExecution | None:
        return self._backend.archived_execution(instance_id, execution_id)

    def archived_in(self, archive_id: str, page: int = 1000) -> Iterator[ArchivedExecution]:
        """An archive's executions in key order, paged (constant memory)."""
        after: ExecutionKey = ("", -1)
        while batch := self._backend.archived_in(archive_id, after, page):
            yield from batch
            after = (batch[-1].instance_id, batch[-1].execution_id)

    def archived_instances(self) -> list[str]:
        return self._backend.archived_instances()

    def archived_executions_of(self, instance_id: str) -> list[int]:
        return self._backend.archived_executions_of(instance_id)

    def latest_execution(self, instance_id: str) -> int | None:
        """The instance's latest archived execution (None: none archived)."""
        return max(self._backend.archived_executions_of(instance_id), default=None)

    def executions_rows(
        self, keys: Sequence[ExecutionKey], shard: str | None = None
    ) -> list[RawRow]:
        """Every stored row of these executions, by key (`shard`: the
        catalog's shard of all of them, where the caller knows it)."""
        return self._backend.executions_rows(keys, shard)

    def purge_executions(self, keys: Sequence[PurgeKey]) -> int:
        """Delete these executions whole, in one short transaction, each only
        while it holds exactly its archived rows; the rows deleted."""
        if not isinstance(self._backend, Purging):
            raise StoreError(f"{self.description} cannot delete executions")
        return self._backend.purge_executions(keys)

    def catalog_census(self, page: int = 2000) -> Iterator[CatalogCensusRow] | None:
        """Every execution of the execution catalog in key order, paged
        (constant memory), with its first and last rows' first bytes; None
        where the catalog is not kept in a table (a database duroxide
        created, a store from before the catalog): there it is derived from
        the history, and the caller's census reads the history itself."""
        backend = self._backend
        if not isinstance(backend, CatalogCensus) or not self._catalog_table():
            return None
        return self._catalog_pages(backend, page)

    def has_catalog_census(self) -> bool:
        """Whether `catalog_census` reads a kept catalog (False: derive)."""
        return isinstance(self._backend, CatalogCensus) and self._catalog_table()

    def _catalog_table(self) -> bool:
        backend = self._backend
        return isinstance(backend, ExecutionCatalog) and backend.catalog_kept()

    @staticmethod
    def _catalog_pages(backend: CatalogCensus, page: int) -> Iterator[CatalogCensusRow]:
        # Where appends run beside the census (PostgreSQL), key-ordered pages
        # read one after another chase them: an execution created after the
        # census began whose key sorts after the last page read is read too,
        # and appenders creating executions faster than the census reads
        # them kept it going without end (measured: 718,000 executions in
        # ten minutes). One snapshot bounds it to the catalog as it was.
        if isinstance(backend, CensusInOneSnapshot):
            for batch in backend.catalog_census_pages(page):
                yield from batch
            return
        after: ExecutionKey = ("", -1)
        while batch := backend.catalog_census_page(after, page):
            yield from batch
            after = (batch[-1].instance_id, batch[-1].execution_id)

    def last_write_seconds(self) -> float | None:
        """How long the last manifest write or purge held the write lock, where
        the backend says (SQLite); None where it does not."""
        backend = self._backend
        return backend.last_write_seconds() if isinstance(backend, TimesItsWrites) else None

    @property
    def partitioned(self) -> bool:
        """Whether the history table is partitioned by shard (PostgreSQL, opt-in)."""
        backend = self._backend
        return isinstance(backend, ShardPartitioning) and backend.partitioned_by_shard()

    @property
    def appends_run_beside(self) -> bool:
        """Whether appends of other connections run while lifecycle jobs write
        (PostgreSQL: no lock keeps them apart, only CPU and disk are shared),
        so a job should pace itself by default."""
        return isinstance(self._backend, ShardPartitioning)

    def drop_partition(self, shard: str) -> bool:
        """Drop a purged shard's partition if it is empty; whether it is gone."""
        if not self.partitioned:
            return False
        return cast(ShardPartitioning, self._backend).drop_shard_partition(shard)

    def drop_archived_partition(self, shard: str, archive_id: str, rows: int) -> int | None:
        """Retire a day as a metadata operation: its partition dropped when
        it holds exactly this verified archive's rows; the rows dropped, or
        None (not partitioned, or it holds more: delete row by row)."""
        if not self.partitioned:
            return None
        backend = cast(ShardPartitioning, self._backend)
        return backend.drop_archived_partition(shard, archive_id, rows)

    def convert_to_partitioned(
        self, batch: int, start: Callable[[str, int | None], Callable[[int], object]]
    ) -> int:
        """Convert the history table into the partitioned layout (PostgreSQL);
        the rows it holds, -1 when it was partitioned already."""
        backend = self._backend
        if not isinstance(backend, ShardPartitioning):
            raise StoreError(
                f"{self.description}: only a PostgreSQL history table can be partitioned"
            )
        return backend.convert_to_partitioned(batch, start)

    def move_to_shards(self, moves: Sequence[tuple[str, int, str]]) -> int:
        """Move root executions' rows into their day partitions (rebase)."""
        if not moves or not self.partitioned:
            return 0
        return cast(ShardPartitioning, self._backend).move_to_shards(moves)

    def prune_migration_run(self, run_id: str, limit: int) -> int:
        if not isinstance(self._backend, MigrationPruning):
            raise StoreError(f"{self.description} cannot prune migration runs")
        return self._backend.prune_migration_run(run_id, limit)

    def reclaim_space(self) -> None:
        if not isinstance(self._backend, MigrationPruning):
            raise StoreError(f"{self.description} cannot reclaim space")
        self._backend.reclaim_space()

    def read_archived(
        self, store: HistoryStore, instance_id: str, execution_id: int
    ) -> list[Event]:
        """The events of an execution the table holds no row of, from its archive
        ([] when no archive holds it), each row through the store's row check.

        Only when the table holds none of its rows: a retention run deletes an
        execution whole, after its archive was verified and indexed, so the
        rows come from exactly one of the two places.
        """
        rows = self.archived_rows(instance_id, execution_id)
        return [
            store.check_row(
                instance_id, execution_id, r.event_id, r.event_type, r.event_data, None
            ).event
            for r in rows or ()
        ]

    def archived_rows(self, instance_id: str, execution_id: int) -> list[RawRow] | None:
        """The rows of an execution that lives in an archive, or None when none does.

        Reads the one gzip member the manifest names (its CRC checked).
        ArchiveMissingError (naming shard and location) when the file is
        gone; ArchiveError when it does not hold the execution whole.
        """
        where = self._backend.archived_execution(instance_id, execution_id)
        if where is None:
            return None
        archive = next((a for a in self.archives() if a.archive_id == where.archive_id), None)
        if archive is None:
            raise StoreError(
                f"{self.description}: execution {execution_id} of {instance_id!r} names"
                f" archive {where.archive_id}, which the shard manifest does not list"
            )
        member = read_member(Path(archive.location), archive.shard, where.offset)
        rows = [
            archived_raw_row(r)
            for r in member
            if r["instance_id"] == instance_id and r["execution_id"] == execution_id
        ]
        if len(rows) != where.rows:
            raise ArchiveError(
                f"the archive of shard {archive.shard} at {archive.location} holds"
                f" {len(rows)} rows of execution {execution_id} of {instance_id!r},"
                f" the manifest {where.rows}",
                shard=archive.shard,
                location=archive.location,
            )
        return rows
