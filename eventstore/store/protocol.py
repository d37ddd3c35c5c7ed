"""The protocols a database backend implements beneath HistoryStore, by capability.

In the manner of eventsourcing's recorder hierarchy, each capability is its
own small protocol, and the store asks for one with `isinstance` (they are
all `runtime_checkable`):

    HistoryBackend    history rows: read, append, scan, the feed (required)
      writing() -> HistoryWriter
    EvolutionBackend  our eventstore_* tables: catalogs, migration runs and
                      log, the archive (what eventstore.evolution needs)
      evolving() -> EvolutionWriter
    WindowBackend     the dual-write window: the recorded write generation
                      and the shadow table (SQLite, PostgreSQL)
      writing() -> WindowWriter (the same writer, with the window's operations)
    Subscribable      wait_for_events: be woken by new commits (PostgreSQL)
    HoldsBackTheFeed  held_back: committed events the feed's horizon holds
                      back behind open transactions (PostgreSQL)
    Destroyable       destroy: drop everything the store keeps (throwaway stores)
    IntegrityCheckable
                      integrity_check: the database's own check, and the
                      history table counted two ways (what verify runs)
    GroupCommitting   commit_group: many appends in one transaction, each in
                      its own savepoint (group commit, eventstore.aio)
    HasAsyncTwin      asynchronous(): the same store for asyncio
                      (AsyncHistoryBackend, in store/async_protocol.py)
    ExecutionCatalog  the execution catalog: one row per execution, kept by
                      appends in their own transaction (store/catalog.py)
      writing() -> CatalogWriter (the same writer, with the catalog's operations)

The lifecycle's capabilities (the shard manifest, purges, migration
pruning) are in `store/lifecycle_protocol.py`, in the same manner.

The rows they speak are plain tuples (`eventstore.store.row_types`, re-exported
here). Backends speak rows, never events: the append contract and every rule live
once, in `eventstore.store`, and decoding in `eventstore.codec`. SQL and
driver errors stay inside a backend and are translated to eventstore's
exceptions there (`eventstore.errors`). Nothing outside `eventstore.store`
and `eventstore.backends` holds a backend: the rest of the package goes
through HistoryStore and its `evolution` facade.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .row_types import (
    ArchivedRow,
    CatalogDelta,
    CatalogQuery,
    CatalogRow,
    ExecutionRow,
    ExecutionSummary,
    FeedRow,
    InsertRow,
    IntegrityResult,
    MigrationLogRow,
    MigrationRun,
    NewEvents,
    PackedExecution,
    PackedFeed,
    RawRow,
    RowKey,
    SchemaVersionRow,
    StoredRow,
    UndecodedText,
    WindowCounts,
)

if TYPE_CHECKING:
    from .async_protocol import AsyncHistoryBackend
    from .row_types import OneFlightAppend

__all__ = [
    "CatalogDelta",
    "CatalogQuery",
    "CatalogRow",
    "CatalogWriter",
    "ExecutionCatalog",
    "ExecutionRow",
    "ExecutionSummary",
    "FeedRow",
    "ArchivedRow",
    "InsertRow",
    "IntegrityResult",
    "MigrationLogRow",
    "MigrationRun",
    "NewEvents",
    "AppendsInOneFlight",
    "PackedExecution",
    "PackedFeed",
    "RawRow",
    "SchemaVersionRow",
    "StoredRow",
    "EvolutionBackend",
    "EvolutionWriter",
    "HistoryBackend",
    "HasFeedHead",
    "HoldsBackTheFeed",
    "HistoryWriter",
    "RowKey",
    "UndecodedText",
    "WindowBackend",
    "WindowCounts",
    "WindowWriter",
    "Destroyable",
    "IntegrityCheckable",
    "Subscribable",
    "GroupCommitting",
    "GroupUnit",
    "HasAsyncTwin",
]


@runtime_checkable
class HistoryWriter(Protocol):
    """History operations inside one write transaction (or savepoint)."""

    def last_event(self, instance_id: str, execution_id: int, shard: str = "") -> tuple[int, str]:
        """(event_id, event_type) of the execution's last row, (0, "") when it
        has none: the append's concurrency check and the history rules'
        terminal check need both, so one indexed lookup gives both. `shard`
        is `NewEvents.shard` (the shard the batch derives when it starts the
        execution): a backend partitioned by shard looks there first."""
        ...

    def rows_between(
        self, instance_id: str, execution_id: int, first: int, last: int
    ) -> list[StoredRow]: ...

    def insert(self, batch: NewEvents) -> None: ...

    def insert_or_compare(self, row: InsertRow) -> str | None:
        """Insert a row; if its key exists, return the stored event_data instead."""
        ...


@runtime_checkable
class HistoryBackend(Protocol):
    """History rows: what every backend offers, and all a plain store needs."""

    readonly: bool
    stable_positions: bool
    """True when positions survive maintenance (VACUUM); see HistoryStore.read_all."""
    description: str
    """Where the store is, safe to print (never a password)."""

    def close(self) -> None: ...

    def writing(self) -> AbstractContextManager[HistoryWriter]: ...

    def transaction(self) -> AbstractContextManager[Any]: ...

    def execution_rows(self, instance_id: str, execution_id: int) -> list[ExecutionRow]: ...

    def execution_packed(self, instance_id: str, execution_id: int) -> PackedExecution | None:
        """The execution in one piece, or None when this backend cannot pack it
        exactly (the store then reads `execution_rows`)."""
        ...

    def position_of(self, instance_id: str, execution_id: int, event_id: int) -> int | None:
        """The feed position of one row (to name it in an error)."""
        ...

    def latest_execution(self, instance_id: str) -> int | None:
        """The highest integer execution id (a row holding anything else is no execution)."""
        ...

    def last_event_id(self, instance_id: str, execution_id: int) -> int:
        """The execution's last stored event id (0 when it has none)."""
        ...

    def executions(self, instance_id: str) -> list[int]: ...

    def instances(self) -> list[str]: ...

    def overview(self) -> list[tuple[str, int, int, int]]:
        """(instance_id, executions, latest execution, events) per instance, over
        rows with an integer execution id (a backend whose column is not typed
        leaves the others out: verify and read_all name them)."""
        ...

    def edge_rows(
        self, instance_id: str, execution_id: int
    ) -> tuple[StoredRow | None, StoredRow | None]:
        """The first and the last row of an execution."""
        ...

    def feed(self, after: int, limit: int) -> list[FeedRow]: ...

    def feed_packed(self, after: int, limit: int) -> PackedFeed | None:
        """The same page as `feed` in one piece, or None when this backend
        cannot pack it exactly (the store then reads `feed`)."""
        ...

    def key_at(self, position: int) -> tuple[str | bytes, int, int] | None:
        """The key at a feed position; an instance id that is not UTF-8 text as bytes."""
        ...

    def scan(self, batch: int) -> Iterator[list[RawRow]]:
        """Every row, ordered by instance, execution and event id, in batches."""
        ...

    def count(self) -> int: ...


