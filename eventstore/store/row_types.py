"""The rows backends and the store exchange: plain tuples, one type per shape.

Re-exported by `eventstore.store.protocol`, where the protocols that speak
them are.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "CatalogCensusRow",
    "CatalogDelta",
    "CatalogQuery",
    "CatalogRow",
    "ExecutionRow",
    "ExecutionSummary",
    "FeedRow",
    "ArchivedRow",
    "ArchivedExecution",
    "ExecutionKey",
    "PurgeKey",
    "ShardArchiveRow",
    "ShardRow",
    "InsertRow",
    "IntegrityResult",
    "MigrationLogRow",
    "MigrationRun",
    "NewEvents",
    "OneFlightAppend",
    "PackedExecution",
    "PackedFeed",
    "RawRow",
    "SchemaVersionRow",
    "StoredRow",
    "RowKey",
    "UndecodedText",
    "WindowCounts",
]

FeedRow = tuple[int, str, int, int, str, "str | bytes", "str | None"]
"""A feed row as backends return it: a plain tuple in RawRow's field order
(the store wraps it only where a caller wants RawRow)."""

ExecutionRow = tuple[int, str, "str | bytes"]
"""(event_id, event_type, event_data) of one execution's row, as reads fetch it."""


class NewEvents(NamedTuple):
    """One appended batch of an execution, column by column.

    Parallel lists rather than a tuple per row: this is the append hot path,
    and SQLite binds them into multi-row INSERTs without building rows.
    created_at comes from the database clock.
    """

    instance_id: str
    execution_id: int
    event_ids: list[int]
    event_types: list[str]
    event_data: list[bytes]
    """UTF-8 JSON, as the codec encoded it."""
    shard: str = ""
    """The execution's day shard (`shard_key.derive_shard_key`) when this
    batch starts it (event 1), else empty: a backend that partitions by
    shard puts a stored execution's rows where its first rows are."""


class OneFlightAppend(NamedTuple):
    """An append a backend may write in one flight, deciding on the server
    (`store/one_flight.py` builds it, PostgreSQL's `one_flight.py` sends it).

    The backend writes `new` only when, under the execution's lock, the
    stored last event has id `after` (0: nothing stored) and, when `after` is
    not 0, a type outside `refused` and, when `wanted` is not None, inside
    `wanted`; and, with `catalog` given, the catalog row of a continued
    execution still ends at `after`. Else it writes nothing and declines.
    """

    new: NewEvents
    after: int
    wanted: frozenset[str] | None
    refused: frozenset[str]
    catalog: CatalogRow | None
    """The execution's catalog row after the append (store/catalog.py
    `row_after`); None when the store keeps no catalog."""


class PackedExecution(NamedTuple):
    """An execution's rows in one piece, as a backend can fetch them in one go.

    The database joins the rows (in event-id order) so the driver builds a
    few objects per execution rather than several per row; the codec decodes
    `event_data` line by line, and checks that it splits into one line per
    row (else the store reads the rows one by one).
    """

    event_ids: list[int]
    event_types: list[str]
    event_data: bytes
    """Every row's event_data, joined by b"\\n", in event-id order."""


class PackedFeed(NamedTuple):
    """A page of the global feed in one piece (see `PackedExecution`): the
    rows' columns as parallel lists, in feed order, and their event_data
    joined by b"\n"."""

    positions: list[int]
    instance_ids: list[str]
    execution_ids: list[int]
    event_ids: list[int]
    event_types: list[str]
    event_data: bytes


class InsertRow(NamedTuple):
    """A whole row to import verbatim; created_at None means the database clock."""

    instance_id: str
    execution_id: int
    event_id: int
    event_type: str
    event_data: str
    created_at: str | None = None


class StoredRow(NamedTuple):
    """One row of an execution, as read for decoding."""

    event_id: int
    event_type: str
    event_data: str | bytes
    position: int


class RawRow(NamedTuple):
    """A whole history row, with its feed position."""

    position: int
    instance_id: str
    execution_id: int
    event_id: int
    event_type: str
    event_data: str | bytes
    created_at: str | None


class SchemaVersionRow(NamedTuple):
    """A schema catalog the store has been written with (`eventstore_schema_versions`)."""

    version_id: str
    hash: str
    first_used_at: str
    catalog: str
    """The catalog itself (JSON), so later checks can compare against it."""
    metadata: str
    """Evolution metadata (JSON): classification, changes, requested backfills."""


class MigrationRun(NamedTuple):
    """One migration run (`eventstore_migration_runs`)."""

    run_id: str
    kind: str
    """"migrate" or "backfill-timestamps"."""
    strategy: str
    target: str
    status: str
    """running | completed | rolling_back | rolled_back"""
    started_at: str
    finished_at: str | None
    rows: int
    """Rows rewritten (and archived) so far."""
    cursor: str | None
    """JSON [instance_id, execution_id, event_id] of the last row handled: where to resume."""
    details: str
    """JSON: counts and notes of the run."""


class ArchivedRow(NamedTuple):
    """A row's key with an event_type and event_data (archived original or rewrite)."""

    instance_id: str
    execution_id: int
    event_id: int
    event_type: str
    event_data: str


