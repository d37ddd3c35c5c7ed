"""The lifecycle's backend protocols: the shard manifest, purges, migration pruning.

Narrow `@runtime_checkable` capabilities in the manner of `store/protocol.py`
(kept apart only for that module's length); the store asks with `isinstance`:

    ShardManifestBackend
                      the shard manifest, the archives retention wrote and
                      where each archived execution is (eventstore.lifecycle)
      manifest_writing() -> ManifestWriter
    Purging           purge_executions: delete whole executions, each atomically
    MigrationPruning  drop a finished run's archive and log, reclaim the space

`eventstore.lifecycle` reaches them through `HistoryStore.lifecycle`
(`store/lifecycle.py`), never a backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from .row_types import (
    ArchivedExecution,
    CatalogCensusRow,
    ExecutionKey,
    PurgeKey,
    RawRow,
    ShardArchiveRow,
    ShardRow,
)

__all__ = [
    "ArchivedExecution",
    "CatalogCensus",
    "CensusInOneSnapshot",
    "LooksUpCatalogEnds",
    "CatalogCensusRow",
    "ExecutionKey",
    "ManifestWriter",
    "MigrationPruning",
    "PurgeKey",
    "Purging",
    "ShardArchiveRow",
    "ShardManifestBackend",
    "ShardPartitioning",
    "ShardRow",
    "TimesItsWrites",
]


@runtime_checkable
class ManifestWriter(Protocol):
    """The shard manifest's writes, inside one short write transaction.

    The tables (`eventstore_shards`, `eventstore_shard_archives`,
    `eventstore_archived_executions`) are created on first use.
    """

    def ensure_lifecycle_tables(self) -> None: ...

    def save_shard(self, row: ShardRow) -> None:
        """Insert or replace a shard's record."""
        ...

    def drop_shard(self, shard: str) -> None:
        """Forget a shard that holds nothing any more (root, once rebased)."""
        ...

    def save_archive(self, row: ShardArchiveRow) -> None:
        """Insert or replace an archive's record."""
        ...

    def forget_archive(self, archive_id: str) -> None:
        """Drop an archive's record and its index (an abandoned, unverified write)."""
        ...

    def index_archived(self, rows: Sequence[ArchivedExecution]) -> None:
        """Record where archived executions are. A key indexed already (an
        execution id reused after a purge, or one a purge kept because rows
        were added after its archiving) now names this archive: the newest
        copy is the one reads follow (proposals/lifecycle.md, reused ids)."""


@runtime_checkable
class ShardManifestBackend(Protocol):
    """A backend that keeps the shard manifest (eventstore.lifecycle).

    Reads return nothing (rather than fail) while the tables do not exist.
    """

    def manifest_writing(self) -> AbstractContextManager[ManifestWriter]: ...

    def shard_manifest(self) -> list[ShardRow]:
        """Every recorded shard, in shard order."""
        ...

    def shard_archives(self) -> list[ShardArchiveRow]:
        """Every archive retention recorded, oldest shard first."""
        ...

    def archived_execution(
        self, instance_id: str, execution_id: int
    ) -> ArchivedExecution | None: ...

    def archived_in(
        self, archive_id: str, after: ExecutionKey, limit: int
    ) -> list[ArchivedExecution]:
        """An archive's executions after a key, in key order (a page)."""
        ...

    def executions_rows(
        self, keys: Sequence[ExecutionKey], shard: str | None = None
    ) -> list[RawRow]:
        """Every row of these executions, by key (a retention batch, read
        whole); `shard`: the catalog's shard of every one of them, which a
        table partitioned by shard reads with root alone."""
        ...

    def archived_instances(self) -> list[str]:
        """Instances with an archived execution, in order."""
        ...

    def archived_executions_of(self, instance_id: str) -> list[int]:
        """An instance's archived execution ids, in order."""
        ...


@runtime_checkable
class Purging(Protocol):
    """A backend that deletes whole executions (retention, after archiving)."""

    def purge_executions(self, keys: Sequence[PurgeKey]) -> int:
        """Delete every row of these executions in one short write transaction,
        each whole or not at all, and only while it still holds exactly the
        rows its key says (the archived count); the rows deleted."""
        ...


@runtime_checkable
class MigrationPruning(Protocol):
    """A backend that drops what finished migration runs kept (migrations prune)."""

    def prune_migration_run(self, run_id: str, limit: int) -> int:
        """Delete up to `limit` archive and log rows of a run in one short
        write transaction; the rows deleted (0: nothing left)."""
        ...

    def reclaim_space(self) -> None:
        """Give freed pages back (SQLite VACUUM; PostgreSQL VACUUM of our tables)."""
        ...


@runtime_checkable
class ShardPartitioning(Protocol):
    """A backend whose history table can be partitioned by shard (PostgreSQL)."""

    def partitioned_by_shard(self) -> bool:
        """Whether this table is partitioned by shard (a store opts in at creation)."""
        ...

    def drop_shard_partition(self, shard: str) -> bool:
        """Detach and drop the shard's partition if it holds no row; whether
        it is gone (False: rows remain, or the table is not partitioned)."""
        ...

    def drop_archived_partition(self, shard: str, archive_id: str, rows: int) -> int | None:
        """Drop the shard's partition when it holds exactly the rows of this
        verified archive, forgetting its executions in the execution catalog
        (a metadata operation instead of row deletes); the rows dropped, or
        None when it holds anything else (the caller deletes row by row)."""
        ...

    def convert_to_partitioned(
        self, batch: int, start: Callable[[str, int | None], Callable[[int], object]]
    ) -> int:
        """Convert an unpartitioned history table eventstore created into the
        partitioned layout (offline, resumable; the backend's module says
        how); the rows the converted table holds. Refuses a table another
        program created."""
        ...

    def move_to_shards(self, moves: Sequence[tuple[str, int, str]]) -> int:
        """Move the rows of these executions (instance, execution, shard),
        each whole in one statement, from the root partition to their
        shard's; the rows moved (0 when the table is not partitioned)."""
        ...


@runtime_checkable
class TimesItsWrites(Protocol):
    """A backend that says how long its last lifecycle write held the write lock."""

    def last_write_seconds(self) -> float:
        """Seconds from the last manifest write's or purge's lock to its commit."""
        ...


@runtime_checkable
class LooksUpCatalogEnds(Protocol):
    """A catalog that says where many executions' rows end in one query
    (PostgreSQL: one round trip for a feed page instead of one each)."""

    def catalog_last_ids(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The catalog's `last_event_id` of each of these executions it lists."""
        ...


@runtime_checkable
class CensusInOneSnapshot(Protocol):
    """A backend whose catalog census reads one snapshot of the catalog (the
    catalog as it was when the census began), however long the pages take."""

    def catalog_census_pages(self, limit: int) -> Iterator[list[CatalogCensusRow]]:
        """`CatalogCensus.catalog_census_page` from the first key to the last,
        every page read in one read-only snapshot: executions that appends
        create meanwhile are not in it (nothing when no catalog is kept)."""
        ...


@runtime_checkable
class CatalogCensus(Protocol):
    """A backend that pages its execution catalog for the lifecycle's census."""

    def catalog_census_page(self, after: ExecutionKey, limit: int) -> list[CatalogCensusRow]:
        """Catalog rows after a key, in key order, each with the first three
        bytes of its execution's first and last stored rows (one query; []
        when the store keeps no catalog table)."""
        ...