@runtime_checkable
class EvolutionWriter(Protocol):
    """Schema-evolution operations inside one write transaction.

    The eventstore_* tables are created on first use (`ensure_evolution_tables`);
    history rows change only by key, in the same transaction as their archive
    and log records.
    """

    def ensure_evolution_tables(self) -> None:
        """Create the eventstore_ schema and migration tables if absent."""
        ...

    def record_schema_version(self, row: SchemaVersionRow) -> bool:
        """Insert a catalog record; False (and nothing changed) when its id exists."""
        ...

    def set_schema_metadata(self, version_id: str, metadata: str) -> None: ...

    def save_migration_run(self, run: MigrationRun) -> None:
        """Insert or replace a run record."""
        ...

    def rows_after(self, after: RowKey, limit: int) -> list[RawRow]:
        """Rows after a key, in key order, read under the write lock."""
        ...

    def archive_rows(self, run_id: str, rows: Sequence[ArchivedRow]) -> None:
        """Keep original rows for a rollback (a row already archived keeps its first copy)."""
        ...

    def update_rows_by_key(self, changes: Sequence[ArchivedRow]) -> None:
        """Rewrite event_type and event_data of the rows with these keys."""
        ...

    def log_migration(self, entries: Sequence[MigrationLogRow]) -> None:
        """Insert or replace per-execution migration log records."""
        ...


