"""Every exception eventstore raises, in one module. The tree:

    EventStoreError
    +-- DecodeError (ValueError)          stored or given data is no event of any generation
    |   +-- RowMismatchError              a row's columns disagree with its event
    |   +-- RowDecodeError                (codec, internal) a row of a batch, by index
    +-- ValidationError (ValueError)      an append (or a call's arguments) broke the contract
    |   +-- HistoryRuleError              a history rule broken (store/rules.py; verify reports it)
    |   |   +-- EventOrderError           ids not increasing, not after the stored last, a gap
    |   |   +-- MissingStartError         a new execution not starting with OrchestrationStarted
    |   +-- IdentityMismatchError         an event of another instance or execution
    |   +-- InvalidEventError             fields of the wrong type, out of range, too large
    +-- ConcurrencyError                  another writer got there first
    +-- ConflictError                     imported or copied rows clash with stored ones
    +-- StoreError                        the database failed or refused an operation
    |   +-- StoreNotFoundError            no store at the target (and may not create one)
    |   +-- StoreBusyError                locked by another writer beyond the timeout
    |   |   +-- MigrationLockedError      another migration, backfill or rollback is running
    |   +-- ReadOnlyError                 a write on a store opened read-only
    |   +-- PositionsRenumberedError      a feed position names another event now
    |   +-- ArchiveError                  a retention archive is damaged or unreadable
    |       +-- ArchiveMissingError       the archive the shard manifest names is gone
    +-- TargetError (ValueError)          a target or option eventstore cannot open with
    +-- SchemaEvolutionError              a breaking change no migration covers
    |   +-- WriteGenerationError          a writer's generation is not the one the store records
    +-- InvalidHistoryError (ValueError)  a history that cannot be replayed at all
    +-- NondeterminismError               replayed code departs from its history
    |   +-- ReplayMismatchError           ... at this event, with what and where
    +-- RowsNeeded                        (store, internal) an awaited append's check
                                          needs stored rows first: never leaves the store

Driver errors (sqlite3, psycopg) and the interpreter errors their bindings
raise (OverflowError for an id beyond 64 bits, UnicodeEncodeError) are
translated into these at the backend boundary, each backend in one function
(`eventstore.backends.sqlite.translate`, `eventstore.backends.postgres.translate`);
none reaches a caller.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ArchiveError",
    "ArchiveMissingError",
    "ConcurrencyError",
    "ConflictError",
    "DecodeError",
    "EventOrderError",
    "EventStoreError",
    "HistoryRuleError",
    "IdentityMismatchError",
    "InvalidEventError",
    "InvalidHistoryError",
    "Location",
    "MigrationLockedError",
    "MissingStartError",
    "NondeterminismError",
    "PositionsRenumberedError",
    "ReadOnlyError",
    "ReplayMismatchError",
    "RowDecodeError",
    "RowMismatchError",
    "RowsNeeded",
    "SchemaEvolutionError",
    "StoreBusyError",
    "StoreError",
    "StoreNotFoundError",
    "TargetError",
    "ValidationError",
    "WriteGenerationError",
]


@dataclass(frozen=True, slots=True)
class Location:
    """Where a problem is: any of instance, execution, event id, feed position, line."""

    instance_id: str | None = None
    execution_id: int | None = None
    event_id: int | None = None
    position: int | None = None
    line: int | None = None

    def __str__(self) -> str:
        parts = []
        if self.instance_id is not None:
            parts.append(f"instance {self.instance_id!r}")
        if self.execution_id is not None:
            parts.append(f"execution {self.execution_id}")
        if self.event_id is not None:
            parts.append(f"event {self.event_id}")
        if self.position is not None:
            parts.append(f"position {self.position}")
        if self.line is not None:
            parts.append(f"line {self.line}")
        return ", ".join(parts)


class EventStoreError(Exception):
    """Base of every error eventstore raises."""

    def __init__(self, message: str, *, location: Location | None = None) -> None:
        self.message = message
        self.location = location
        super().__init__(f"{location}: {message}" if location and str(location) else message)


class DecodeError(EventStoreError, ValueError):
    """Stored or given data is not a valid event of any generation."""


class RowMismatchError(DecodeError):
    """A stored row's columns (id, type, instance, execution) disagree with its event."""


