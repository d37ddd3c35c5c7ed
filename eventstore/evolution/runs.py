"""Migration runs: the engine that rewrites stored rows in batches, and its records.

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
* Memory does not grow with the store: one batch at a time, counters only.

What a run does to one row is its *transform* (`migrate`, `backfill`).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, Final

from ..codec import Decoded
from ..errors import DecodeError, EventStoreError, RowMismatchError
from ..store import HistoryStore
from ..store.evolution import EvolutionTransaction
from ..store.protocol import ArchivedRow, MigrationLogRow, MigrationRun, RawRow, RowKey
from .keys import cursor_json, cursor_key, row_place

__all__ = [
    "BACKFILL",
    "CUTOVER",
    "DEFAULT_BATCH_SIZE",
    "MIGRATE",
    "NOTHING_TO_DO",
    "START",
    "MigrationReport",
    "RollbackReport",
    "Transform",
    "check_batch_size",
    "decoded",
    "dry_run_scan",
    "emit",
    "execute_run",
    "first_rewrite",
    "kept_from",
    "new_run_id",
    "now",
    "pages",
    "unfinished",
]

DEFAULT_BATCH_SIZE: Final = 500
NOTHING_TO_DO: Final = "nothing-to-do"
"""The status of a run that found nothing to rewrite (and wrote nothing)."""
START: Final[RowKey] = ("", -1, -1)
_SAMPLE: Final = 20
"""How many locations of each kind of skipped row a report keeps (the log has all)."""

MIGRATE: Final = "migrate"
BACKFILL: Final = "backfill-timestamps"
CUTOVER: Final = "cutover"


@dataclass(slots=True)
class MigrationReport:
    run_id: str | None
    """None for a dry run."""
    kind: str
    strategy: str
    target: str
    dry_run: bool
    resumed: bool = False
    status: str = "completed"
    scanned: int = 0
    changed: int = 0
    """Rows rewritten (or, in a dry run, that would be)."""
    batches: int = 0
    current: int = 0
    """Rows already in the target form."""
    kept: Counter[str] = field(default_factory=Counter)
    """Rows deliberately left as they are, by reason."""
    samples: dict[str, list[str]] = field(default_factory=dict)
    by_generation: Counter[str] = field(default_factory=Counter)
    """Rewritten rows by the generation they had."""
    note: str = ""

    def keep(self, reason: str, row: RawRow) -> None:
        self.kept[reason] += 1
        where = self.samples.setdefault(reason, [])
        if len(where) < _SAMPLE:
            where.append(row_place(row))

    def details(self) -> dict[str, Any]:
        return {
            "scanned": self.scanned,
            "changed": self.changed,
            "batches": self.batches,
            "current": self.current,
            "kept": dict(self.kept),
            "samples": self.samples,
            "by_generation": dict(self.by_generation),
            "note": self.note,
        }


@dataclass(slots=True)
class RollbackReport:
    run_id: str
    restored: int = 0
    already: bool = False


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_run_id(kind: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    prefix = {MIGRATE: "mig", CUTOVER: "cut"}.get(kind, "bf")
    return f"{prefix}-{stamp}-{uuid.uuid4().hex[:8]}"


def row_text(data: str | bytes) -> str:
    return data.decode() if isinstance(data, bytes) else data


Change = tuple[str, str, dict[str, Any]]
"""(new event_type, new event_data, change description) of a row."""
Transform = Callable[[RawRow, MigrationReport], Change | None]


def decoded(store: HistoryStore, row: RawRow, report: MigrationReport) -> Decoded | None:
    """The row decoded with the store's checks, or None (the row kept and why)."""
    try:
        return store.decode_raw(row)
    except RowMismatchError:
        report.keep("columns disagree with the event", row)
    except DecodeError:
        report.keep("undecodable", row)
    return None


def _cursor(run: MigrationRun) -> RowKey:
    if not run.cursor:
        return START
    return cursor_key(run.cursor)