@runtime_checkable
class EvolutionBackend(Protocol):
    """Our own tables beside the history: catalogs, migration runs, log, archive.

    Reads return nothing (rather than fail) while the tables do not exist yet.
    """

    def evolving(self) -> AbstractContextManager[EvolutionWriter]:
        """One write transaction over the evolution tables and history rows."""
        ...

    def schema_versions(self) -> list[SchemaVersionRow]:
        """Recorded catalogs, oldest first."""
        ...

    def migration_runs(self) -> list[MigrationRun]:
        """Every run, oldest first."""
        ...

    def migration_log(self, run_id: str) -> list[MigrationLogRow]: ...

    def migration_lock(self, what: str) -> AbstractContextManager[None]:
        """Hold the store's run lock while the block runs (one migration,
        backfill or rollback at a time); MigrationLockedError at once when
        another holder has it. A holder that dies, however, must release it."""
        ...

    def archived_rows(self, run_id: str, after: RowKey, limit: int) -> list[ArchivedRow]:
        """A run's archived originals after a key, in key order."""
        ...


@runtime_checkable
class WindowWriter(Protocol):
    """The dual-write window's operations inside one write transaction.

    A `WindowBackend`'s `writing()` and `evolving()` writers have them.
    """

    def recorded_generation(self) -> str | None:
        """The store's write generation (None: never recorded, V1), under the write lock."""
        ...

    def set_write_generation(self, generation: str, at: str) -> None:
        """Record the write generation, creating the window's tables if absent."""
        ...

    def insert_shadow(self, batch: NewEvents) -> None:
        """Keep the V1 form of a batch whose history rows are written legacy."""
        ...

    def shadow_rows(self, first: RowKey, last: RowKey) -> dict[RowKey, tuple[str, str]]:
        """(event_type, event_data) of the shadow rows with keys first..last."""
        ...


@runtime_checkable
class WindowBackend(Protocol):
    """A backend that keeps a dual-write window (write generation, shadow rows).

    Reads answer "nothing recorded" while its tables do not exist; only
    `WindowWriter.set_write_generation` creates them.
    """

    def write_generation(self) -> str | None:
        """The recorded write generation; None when none was recorded."""
        ...

    def window_counts(self) -> WindowCounts: ...


@runtime_checkable
class Subscribable(Protocol):
    """A backend that can wait for new commits without polling (PostgreSQL: LISTEN/NOTIFY)."""

    def wait_for_events(self, after: int, timeout: float) -> bool:
        """True as soon as the feed has an event after `after`; False after `timeout` s."""
        ...


@runtime_checkable
class HoldsBackTheFeed(Protocol):
    """A backend whose feed holds committed events back behind transactions
    still open (PostgreSQL: the feed's horizon, backends/postgres/writer.py)."""

    def held_back(self) -> tuple[int, float | None]:
        """(committed events held back, age in seconds of the oldest or None)."""
        ...


@runtime_checkable
class HasFeedHead(Protocol):
    """A backend that can read its feed from the end: where a reader could
    resume now without skipping anything, and the rows just before it."""

    def feed_last(self, limit: int) -> list[FeedRow]:
        """The last `limit` rows the feed shows now, in feed order: the last of
        them is the feed's head, and resuming after its position skips nothing
        committed since (PostgreSQL: only rows below the snapshot's horizon,
        as `feed` itself; a transaction still open cannot commit rows before
        them). Empty when the feed shows nothing."""
        ...


@runtime_checkable
class IntegrityCheckable(Protocol):
    """A backend that can run its database's own consistency check (verify)."""

    def integrity_check(self) -> IntegrityResult:
        """Run the database's own check and count the history table's rows
        from the table and through its indexes; read only, so it works on a
        read-only store. A check the database lacks is `ran=False` with a
        `note`, never an error."""
        ...


@runtime_checkable
class Destroyable(Protocol):
    """A backend that can drop what it keeps: for throwaway stores (tests)."""

    def destroy(self) -> None:
        """Drop the history table and our tables (PostgreSQL: and the schema, if
        nothing else is in it, never `public`), then close."""
        ...


