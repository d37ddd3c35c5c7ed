"""Undoing a run: its archived originals written back, byte for byte."""

from __future__ import annotations

import json
from collections.abc import Callable

from ..errors import EventStoreError
from ..store import HistoryStore
from ..store.protocol import MigrationRun
from .lock import run_lock
from .recording import schema_metadata, set_schema_metadata
from .runs import (
    BACKFILL,
    CUTOVER,
    DEFAULT_BATCH_SIZE,
    START,
    RollbackReport,
    check_batch_size,
    now,
)

__all__ = ["list_runs", "rollback"]


def list_runs(store: HistoryStore) -> list[MigrationRun]:
    """Every migration, backfill and cutover run, oldest first."""
    return store.evolution.migration_runs()


def rollback(
    store: HistoryStore,
    run_id: str,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> RollbackReport:
    """Put back the rows a run rewrote, exactly as they were (from the archive).

    Runs are undone newest first: a run cannot be rolled back while a later
    run that rewrote rows is still in effect. Rolling back twice is harmless,
    and so is a rollback interrupted midway: each batch is one transaction
    that writes archived bytes back by key, so running it again from the
    start restores what is left and rewrites the rest identically.
    `on_batch(n)` is called after the n-th committed batch. Holds the
    store's run lock, so a run that is still going cannot be rolled back
    under it (MigrationLockedError names it).
    """
    check_batch_size(batch_size)
    found = _find(store, run_id)
    if found.status == "rolled_back":
        return RollbackReport(run_id, already=True)
    _refuse_pruned(found)
    with run_lock(store, f"rollback of run {run_id}"):
        return _rollback(store, run_id, batch_size, progress, on_batch)


def _refuse_pruned(run: MigrationRun) -> None:
    if run.status not in ("pruned", "pruning"):
        return
    try:
        kept = json.loads(run.details).get("pruned_archive")
    except (ValueError, AttributeError):
        kept = None
    where = f"; its originals are in {kept}" if kept else " (its originals were not kept)"
    raise EventStoreError(
        f"run {run.run_id} cannot be rolled back: `migrations prune` dropped what it"
        f" archived{where}"
    )


def _find(store: HistoryStore, run_id: str) -> MigrationRun:
    runs = store.evolution.migration_runs()
    for run in runs:
        if run.run_id == run_id:
            return run
    known = ", ".join(r.run_id for r in runs[-5:]) or "none"
    raise EventStoreError(f"no migration run {run_id!r} in {store.description} (latest: {known})")


def _rollback(
    store: HistoryStore,
    run_id: str,
    batch_size: int,
    progress: Callable[[int], None] | None,
    on_batch: Callable[[int], None] | None,
) -> RollbackReport:
    run = _find(store, run_id)  # again, under the lock
    _refuse_pruned(run)
    runs = store.evolution.migration_runs()
    report = RollbackReport(run_id)
    if run.status == "rolled_back":
        report.already = True
        return report
    later = [
        r for r in runs[runs.index(run) + 1 :] if r.rows > 0 and r.status not in ("rolled_back",)
    ]
    if later:
        raise EventStoreError(
            f"run {run_id} cannot be rolled back before the later run(s) "
            f"{', '.join(r.run_id for r in later)} that rewrote rows: roll those back first"
        )
    evolution = store.evolution
    with evolution.writing() as writer:
        writer.save_migration_run(run._replace(status="rolling_back"))
    cursor = START
    batches = 0
    while True:
        rows = evolution.archived_rows(run_id, cursor, batch_size)
        if not rows:
            break
        with evolution.writing() as writer:
            writer.update_rows_by_key(rows)
        report.restored += len(rows)
        batches += 1
        tail = rows[-1]
        cursor = (tail.instance_id, tail.execution_id, tail.event_id)
        if progress is not None:
            progress(len(rows))
        if on_batch is not None:
            on_batch(batches)
    with evolution.writing() as writer:
        writer.save_migration_run(run._replace(status="rolled_back", finished_at=now()))
        if run.kind == CUTOVER:
            # The legacy generation returns with the last restored row, in the
            # same transaction as the run's end: the store never records V0b
            # while window rows are still V1, nor V1 once they are all legacy.
            writer.set_write_generation(run.strategy, now())
    if run.kind == BACKFILL:
        metadata = schema_metadata(store)
        entry = metadata.get("backfill", {}).get("timestamp_ms")
        if entry and entry.get("run_id") == run_id:
            del metadata["backfill"]["timestamp_ms"]
            set_schema_metadata(store, metadata)
    return report
