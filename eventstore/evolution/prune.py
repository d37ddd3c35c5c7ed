"""`migrations prune`: drop the originals and logs finished runs keep, reclaim the space.

Every migration, backfill and cutover run keeps the rows it rewrote, as
they were, in `eventstore_archive` (what rollback writes back) and a change
set per execution in `eventstore_migration_log`. A migrated store therefore
holds its history about twice; pruning a run gives that up. With `archive`
the run's originals first go to a gzip JSON-lines file (the retention
archive format, `store/archive_file.py`), verified against its sha256
before anything is deleted, so a rollback by hand stays possible.

The run's record stays, its status `pruned` (rollback refuses it, naming
the archive file if there is one). Order, for a run killed anywhere: the
status becomes `pruning` first (rollback refuses it from then on), rows go
in short batches, and `pruned` is recorded last; running prune again
finishes a `pruning` run. Then SQLite is VACUUMed (PostgreSQL: VACUUM of
the two tables) so the file shrinks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ..errors import EventStoreError
from ..store import HistoryStore
from ..store.archive_file import ARCHIVE_SUFFIX, ArchiveWriter, verify_archive
from ..store.protocol import MigrationRun, RawRow
from .lock import run_lock
from .runs import START, now

__all__ = ["PRUNABLE", "PruneReport", "prune_runs"]

PRUNABLE: Final = ("completed", "rolled_back", "nothing-to-do", "pruning")
"""Statuses of runs whose originals nothing needs any more (but a rollback)."""
_BATCH: Final = 2000


@dataclass(slots=True)
class PruneReport:
    dry_run: bool
    runs: list[str] = field(default_factory=list)
    rows: int = 0
    """Archive and log rows deleted (or, in a dry run, the runs' archived rows)."""
    archives: dict[str, str] = field(default_factory=dict)
    """run id -> the file its originals went to."""
    reclaimed: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "runs": self.runs,
            "rows": self.rows,
            "archives": self.archives,
            "reclaimed": self.reclaimed,
        }


def _chosen(
    store: HistoryStore, run_ids: tuple[str, ...], before: str | None
) -> list[MigrationRun]:
    runs = store.evolution.migration_runs()
    if run_ids:
        known = {r.run_id: r for r in runs}
        missing = [r for r in run_ids if r not in known]
        if missing:
            raise EventStoreError(f"no migration run {', '.join(missing)} in {store.description}")
        bad = [r for r in run_ids if known[r].status not in PRUNABLE]
        if bad:
            raise EventStoreError(
                f"run {', '.join(bad)} is not finished ({known[bad[0]].status}): only"
                f" {', '.join(PRUNABLE)} runs can be pruned"
            )
        return [known[r] for r in run_ids]
    return [
        r
        for r in runs
        if r.status in PRUNABLE and (before is None or (r.finished_at or r.started_at) < before)
    ]


def _archive_originals(store: HistoryStore, run: MigrationRun, directory: Path) -> str:
    path = (directory / "migrations" / f"{run.run_id}{ARCHIVE_SUFFIX}").resolve()
    writer = ArchiveWriter(path)
    cursor = START
    try:
        while rows := store.evolution.archived_rows(run.run_id, cursor, _BATCH):
            writer.add(RawRow(0, *row, None) for row in rows)
            tail = rows[-1]
            cursor = (tail.instance_id, tail.execution_id, tail.event_id)
    except BaseException:
        writer.abandon()
        raise
    count, checksum = writer.close()
    verify_archive(path, f"migration run {run.run_id}", checksum, count)
    return str(path)


def _prune_one(
    store: HistoryStore,
    run: MigrationRun,
    archive: Path | None,
    report: PruneReport,
    progress: Callable[[int], object] | None,
) -> None:
    details = json.loads(run.details or "{}")
    if archive is not None and run.status != "pruning":
        details["pruned_archive"] = report.archives[run.run_id] = _archive_originals(
            store, run, archive
        )
    pruning = run._replace(status="pruning", details=json.dumps(details))
    with store.evolution.writing() as writer:
        writer.save_migration_run(pruning)
    while deleted := store.lifecycle.prune_migration_run(run.run_id, _BATCH):
        report.rows += deleted
        if progress is not None:
            progress(deleted)
    details["pruned_at"] = now()
    with store.evolution.writing() as writer:
        writer.save_migration_run(pruning._replace(status="pruned", details=json.dumps(details)))
    report.runs.append(run.run_id)


def prune_runs(
    store: HistoryStore,
    *,
    run_ids: tuple[str, ...] = (),
    before: str | None = None,
    archive: Path | None = None,
    dry_run: bool = False,
    reclaim: bool = True,
    progress: Callable[[int], object] | None = None,
) -> PruneReport:
    """Prune the named runs (default: every finished run, finished before `before`)."""
    report = PruneReport(dry_run)
    if dry_run:
        for run in _chosen(store, run_ids, before):
            report.runs.append(run.run_id)
            cursor = START
            while rows := store.evolution.archived_rows(run.run_id, cursor, _BATCH):
                report.rows += len(rows)
                tail = rows[-1]
                cursor = (tail.instance_id, tail.execution_id, tail.event_id)
        return report
    with run_lock(store, "migrations prune"):
        for run in _chosen(store, run_ids, before):  # again, under the lock
            _prune_one(store, run, archive, report, progress)
    if reclaim and report.runs:
        store.lifecycle.reclaim_space()
        report.reclaimed = True
    return report
