"""What the store hands back and whom it tells: results, summaries, the observer."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

import msgspec

from ..codec import (
    Generation,
)
from ..errors import (
    EventStoreError,
    Location,
)
from ..events import Event

DEFAULT_WRITER_VERSION: Final = "0.1.32"
"""duroxide_version stamped on appended events that carry none: the duroxide
release whose wire format eventstore writes (configurable per store)."""

_SEMVER: Final = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]*)?$")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


PlainFeedPage = tuple[list[int], list[str], list[int], list[Event]]
"""A feed page of plain V1 rows (`HistoryStore.plain_feed_page`): positions,
instance ids, execution ids and events, as parallel lists."""


class FeedRecord(msgspec.Struct, frozen=True, gc=False):
    """One event of the global feed, with the position to resume after."""

    position: int
    instance_id: str
    execution_id: int
    event: Event


class AppendResult(msgspec.Struct, frozen=True, gc=False):
    """What an append stored: the events as written (stamped and filled)."""

    events: list[Event]
    last_event_id: int
    written: bool
    """False when the batch was already stored whole (an idempotent retry)."""


class ExecutionStatus:
    RUNNING: Final = "Running"
    COMPLETED: Final = "Completed"
    FAILED: Final = "Failed"
    CONTINUED_AS_NEW: Final = "ContinuedAsNew"


_STATUS_BY_TERMINAL: Final = {
    "OrchestrationCompleted": ExecutionStatus.COMPLETED,
    "OrchestrationFailed": ExecutionStatus.FAILED,
    "OrchestrationContinuedAsNew": ExecutionStatus.CONTINUED_AS_NEW,
}


@dataclass(frozen=True, slots=True)
class InstanceSummary:
    instance_id: str
    orchestration_name: str | None
    orchestration_version: str | None
    status: str
    executions: int
    latest_execution: int
    events: int


@dataclass(slots=True)
class ImportReport:
    inserted: int = 0
    skipped_identical: int = 0
    corrupt: list[EventStoreError] = field(default_factory=list)
    """Rows left out with skip_corrupt, each error naming where the row was."""


class StoreObserver(Protocol):
    """Told about appends and decodes (the metrics module implements this)."""

    def appended(self, events: Sequence[Event], seconds: float) -> None: ...

    def decoded(self, generation: Generation, count: int) -> None: ...

    def decode_failed(self, location: Location) -> None: ...


def row_location(
    instance_id: str, execution_id: int, event_id: int | None, position: int | None
) -> Location:
    return Location(
        instance_id=instance_id, execution_id=execution_id, event_id=event_id, position=position
    )