GroupUnit = Callable[[HistoryWriter], Any]
"""One append of a group: its checks and insert against the group's writer."""


@runtime_checkable
class GroupCommitting(Protocol):
    """A backend that commits many appends in one transaction (group commit).

    `group_commit` says whether it was opened to (SQLite's `group_commit=True`);
    the store's drivers (threads: store/grouping.py, asyncio: store/async_group.py)
    decide which appends form a group, the backend only runs one.
    """

    group_commit: bool
    group_size: int
    """At most this many appends go into one commit."""

    def in_transaction(self) -> bool:
        """True when the calling thread has a `transaction()` open (its appends
        join that transaction instead of a group)."""
        ...

    def commit_group(self, units: Sequence[GroupUnit]) -> list[Any]:
        """Run each unit in its own savepoint of one write transaction, then commit.

        Returns, per unit and in order, what it returned or the exception it
        raised (its savepoint rolled back, the others unaffected). Returns
        only after the commit: when the commit itself fails it raises, and
        nothing of the group is stored.
        """
        ...


@runtime_checkable
class AppendsInOneFlight(Protocol):
    """A common append in one call, checked on the server; False: the plain route."""

    one_flight: bool

    def append_in_one_flight(self, append: OneFlightAppend) -> bool: ...


@runtime_checkable
class HasAsyncTwin(Protocol):
    """A backend with an asyncio twin on the same store (not yet opened)."""

    def asynchronous(self) -> AsyncHistoryBackend: ...


@runtime_checkable
class CatalogWriter(Protocol):
    """The execution catalog's operations inside one write transaction.

    An `ExecutionCatalog` backend's `writing()` writers have them; the append
    route calls `catalog_advance` after its insert, in the same transaction,
    so the catalog and the history commit together or not at all.
    """

    def ensure_catalog(self) -> None:
        """Create the catalog's tables if absent (empty)."""
        ...

    def catalog_advance(self, delta: CatalogDelta) -> bool:
        """Apply one append: insert the row of a new execution (replacing any
        row left for that key), or move an existing one forward when it still
        ends at `delta.previous_last_event_id`. False when it does not (rows
        were written without the catalog): the store then recomputes it."""
        ...

    def catalog_put(self, rows: Sequence[CatalogRow]) -> None:
        """Insert or replace whole rows."""
        ...

    def catalog_remove(self, keys: Sequence[tuple[str, int]]) -> None: ...

    def catalog_clear(self) -> None:
        """Delete every row and reset the feed position (a rebuild starts here)."""
        ...

    def set_catalog_position(self, position: int) -> None:
        """Record the feed position the catalog has caught up to."""
        ...

    def execution_summary(self, instance_id: str, execution_id: int) -> ExecutionSummary | None:
        """The execution as the history holds it, read in this transaction."""
        ...


@runtime_checkable
class ExecutionCatalog(Protocol):
    """A backend that can keep an execution catalog (SQLite, PostgreSQL).

    `catalog_kept()` says whether this store keeps one (a table eventstore
    created; never on a database duroxide created). Where it does not, the
    store derives records from `execution_summaries`, which read the history.
    """

    can_keep_catalog: bool
    """False on a database duroxide created: nothing adds a table to it."""

    def catalog_kept(self) -> bool:
        """True when the catalog's table exists (then appends keep it)."""
        ...

    def feed_end(self) -> int:
        """The highest feed position (0 when the table is empty)."""
        ...

    def catalog_rows(self, query: CatalogQuery) -> list[CatalogRow]:
        """Stored rows matching the filters, newest start first (no start
        last), then by instance and execution."""
        ...

    def catalog_row(self, instance_id: str, execution_id: int) -> CatalogRow | None: ...

    def catalog_page(self, after: tuple[str, int], limit: int) -> list[CatalogRow]:
        """Stored rows after a key, in key order (verify, constant memory)."""
        ...

    def catalog_position(self) -> int:
        """The feed position the catalog was caught up to (0: never)."""
        ...

    def execution_summaries(self, after: tuple[str, int], limit: int) -> list[ExecutionSummary]:
        """Executions after a key, in key order, as the history holds them
        (integer execution ids and text instance ids only: verify names the rest)."""
        ...