def unfinished(store: HistoryStore, kind: str) -> MigrationRun | None:
    runs = store.evolution.migration_runs()
    for run in runs:
        if run.status == "rolling_back":
            raise EventStoreError(
                f"the rollback of run {run.run_id} did not finish: run "
                f"`eventstore rollback TARGET --run {run.run_id}` again first"
            )
    for run in reversed(runs):
        if run.kind == kind and run.status == "running":
            return run
    return None


def _restore_report(report: MigrationReport, run: MigrationRun) -> None:
    try:
        details = json.loads(run.details)
    except ValueError:
        return
    report.scanned = int(details.get("scanned", 0))
    report.changed = int(details.get("changed", 0))
    report.batches = int(details.get("batches", 0))
    report.current = int(details.get("current", 0))
    report.kept.update(details.get("kept", {}))
    report.samples.update(details.get("samples", {}))
    report.by_generation.update(details.get("by_generation", {}))


def emit(log: IO[str] | None, record: dict[str, Any]) -> None:
    if log is not None:
        log.write(json.dumps(record, ensure_ascii=False) + "\n")
        log.flush()


def pages(store: HistoryStore, batch_size: int) -> Iterator[list[RawRow]]:
    return store.scan(batch_size)


def first_rewrite(
    store: HistoryStore, transform: Transform, batch_size: int, probe: MigrationReport
) -> tuple[bool, int]:
    """(whether `transform` would rewrite some row, rows examined); stops at the first.

    Read only: it lets a run that would find nothing to do return without
    taking the run lock or writing anything (the count is then the whole store,
    and `probe` holds what the scan kept as written and why, so that a rerun
    still names the rows it cannot rewrite).
    """
    examined = 0
    for page in pages(store, batch_size):
        for row in page:
            examined += 1
            if transform(row, probe) is not None:
                return True, examined
    return False, examined


def kept_from(report: MigrationReport, probe: MigrationReport) -> None:
    """What a probe kept as written, for the report of a run that did nothing."""
    report.kept, report.samples = probe.kept, probe.samples


def dry_run_scan(
    store: HistoryStore,
    report: MigrationReport,
    transform: Transform,
    batch_size: int,
    log: IO[str] | None,
    progress: Callable[[int], None] | None,
) -> MigrationReport:
    for page in pages(store, batch_size):
        report.batches += 1
        grouped: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for row in page:
            report.scanned += 1
            change = transform(row, report)
            if change is not None:
                report.changed += 1
                grouped.setdefault((row.instance_id, row.execution_id), []).append(change[2])
        for (instance_id, execution_id), changes in grouped.items():
            emit(
                log,
                {
                    "dry_run": True,
                    "instance_id": instance_id,
                    "execution_id": execution_id,
                    "changes": changes,
                },
            )
        if progress is not None:
            progress(len(page))
    report.status = "dry-run"
    return report


