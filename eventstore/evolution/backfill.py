"""The timestamp backfill: `timestamp_ms` from the row's `created_at`, as a run.

A run of its own kind (`backfill-timestamps`), archived and rolled back like
a migration.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Final

import msgspec

from .. import events as ev
from ..codec import Generation
from ..store import HistoryStore
from ..store.protocol import MigrationRun, RawRow
from .catalogs import CURRENT
from .cutover import refuse_during_window
from .lock import run_lock
from .recording import record_catalog, schema_metadata, set_schema_metadata
from .runs import (
    BACKFILL,
    DEFAULT_BATCH_SIZE,
    NOTHING_TO_DO,
    Change,
    MigrationReport,
    Transform,
    check_batch_size,
    decoded,
    dry_run_scan,
    execute_run,
    first_rewrite,
    kept_from,
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


def _stamped(row: RawRow, millis: int) -> str:
    """A V1 row's JSON with `timestamp_ms` set: only that field changes, every
    other key, known or not, is kept as stored."""
    obj = _JSON.decode(row.event_data)
    obj["timestamp_ms"] = millis
    return _JSON_OUT.encode(obj).decode()


def _backfill(store: HistoryStore) -> Transform:
    codec = store.codec

    def transform(row: RawRow, report: MigrationReport) -> Change | None:
        found = decoded(store, row, report)
        if found is None:
            return None
        event = found.event
        legacy = found.generation != Generation.V1
        if legacy and type(event) in (ev.SystemCall, ev.UnknownEvent):
            report.keep(f"legacy {event.event_type} (no V1 form)", row)
            return None
        if event.timestamp_ms > 0:
            report.current += 1
            return None
        millis = _parse_created_at(row.created_at)
        if millis is None:
            report.keep("no usable created_at", row)
            return None
        if legacy:
            # Upcast to V1 in the same rewrite: a legacy row has no field to
            # hold a timestamp. The archive keeps the original for rollback.
            data = codec.encode(msgspec.structs.replace(event, timestamp_ms=millis)).decode()
        else:
            data = _stamped(row, millis)
        report.by_generation[str(found.generation)] += 1
        change = {
            "event_id": row.event_id,
            "event_type": event.event_type,
            "timestamp_ms": millis,
            "from_created_at": row.created_at,
            **({"from": str(found.generation), "to": CURRENT} if legacy else {}),
        }
        return event.event_type, data, change

    return transform


def _already_done(store: HistoryStore) -> MigrationRun | None:
    """The completed backfill that rewrote rows and still stands, if any.

    A run that changed nothing is not recorded at all, and (in stores from
    before that was so) one recorded with no rows does not count: it must not
    stop a later backfill from stamping rows that arrived since.
    """
    previous = schema_metadata(store).get("backfill", {}).get("timestamp_ms")
    if not previous or unfinished(store, BACKFILL) is not None:
        return None
    runs = {r.run_id: r for r in store.evolution.migration_runs()}
    done = runs.get(str(previous.get("run_id")))
    if done is not None and done.status == "completed" and done.rows > 0:
        return done
    return None


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
    """Fill `timestamp_ms` of events that have none from `created_at` (a run).

    V1 rows get the one field; legacy rows (which have no such field) are
    upcast to V1 with it, in the same run, so rolling the run back restores
    them as they were. Legacy SystemCall rows have no V1 form and are kept.
    The request is kept in the catalog's evolution metadata: once a backfill
    has rewritten rows (and was not rolled back), asking again does nothing
    unless `force` (rows that got a timestamp are skipped either way). A run
    with nothing to rewrite writes nothing. Holds the store's run lock.
    """
    check_batch_size(batch_size)
    report = MigrationReport(None, BACKFILL, "eager", "timestamp_ms", dry_run, note=BACKFILL_NOTE)
    transform = _backfill(store)
    if dry_run:
        return dry_run_scan(store, report, transform, batch_size, log, progress)
    done = None if force else _already_done(store)
    if done is None and unfinished(store, BACKFILL) is None:
        probe = MigrationReport(None, "probe", "eager", "", True)
        work, examined = first_rewrite(store, transform, batch_size, probe)
        if not work:
            report.scanned, report.status = examined, NOTHING_TO_DO
            kept_from(report, probe)
            return report
    refuse_during_window(store, "backfill-timestamps")
    with run_lock(store, "backfill-timestamps"):
        done = None if force else _already_done(store)  # again, under the lock
        if done is not None:
            report.run_id = done.run_id
            report.status = "already-requested"
            return report
        result = execute_run(store, report, transform, batch_size, log, progress, on_batch)
        if result.run_id is None:
            return result
        record_catalog(store)
        metadata = schema_metadata(store)
        metadata.setdefault("backfill", {})["timestamp_ms"] = {
            "run_id": result.run_id,
            "requested_at": now(),
            "rows": result.changed,
            "precision": "second",
        }
        set_schema_metadata(store, metadata)
    return result
