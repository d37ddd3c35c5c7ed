"""An execution's page as data: its status, chain links, timeline bars and events.

Reads go through `HistoryStore` only (`read`, `executions`, `last_event_id`);
the status is the catalog's rule (`store/catalog.py` `status_of`).
"""

from __future__ import annotations

import time
from typing import Any, Final

from .. import events as ev
from ..errors import EventStoreError
from ..store import HistoryStore
from ..store.catalog import status_of
from .event_view import event_view
from .timeline import build_bars

__all__ = ["MAX_CHILD_READS", "execution_view"]

MAX_CHILD_READS: Final = 200
"""At most this many children's catalog records are looked up to split a
sub-orchestration's bar into wait and run; past it the bars stay whole."""


class _ChildStarts:
    """A child instance -> its first execution's start time (the catalog's
    `started_ms`: one indexed lookup, not the child's history), once each."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store
        self.found: dict[str, int | None] = {}

    def __call__(self, instance_id: str) -> int | None:
        if instance_id in self.found:
            return self.found[instance_id]
        started = None
        if len(self.found) < MAX_CHILD_READS:
            try:
                record = self.store.catalog_record(instance_id, 1)
            except EventStoreError:
                record = None
            started = record.started_ms if record is not None else None
        self.found[instance_id] = started
        return started


def _neighbours(executions: list[int], execution_id: int) -> tuple[int | None, int | None]:
    earlier = [e for e in executions if e < execution_id]
    later = [e for e in executions if e > execution_id]
    return (earlier[-1] if earlier else None), (later[0] if later else None)


def execution_view(
    store: HistoryStore, instance_id: str, execution_id: int | None
) -> dict[str, Any] | None:
    """The page of one execution (the latest when None); None if the store has no such one."""
    executions = store.executions(instance_id)
    if not executions:
        return None
    if execution_id is None:
        execution_id = executions[-1]
    elif execution_id not in executions:
        return None
    events = store.read(instance_id, execution_id)
    record = store.catalog_record(instance_id, execution_id)
    previous, following = _neighbours(executions, execution_id)
    times = [e.timestamp_ms for e in events if e.has_timestamp]
    start = times[0] if times else None
    started = events[0] if events and isinstance(events[0], ev.OrchestrationStarted) else None
    bars = build_bars(events, _ChildStarts(store))
    answered = {b.start_event_id: b.end_event_id for b in bars if b.end_event_id is not None}
    rows = []
    for event in events:
        row = event_view(event, start, following)
        row["answered_by"] = answered.get(event.event_id)
        rows.append(row)
    return {
        "instance_id": instance_id,
        "execution_id": execution_id,
        "executions": executions,
        "previous_execution": previous,
        "next_execution": following,
        "status": status_of(events[-1] if events else None),
        "name": started.name if started else None,
        "version": started.version if started else None,
        "last_event_id": events[-1].event_id if events else 0,
        "start_ms": start,
        "end_ms": max(times) if times else None,
        "now_ms": int(time.time() * 1000),
        "untimed_events": len(events) - len(times),
        "bytes": record.bytes if record is not None else None,
        "duration_ms": record.duration_ms if record is not None else None,
        "bars": [b.as_dict() for b in bars],
        "events": rows,
    }