class _Engine:
    """One run's state: its id, cursor and record, and the batches it commits.

    A new run writes nothing until its first batch that rewrites a row: that
    batch's transaction creates the evolution tables and the run's record
    with it. So a run with nothing to do leaves the store exactly as it was
    (no tables, no run), and a run killed before its first rewrite left
    nothing to resume.
    """

    def __init__(
        self,
        store: HistoryStore,
        report: MigrationReport,
        transform: Transform,
        log: IO[str] | None,
    ) -> None:
        self.store, self.report, self.transform, self.log = store, report, transform, log
        existing = unfinished(store, report.kind)
        self.recorded = existing is not None
        if existing is not None:
            report.run_id, report.resumed = existing.run_id, True
            report.strategy = existing.strategy
            self.started_at = existing.started_at
            self.cursor = _cursor(existing)
            _restore_report(report, existing)
        else:
            report.run_id = new_run_id(report.kind)
            self.started_at = now()
            self.cursor = START
        self.run_id: str = report.run_id

    def record(self, status: str, finished: str | None) -> MigrationRun:
        report, cursor = self.report, self.cursor
        return MigrationRun(
            self.run_id,
            report.kind,
            report.strategy,
            report.target,
            status,
            self.started_at,
            finished,
            report.changed,
            cursor_json(cursor) if cursor != START else None,
            json.dumps(report.details()),
        )

    def start_record(self, batch_size: int) -> dict[str, Any]:
        report = self.report
        return {
            "run_id": self.run_id,
            "kind": report.kind,
            "strategy": report.strategy,
            "target": report.target,
            "resumed": report.resumed,
            "batch_size": batch_size,
            **({"note": report.note} if report.note else {}),
        }

    def batch(
        self, writer: EvolutionTransaction, rows: list[RawRow]
    ) -> dict[tuple[str, int], list[Any]]:
        """Rewrite one batch inside the writer's transaction; the changes by execution."""
        report = self.report
        originals: list[ArchivedRow] = []
        rewrites: list[ArchivedRow] = []
        grouped: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for row in rows:
            report.scanned += 1
            change = self.transform(row, report)
            if change is None:
                continue
            key = (row.instance_id, row.execution_id, row.event_id)
            originals.append(ArchivedRow(*key, row.event_type, row_text(row.event_data)))
            rewrites.append(ArchivedRow(*key, change[0], change[1]))
            grouped.setdefault((row.instance_id, row.execution_id), []).append(change[2])
        if rewrites and not self.recorded:
            writer.ensure_evolution_tables()
            self.recorded = True
        if rewrites:
            writer.archive_rows(self.run_id, originals)
            writer.update_rows_by_key(rewrites)
            writer.log_migration(
                [
                    MigrationLogRow(
                        self.run_id,
                        instance_id,
                        execution_id,
                        int(changes[0]["event_id"]),
                        report.strategy,
                        "migrated",
                        json.dumps({"rows": len(changes), "changes": changes}),
                    )
                    for (instance_id, execution_id), changes in grouped.items()
                ]
            )
        report.changed += len(rewrites)
        report.batches += 1
        tail = rows[-1]
        self.cursor = (tail.instance_id, tail.execution_id, tail.event_id)
        if self.recorded:
            writer.save_migration_run(self.record("running", None))
        return grouped


def execute_run(
    store: HistoryStore,
    report: MigrationReport,
    transform: Transform,
    batch_size: int,
    log: IO[str] | None,
    progress: Callable[[int], None] | None,
    on_batch: Callable[[int], None] | None,
    before_batch: Callable[[EvolutionTransaction, list[RawRow]], None] | None = None,
) -> MigrationReport:
    """Run (or resume) a run to its end; the caller holds the run lock.

    `before_batch(writer, rows)` runs in each batch's transaction before the
    transform sees its rows (the cutover reads the batch's shadow rows there)."""
    engine = _Engine(store, report, transform, log)
    announced = False
    while True:
        with store.evolution.writing() as writer:
            rows = writer.rows_after(engine.cursor, batch_size)
            if not rows:
                break
            if before_batch is not None:
                before_batch(writer, rows)
            grouped = engine.batch(writer, rows)
        if engine.recorded and not announced:
            emit(log, engine.start_record(batch_size))
            announced = True
        for (instance_id, execution_id), changes in grouped.items():
            emit(
                log,
                {
                    "run_id": engine.run_id,
                    "instance_id": instance_id,
                    "execution_id": execution_id,
                    "changes": changes,
                },
            )
        if progress is not None:
            progress(len(rows))
        if on_batch is not None:
            on_batch(report.batches)
    if not engine.recorded:
        report.run_id = None
        report.status = NOTHING_TO_DO
        return report
    with store.evolution.writing() as writer:
        writer.save_migration_run(engine.record("completed", now()))
    report.status = "completed"
    emit(log, {"run_id": engine.run_id, "status": "completed", **report.details()})
    return report


def check_batch_size(batch_size: int) -> None:
    if type(batch_size) is not int or batch_size < 1:
        raise EventStoreError(f"batch size must be a positive integer, not {batch_size!r}")