class RowDecodeError(DecodeError):
    """A stored row that does not decode, or disagrees with its columns."""

    def __init__(self, index: int, message: str, *, mismatch: bool = False) -> None:
        self.index = index
        self.mismatch = mismatch
        """True when the row decoded but its columns disagree with the event."""
        super().__init__(message)


class RowsNeeded(EventStoreError):
    """Internal to eventstore.store.async_route: an awaited append's checks ran
    against the rows fetched so far and need rows `first..last` as well (the
    route fetches them and runs the checks again; it never leaves the store)."""

    def __init__(self, first: int, last: int) -> None:
        self.span = (first, last)
        super().__init__(f"rows {first}..{last} are needed")


class ValidationError(EventStoreError, ValueError):
    """An append was refused because the events break the append contract (or a
    call's arguments cannot name anything a store holds)."""


class HistoryRuleError(ValidationError):
    """The events break a history rule (eventstore.store.rules): an id gap, a
    second or missing OrchestrationStarted, an event after the terminal one,
    a completion naming no matching earlier event. verify reports the same."""


class EventOrderError(HistoryRuleError):
    """Event ids are not increasing, or not after the last stored id."""


class IdentityMismatchError(ValidationError):
    """An event names another instance or execution than the append call."""


class MissingStartError(HistoryRuleError):
    """A new execution does not start with OrchestrationStarted."""


class InvalidEventError(ValidationError):
    """An event has fields of the wrong type or is too large to store."""


class ConcurrencyError(EventStoreError):
    """Another writer got there first: the stored history is not what was expected."""

    def __init__(
        self,
        message: str,
        *,
        location: Location | None = None,
        expected: int | None = None,
        actual: int | None = None,
    ) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(message, location=location)


class ConflictError(EventStoreError):
    """Imported or copied rows clash with different rows already stored."""


class StoreError(EventStoreError):
    """The database failed or refused an operation."""


class StoreNotFoundError(StoreError):
    """The target does not exist or holds no history table (and may not create one)."""


class StoreBusyError(StoreError):
    """The database stayed locked by another writer longer than the busy timeout."""


class MigrationLockedError(StoreBusyError):
    """Another migration, backfill or rollback holds the store's run lock."""


class ReadOnlyError(StoreError):
    """A write was attempted on a store opened read-only."""


class PositionsRenumberedError(StoreError):
    """A feed position no longer names the event it named (e.g. after VACUUM)."""


class ArchiveError(StoreError):
    """A retention archive is damaged, unreadable or fails its checksum.

    `shard` and `location` (the archive's path) say which; nothing is deleted
    from the table while its archive has not been verified.
    """

    def __init__(self, message: str, *, shard: str, location: str) -> None:
        self.shard = shard
        self.archive_location = location
        super().__init__(message)


class ArchiveMissingError(ArchiveError):
    """The archive the shard manifest names for an execution is gone (moved or deleted)."""


class TargetError(EventStoreError, ValueError):
    """A store target (path or URL), or an option, that eventstore cannot open with."""


class SchemaEvolutionError(EventStoreError):
    """A breaking schema change that no registered migration covers."""


class WriteGenerationError(SchemaEvolutionError):
    """A writer configured for one write generation, on a store that records another.

    `configured` is the writer's, `recorded` the store's (see
    `eventstore.open(write_generation=...)` and `eventstore cutover`).
    """

    def __init__(self, message: str, *, configured: str, recorded: str) -> None:
        super().__init__(message)
        self.configured = configured
        self.recorded = recorded


class NondeterminismError(EventStoreError):
    """Replayed orchestration code did something else than the history recorded."""


class InvalidHistoryError(EventStoreError, ValueError):
    """The history cannot be replayed at all (no start event, events after the end)."""


class ReplayMismatchError(NondeterminismError):
    """The code did something other than what the history recorded.

    `event_id` is the history event where they part, `recorded` what the
    history holds there, `attempted` what the code did instead and `where`
    the code's `file:line` (of the yield, or of the call that recorded it).
    """

    def __init__(
        self,
        *,
        event_id: int | None,
        recorded: str,
        attempted: str,
        where: str,
        location: Location | None = None,
    ) -> None:
        self.event_id = event_id
        self.recorded = recorded
        self.attempted = attempted
        self.where = where
        at = f"event {event_id}" if event_id is not None else "the end of the history"
        message = (
            f"nondeterminism at {at}: the history recorded {recorded}, "
            f"but the code {attempted}" + (f" (at {where})" if where else "")
        )
        super().__init__(message, location=location)
