"""Migrations of stored rows: eager rewrites to V1, timestamp backfill, rollback.

Rows stay as written by default and are upcast on read (the *lazy* strategy;
nothing to do). An *eager* migration rewrites them in place, in batches:

* Rows are visited in duroxide's key order (instance, execution, event id),
  `batch_size` at a time, each batch read and rewritten inside one write
  transaction. That transaction also keeps the original rows in
  `eventstore_archive`, writes one record per execution it touched to
  `eventstore_migration_log` (run id, strategy, status, change set) and moves
  the run's cursor in `eventstore_migration_runs`.
* A run that was interrupted (killed, crashed) is resumed by running the same
  command again: the unfinished run continues from its cursor, under its run
  id. A batch is all or nothing, so nothing is migrated twice or lost; a row
  that is already in the target form is left alone, so a run is idempotent.
* Events appended while a migration runs are V1 already and never touched
  (appends and batches serialise on the store's write lock). Batches are
  keyed by duroxide's row key rather than by feed position because positions
  are not stable on tables duroxide created; either way a row that arrives
  behind the cursor is a new V1 append. (Legacy rows *imported* during a run
  are picked up by running `migrate` again.)
* Legacy `SystemCall` events have no exact V1 form (see
  proposals/event-schema-evolution.md): they are kept as they are and
  reported. Rows that do not decode are reported and left alone.
* Memory does not grow with the store: one batch at a time, counters only.

`rollback` restores a run's archived originals byte for byte (event_type and
event_data). `backfill_timestamps` is a migration run of its own kind: it
fills `timestamp_ms` of V1 events that have none from the row's `created_at`
(second precision), and is rolled back the same way.

This module talks to the store and its evolution facade only; the SQL is in the backends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Literal

from .. import events as ev
from ..codec import Generation
from ..errors import EventStoreError, SchemaEvolutionError
from ..store import HistoryStore
from ..store.protocol import RawRow
from .backfill import BACKFILL_NOTE, backfill_timestamps
from .catalogs import CURRENT
from .cutover import refuse_during_window
from .lock import run_lock
from .rollback import list_runs, rollback
from .runs import (
    BACKFILL,
    DEFAULT_BATCH_SIZE,
    MIGRATE,
    NOTHING_TO_DO,
    Change,
    MigrationReport,
    RollbackReport,
    Transform,
    check_batch_size,
    decoded,
    dry_run_scan,
    execute_run,
    first_rewrite,
    kept_from,
    unfinished,
)

__all__ = [
    "BACKFILL",
    "BACKFILL_NOTE",
    "DEFAULT_BATCH_SIZE",
    "MIGRATE",
    "NOTHING_TO_DO",
    "MigrationReport",
    "RollbackReport",
    "Strategy",
    "backfill_timestamps",
    "list_runs",
    "migrate",
    "rollback",
]

Strategy = Literal["auto", "lazy", "eager"]


def _to_v1(store: HistoryStore) -> Transform:
    codec = store.codec

    def transform(row: RawRow, report: MigrationReport) -> Change | None:
        found = decoded(store, row, report)
        if found is None:
            return None
        if found.generation == Generation.V1:
            report.current += 1
            return None
        event = found.event
        if type(event) is ev.UnknownEvent:
            report.keep("unknown legacy type", row)
            return None
        if type(event) is ev.SystemCall:
            report.keep("SystemCall (no V1 form)", row)
            return None
        data = codec.encode(event).decode()
        report.by_generation[str(found.generation)] += 1
        change = {
            "event_id": row.event_id,
            "event_type": event.event_type,
            "from": str(found.generation),
            "via": list(found.migrated_from),
            "to": CURRENT,
        }
        return event.event_type, data, change

    return transform


def _lazy(store: HistoryStore) -> Transform:
    """What a lazy migration does to a row: nothing; the row is only counted."""

    def transform(row: RawRow, report: MigrationReport) -> Change | None:
        found = decoded(store, row, report)
        if found is None:
            return None
        if found.generation == Generation.V1:
            report.current += 1
        else:
            report.keep("legacy row, upcast on read (lazy)", row)
        return None

    return transform


def _check_options(to: str, strategy: str, batch_size: int) -> None:
    if to != CURRENT:
        raise SchemaEvolutionError(f"rows can only be migrated to {CURRENT}, not {to!r}")
    if strategy not in ("auto", "lazy", "eager"):
        raise EventStoreError(f"strategy must be auto, lazy or eager, not {strategy!r}")
    check_batch_size(batch_size)


def migrate(
    store: HistoryStore,
    *,
    to: str = CURRENT,
    strategy: Strategy = "auto",
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    log: IO[str] | None = None,
    progress: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> MigrationReport:
    """Bring stored rows to `to` (only "V1"); see the module docstring.

    `auto` is lazy when nothing stored needs a breaking change (V1 variants
    differ additively and are read as they are) and eager when legacy rows
    do. `progress(n)` is told about every batch of n rows, `on_batch(k)`
    after the k-th batch has committed. A run left unfinished is resumed.
    Nothing is written when there is nothing to rewrite (the report's status
    is then "nothing-to-do" and it has no run id). A run holds the store's
    run lock (MigrationLockedError when another run holds it); a dry run
    writes nothing and takes no lock.
    """
    _check_options(to, strategy, batch_size)
    pending = None if dry_run else unfinished(store, MIGRATE)
    work, examined = pending is not None, 0
    probe = MigrationReport(None, "probe", "eager", "", True)
    if pending is None and strategy != "lazy":
        work, examined = first_rewrite(store, _to_v1(store), batch_size, probe)
    resolved: Strategy = "eager" if work or strategy == "eager" else "lazy"
    report = MigrationReport(None, MIGRATE, resolved, to, dry_run)
    if strategy == "auto":
        report.note = f"auto chose {resolved}"
    if resolved == "lazy":
        report.note = (report.note + "; " if report.note else "") + (
            "rows stay as written and are upcast on read"
        )
        if dry_run or strategy == "lazy":
            # Count what a lazy migration looks at; it rewrites nothing.
            dry_run_scan(store, report, _lazy(store), batch_size, None, progress)
            report.batches = 0
        else:
            report.scanned = examined
        report.status = "dry-run" if dry_run else NOTHING_TO_DO
        return report
    if dry_run:
        return dry_run_scan(store, report, _to_v1(store), batch_size, log, progress)
    if not work:
        report.scanned, report.status = examined, NOTHING_TO_DO
        kept_from(report, probe)
        return report
    refuse_during_window(store, "migrate")
    with run_lock(store, "migrate"):
        # Read again under the lock: another run may have ended (or died) since.
        return execute_run(store, report, _to_v1(store), batch_size, log, progress, on_batch)
