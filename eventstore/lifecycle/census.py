"""One pass over the store: every execution with its shard, status and size.

`shard_census` yields one `ExecutionInfo` per execution, in (instance,
execution) order: its shard (`derive_shard_key` of the `OrchestrationStarted`
timestamp, the one rule), its status, rows, bytes and generations. Shard
totals (`ShardTotals`) come from the same pass. Retention and `eventstore
shards` stand on it. Two routes to the same answer:

* the execution catalog, where it is authoritative (a table eventstore
  created, which appends, imports and migrations keep in their own
  transactions; retention catches it up with other programs' rows first):
  one keyset page of catalog rows at a time, each with the first bytes of
  its execution's first and last rows for the generation sniff. No other
  history row is read.
* `census`: a scan of the whole history (keyset pages, constant memory),
  status from each execution's last row, where the catalog is derived (a
  database duroxide created, a store from before the catalog) and for
  `shards rebase`, which exists to derive shards from the events again.

The generations differ in one respect: the catalog route sniffs each
execution's first and last rows, the scan every row. An execution's rows
come from the writers of its lifetime in order (legacy ones, then V1 after
an upgrade), so its first and last rows show both generations when it has
both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from .. import events as ev
from ..codec import UNRECORDED_TYPE
from ..codec.generation import legacy_shaped
from ..errors import DecodeError, StoreError
from ..store import HistoryStore
from ..store.lifecycle_protocol import CatalogCensusRow
from ..store.protocol import RawRow
from ..store.shard_key import derive_shard_key

__all__ = ["TERMINAL_STATUSES", "ExecutionInfo", "ShardTotals", "census", "shard_census"]

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


_FROM_CATALOG: Final = {"cancelled": "failed"}
"""The catalog tells a cancellation from a failure; retention's statuses go by
the terminal event's type, for which a cancellation is an OrchestrationFailed."""


def _generations(*heads: bytes | str | None) -> set[str]:
    return {"V0" if legacy_shaped(head) else "V1" for head in heads if head is not None}


def _from_catalog(
    rows: Iterator[CatalogCensusRow], progress: Callable[[int], object] | None
) -> Iterator[ExecutionInfo]:
    for row in rows:
        if row.first_head is None:
            continue  # rows deleted by another program: not in the table
        yield ExecutionInfo(
            row.instance_id,
            row.execution_id,
            row.shard,
            _FROM_CATALOG.get(row.status, row.status),
            row.started_ms,
            row.event_count,
            row.stored_bytes,
            _generations(row.first_head, row.last_head),
        )
        if progress is not None:
            progress(row.event_count)


def shard_census(
    store: HistoryStore,
    *,
    catch_up: bool = False,
    progress: Callable[[int], object] | None = None,
) -> Iterator[ExecutionInfo]:
    """Every execution the table holds, in key order: from the execution
    catalog where the store keeps one (caught up first with `catch_up`),
    else by the history scan (`census`)."""
    try:
        lifecycle = store.lifecycle
    except StoreError:  # a backend without the lifecycle's tables
        return census(store, progress=progress)
    if lifecycle.has_catalog_census():
        if catch_up:
            store.catalog_catch_up()
        rows = lifecycle.catalog_census()
        if rows is not None:
            return _from_catalog(rows, progress)
    return census(store, progress=progress)
