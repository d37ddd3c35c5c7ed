"""The small protocol each database backend implements beneath HistoryStore.

Backends speak rows, never events: the append contract, decoding and every
rule live once, in `eventstore.store`. SQL and driver errors stay inside a
backend and are translated to eventstore's exceptions there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Protocol

__all__ = ["Backend", "InsertRow", "NewRow", "RawRow", "StoredRow", "Writer"]

NewRow = tuple[str, int, int, str, str]
"""(instance_id, execution_id, event_id, event_type, event_data) of an appended
event; created_at comes from the database clock. Plain tuples: this is the
append hot path."""


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


class Writer(Protocol):
    """Operations inside one write transaction (or savepoint)."""

    def last_event_id(self, instance_id: str, execution_id: int) -> int: ...

    def rows_between(
        self, instance_id: str, execution_id: int, first: int, last: int
    ) -> list[StoredRow]: ...

    def insert(self, rows: Sequence[NewRow]) -> None: ...

    def insert_or_compare(self, row: InsertRow) -> str | None:
        """Insert a row; if its key exists, return the stored event_data instead."""
        ...

    def update_rows(self, changes: Sequence[tuple[int, str, str]]) -> None:
        """Rewrite (position, event_type, event_data) in place."""
        ...


class Backend(Protocol):
    readonly: bool
    stable_positions: bool
    """True when positions survive maintenance (VACUUM); see HistoryStore.read_all."""
    description: str
    """Where the store is, safe to print (never a password)."""

    def close(self) -> None: ...

    def writing(self) -> AbstractContextManager[Writer]: ...

    def transaction(self) -> AbstractContextManager[Any]: ...

    def execution_rows(self, instance_id: str, execution_id: int) -> list[StoredRow]: ...

    def latest_execution(self, instance_id: str) -> int | None: ...

    def executions(self, instance_id: str) -> list[int]: ...

    def instances(self) -> list[str]: ...

    def overview(self) -> list[tuple[str, int, int, int]]:
        """(instance_id, executions, latest execution, events) per instance."""
        ...

    def edge_rows(
        self, instance_id: str, execution_id: int
    ) -> tuple[StoredRow | None, StoredRow | None]:
        """The first and the last row of an execution."""
        ...

    def feed(self, after: int, limit: int) -> list[RawRow]: ...

    def key_at(self, position: int) -> tuple[str, int, int] | None: ...

    def scan(self, batch: int) -> Iterator[list[RawRow]]:
        """Every row, ordered by instance, execution and event id, in batches."""
        ...

    def count(self) -> int: ...
