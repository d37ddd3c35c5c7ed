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

This module talks to the store and backend API only; the SQL is in the backends.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import IO, Literal

from .. import events as ev
from ..codec import Generation
from ..errors import DecodeError, EventStoreError, SchemaEvolutionError
from ..store import HistoryStore
from ..store.protocol import MigrationRun, RawRow
from .backfill import BACKFILL_NOTE, backfill_timestamps
from .catalogs import CURRENT
from .rollback import list_runs, rollback
from .runs import (
    BACKFILL,
    DEFAULT_BATCH_SIZE,
    MIGRATE,
    Change,
    MigrationReport,
    RollbackReport,
    Transform,
    check_batch_size,
    decoded,
    dry_run_scan,
    emit,
    execute_run,
    new_run_id,
    now,
    pages,
    unfinished,
)

__all__ = [
    "BACKFILL",
    "BACKFILL_NOTE",
    "DEFAULT_BATCH_SIZE",
    "MIGRATE",
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


def _has_breaking_rows(store: HistoryStore, batch_size: int) -> bool:
    """True when some row needs a breaking migration to read as V1 (a legacy row)."""
    for page in pages(store, batch_size):
        for row in page:
            try:
                found = store.decode_raw(row)  # the rows _to_v1 would rewrite
            except DecodeError:
                continue
            if found.generation != Generation.V1 and type(found.event) not in (
                ev.SystemCall,
                ev.UnknownEvent,
            ):
                return True
    return False


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
    """
    if to != CURRENT:
        raise SchemaEvolutionError(f"rows can only be migrated to {CURRENT}, not {to!r}")
    if strategy not in ("auto", "lazy", "eager"):
        raise EventStoreError(f"strategy must be auto, lazy or eager, not {strategy!r}")
    check_batch_size(batch_size)
    resolved = strategy
    if strategy == "auto":
        pending = None if dry_run else unfinished(store, MIGRATE)
        if pending is not None or _has_breaking_rows(store, batch_size):
            resolved = "eager"
        else:
            resolved = "lazy"
    report = MigrationReport(None, MIGRATE, resolved, to, dry_run)
    if strategy == "auto":
        report.note = f"auto chose {resolved}"
    if resolved == "lazy":
        report.note = (report.note + "; " if report.note else "") + (
            "rows stay as written and are upcast on read"
        )
        if dry_run:
            report.status = "dry-run"
            return report
        report.run_id = new_run_id(MIGRATE)
        stamp = now()
        with store.evolution.writing() as writer:
            writer.ensure_evolution_tables()
            writer.save_migration_run(
                MigrationRun(
                    report.run_id,
                    MIGRATE,
                    "lazy",
                    to,
                    "completed",
                    stamp,
                    stamp,
                    0,
                    None,
                    json.dumps(report.details()),
                )
            )
        emit(log, {"run_id": report.run_id, "strategy": "lazy", "note": report.note})
        return report
    transform = _to_v1(store)
    if dry_run:
        return dry_run_scan(store, report, transform, batch_size, log, progress)
    return execute_run(store, report, transform, batch_size, log, progress, on_batch)
