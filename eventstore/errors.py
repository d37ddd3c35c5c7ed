"""The exception tree. Every error eventstore raises derives from EventStoreError.

Backend driver errors (sqlite3, psycopg) are translated into these at the
backend boundary, each backend in one function (`_translate` in its module).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConcurrencyError",
    "ConflictError",
    "DecodeError",
    "EventOrderError",
    "EventStoreError",
    "IdentityMismatchError",
    "InvalidEventError",
    "Location",
    "MissingStartError",
    "NondeterminismError",
    "PositionsRenumberedError",
    "ReadOnlyError",
    "RowMismatchError",
    "SchemaEvolutionError",
    "StoreBusyError",
    "StoreError",
    "StoreNotFoundError",
    "TargetError",
    "ValidationError",
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


class ValidationError(EventStoreError, ValueError):
    """An append was refused because the events break the append contract."""


class EventOrderError(ValidationError):
    """Event ids are not increasing, or not after the last stored id."""


class IdentityMismatchError(ValidationError):
    """An event names another instance or execution than the append call."""


class MissingStartError(ValidationError):
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


class ReadOnlyError(StoreError):
    """A write was attempted on a store opened read-only."""


class PositionsRenumberedError(StoreError):
    """A feed position no longer names the event it named (e.g. after VACUUM)."""


class TargetError(EventStoreError, ValueError):
    """A store target (path or URL) that eventstore cannot open."""


class SchemaEvolutionError(EventStoreError):
    """A breaking schema change that no registered migration covers."""


class NondeterminismError(EventStoreError):
    """Replayed orchestration code did something else than the history recorded."""
