"""One pass over the store: every execution with its shard, status and size.

The census streams `store.scan()` (keyset pages, constant memory) and yields
one `ExecutionInfo` per execution, in (instance, execution) order: its shard
from the `OrchestrationStarted` timestamp (`derive_shard_key`, the one rule),
its status from its last row, its rows, bytes and generations. Shard totals
(`ShardTotals`) come from the same pass. Retention and `eventstore shards`
both stand on it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from .. import events as ev
from ..codec import UNRECORDED_TYPE
from ..codec.generation import legacy_shaped
from ..errors import DecodeError
from ..store import HistoryStore
from ..store.protocol import RawRow
from ..store.shard_key import derive_shard_key

__all__ = ["TERMINAL_STATUSES", "ExecutionInfo", "ShardTotals", "census"]

_STATUS_OF: Final = {
    "OrchestrationCompleted": "completed",
    "OrchestrationFailed": "failed",
    "OrchestrationContinuedAsNew": "continued_as_new",
}
TERMINAL_STATUSES: Final = tuple(_STATUS_OF.values())
"""The statuses retention may archive (a running execution always stays)."""


@dataclass(slots=True)
class ExecutionInfo:
    instance_id: str
    execution_id: int
    shard: str
    status: str
    started_ms: int | None
    rows: int
    bytes: int
    generations: set[str]


@dataclass(slots=True)
class ShardTotals:
    """A shard's executions as the table holds them now."""

    executions: int = 0
    running: int = 0
    rows: int = 0
    bytes: int = 0
    earliest_ms: int | None = None
    latest_ms: int | None = None
    generations: set[str] = field(default_factory=set)

    def add(self, info: ExecutionInfo) -> None:
        self.executions += 1
        self.running += info.status == "running"
        self.rows += info.rows
        self.bytes += info.bytes
        self.generations |= info.generations
        if info.started_ms:
            if self.earliest_ms is None or info.started_ms < self.earliest_ms:
                self.earliest_ms = info.started_ms
            if self.latest_ms is None or info.started_ms > self.latest_ms:
                self.latest_ms = info.started_ms


def _started_ms(store: HistoryStore, row: RawRow) -> int | None:
    with contextlib.suppress(DecodeError):
        event = store.decode_raw(row).event
        if isinstance(event, ev.OrchestrationStarted):
            return event.timestamp_ms or None
    return None


def _status(store: HistoryStore, row: RawRow) -> str:
    status = _STATUS_OF.get(row.event_type)
    if status is None and row.event_type == UNRECORDED_TYPE:
        # duroxide's PostgreSQL rows name no type: ask the event itself.
        with contextlib.suppress(DecodeError):
            status = _STATUS_OF.get(store.decode_raw(row).event.event_type)
    return status or "running"


def _info(store: HistoryStore, rows: list[RawRow]) -> ExecutionInfo:
    first, last = rows[0], rows[-1]
    started = _started_ms(store, first)
    data_bytes = 0
    legacy = False
    for row in rows:
        data_bytes += len(row.event_data)
        legacy = legacy or legacy_shaped(row.event_data)
    plain = any(not legacy_shaped(row.event_data) for row in rows) if legacy else True
    generations = ({"V1"} if plain else set()) | ({"V0"} if legacy else set())
    status = _status(store, last)
    return ExecutionInfo(
        str(first.instance_id),
        int(first.execution_id),
        derive_shard_key(started),
        status,
        started,
        len(rows),
        data_bytes,
        generations,
    )


def census(
    store: HistoryStore, *, batch: int = 2000, progress: Callable[[int], object] | None = None
) -> Iterator[ExecutionInfo]:
    """Every execution the table holds, in (instance, execution) order."""
    current: list[RawRow] = []
    for page in store.scan(batch):
        for row in page:
            if current and (
                row.instance_id != current[0].instance_id
                or row.execution_id != current[0].execution_id
            ):
                yield _info(store, current)
                current = []
            current.append(row)
        if progress is not None:
            progress(len(page))
    if current:
        yield _info(store, current)