class IntegrityResult(NamedTuple):
    """What the database's own integrity check found (`IntegrityCheckable.integrity_check`)."""

    tool: str
    """What ran: `PRAGMA integrity_check`, `amcheck bt_index_check`, ..."""
    ran: bool
    """False when the check is not available here (`note` says why)."""
    problems: list[str]
    """The check's own messages; empty when it found nothing."""
    table_rows: int
    """Rows of the history table counted from the table itself (no index)."""
    index_rows: dict[str, int]
    """Rows of the history table counted through its indexes."""
    note: str = ""


class MigrationLogRow(NamedTuple):
    """What one batch of a run changed in one execution (`eventstore_migration_log`)."""

    run_id: str
    instance_id: str
    execution_id: int
    first_event_id: int
    strategy: str
    status: str
    changes: str
    """JSON change set."""


class UndecodedText(bytes):
    """A TEXT value whose bytes are not UTF-8 (a hand-written SQLite row), as its bytes.

    Whole-store reads return it in place of a str, so the row can be reported
    by position; a plain `bytes` value is a BLOB.
    """

    __slots__ = ()


RowKey = tuple[str | bytes, int, int]
"""(instance_id, execution_id, event_id): duroxide's key, stable on every backend."""


class WindowCounts(NamedTuple):
    """The dual-write window as `schema check` reports it."""

    generation: str | None
    """The recorded write generation; None when none was ever recorded (V1)."""
    shadowed: int
    """History rows that have a shadow (V1) form."""
    pending: int
    """... of which the history row still differs from it (not cut over yet)."""
    total: int
    """History rows."""


# -- the execution catalog (store/catalog.py) ---------------------------------

CatalogRow = tuple[
    str, int, "str | None", "str | None", str, "int | None", "int | None", int, int, int, str
]
"""One catalog row in `ExecutionRecord`'s field order: instance_id, execution_id,
name, version, status, started_ms, ended_ms, last_event_id, event_count,
bytes, shard."""


class CatalogDelta(NamedTuple):
    """What one append adds to its execution's catalog row.

    A new execution (`previous_last_event_id` 0) gets the whole row; an
    existing one only moves forward, and only when its row still says it
    ends at `previous_last_event_id` (else the store recomputes it).
    """

    row: CatalogRow
    previous_last_event_id: int


class CatalogQuery(NamedTuple):
    """The filters of `HistoryStore.catalog_executions` (None: no filter)."""

    status: tuple[str, ...] | None = None
    name: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    shard: str | None = None
    instance_like: str | None = None
    limit: int | None = None
    offset: int = 0
    latest_only: bool = False


class ExecutionSummary(NamedTuple):
    """An execution as the history holds it: what the catalog is derived from.

    The first and the last rows (event_id, event_type, event_data) are decoded
    by the store (name, version, start; status, end); the counts come from
    the database.
    """

    instance_id: str
    execution_id: int
    last_event_id: int
    event_count: int
    bytes: int
    first: ExecutionRow
    last: ExecutionRow


ExecutionKey = tuple[str, int]
"""(instance_id, execution_id) of one execution."""

PurgeKey = tuple[str, int, int, int | None]
"""(instance_id, execution_id, rows, last_position): an execution to delete,
the rows it must still hold (its archived copy's) and the feed position of
its last row when it was archived (None: not checked, a table without
positions) for the delete to happen. The position tells a copy apart from
an execution id reused after a purge with as many rows."""


class ShardRow(NamedTuple):
    """One shard's record in the shard manifest (`eventstore_shards`)."""

    shard: str
    """`YYYY-MM-DD` or `root` (eventstore.lifecycle.shard_key)."""
    state: str
    """active, archived (some executions live in archives) or purged (none left in the table)."""
    executions: int
    running: int
    rows: int
    bytes: int
    earliest_ms: int | None
    latest_ms: int | None
    generations: str
    """JSON list of the generations present, e.g. ["V0a", "V1"]."""
    archive_location: str | None
    """The newest archive of the shard (every one: `eventstore_shard_archives`)."""
    archive_rows: int
    """Rows in all the shard's purged archives."""
    archive_checksum: str | None
    updated_at: str


class ShardArchiveRow(NamedTuple):
    """One archive file a retention run wrote (`eventstore_shard_archives`)."""

    archive_id: str
    shard: str
    state: str
    """writing (the file may be partial), verified (file checked, rows may
    still be in the table), purged (the archived rows are gone from the table)."""
    location: str
    rows: int
    executions: int
    checksum: str
    """sha256 of the file's bytes, hex ("" while writing)."""
    created_at: str


class ArchivedExecution(NamedTuple):
    """Where one archived execution is (`eventstore_archived_executions`)."""

    instance_id: str
    execution_id: int
    archive_id: str
    shard: str
    rows: int
    offset: int
    """Byte offset of the gzip member holding the execution's rows."""
    last_position: int | None = None
    """The feed position of its last row when archived (None: no positions,
    or indexed before positions were recorded)."""


class CatalogCensusRow(NamedTuple):
    """One execution as the catalog holds it, for the lifecycle's census: its
    catalog fields and the first bytes of its first and last rows (the
    generation sniff, `codec/generation.py`, is applied by the caller)."""

    instance_id: str
    execution_id: int
    status: str
    started_ms: int | None
    event_count: int
    stored_bytes: int
    shard: str
    first_head: bytes | str | None
    last_head: bytes | str | None
