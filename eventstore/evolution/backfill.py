"""The timestamp backfill: `timestamp_ms` from the row's `created_at`, as a run.

A run of its own kind (`backfill-timestamps`), archived and rolled back like
a migration.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Final

import msgspec

from ..codec import Generation
from ..store import HistoryStore
from ..store.protocol import RawRow
from .recording import record_catalog, schema_metadata, set_schema_metadata
from .runs import (
    BACKFILL,
    DEFAULT_BATCH_SIZE,
    Change,
    MigrationReport,
    Transform,
    check_batch_size,
    decoded,
    dry_run_scan,
    execute_run,
    now,
    unfinished,
)

__all__ = ["BACKFILL_NOTE", "backfill_timestamps"]

BACKFILL_NOTE: Final = (
    "timestamp_ms filled from the row's created_at, at second precision (UTC); "
    "the event's real time lies within that second or shortly before it"
)


def _parse_created_at(value: str | None) -> int | None:
    """Milliseconds since the epoch of a created_at column, truncated to the second."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # both backends store UTC
    return int(moment.timestamp()) * 1000


_JSON: Final = msgspec.json.Decoder()
_JSON_OUT: Final = msgspec.json.Encoder()


def _backfill(store: HistoryStore) -> Transform:
    def transform(row: RawRow, report: MigrationReport) -> Change | None:
        found = decoded(store, row, report)
        if found is None:
            return None
        if found.generation != Generation.V1:
            report.keep("legacy row (migrate to V1 first)", row)
            return None
        if found.event.timestamp_ms > 0:
            report.current += 1
            return None
        millis = _parse_created_at(row.created_at)
        if millis is None:
            report.keep("no usable created_at", row)
            return None
        # Only the one field changes: every other key, known or not, is kept.
        obj = _JSON.decode(row.event_data)
        obj["timestamp_ms"] = millis
        data = _JSON_OUT.encode(obj).decode()
        report.by_generation["V1"] += 1
        change = {
            "event_id": row.event_id,
            "event_type": row.event_type,
            "timestamp_ms": millis,
            "from_created_at": row.created_at,
        }
        return row.event_type, data, change

    return transform


def backfill_timestamps(
    store: HistoryStore,
    *,
    dry_run: bool = False,
    force: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    log: IO[str] | None = None,
    progress: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> MigrationReport:
    """Fill `timestamp_ms` of V1 events that have none from `created_at` (a run).

    The request is kept in the catalog's evolution metadata: once a backfill
    has completed (and was not rolled back), asking again does nothing unless
    `force` (rows that got a timestamp are skipped either way).
    """
    check_batch_size(batch_size)
    report = MigrationReport(None, BACKFILL, "eager", "timestamp_ms", dry_run, note=BACKFILL_NOTE)
    transform = _backfill(store)
    if dry_run:
        return dry_run_scan(store, report, transform, batch_size, log, progress)
    previous = schema_metadata(store).get("backfill", {}).get("timestamp_ms")
    if previous and not force and unfinished(store, BACKFILL) is None:
        runs = {r.run_id: r for r in store.evolution.migration_runs()}
        done = runs.get(str(previous.get("run_id")))
        if done is not None and done.status == "completed":
            report.run_id = done.run_id
            report.status = "already-requested"
            return report
    record_catalog(store)
    result = execute_run(store, report, transform, batch_size, log, progress, on_batch)
    metadata = schema_metadata(store)
    metadata.setdefault("backfill", {})["timestamp_ms"] = {
        "run_id": result.run_id,
        "requested_at": now(),
        "rows": result.changed,
        "precision": "second",
    }
    set_schema_metadata(store, metadata)
    return result
