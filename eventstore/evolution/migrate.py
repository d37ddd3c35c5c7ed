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
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, Final, Literal

import msgspec

from .. import events as ev
from ..codec import Decoded, Generation
from ..errors import DecodeError, EventStoreError, RowMismatchError, SchemaEvolutionError
from ..store import HistoryStore
from ..store.protocol import ArchivedRow, MigrationLogRow, MigrationRun, RawRow, RowKey
from .schema import CURRENT, record_catalog, schema_metadata, set_schema_metadata

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "MigrationReport",
    "RollbackReport",
    "Strategy",
    "backfill_timestamps",
    "list_runs",
    "migrate",
    "rollback",
]

DEFAULT_BATCH_SIZE: Final = 500
Strategy = Literal["auto", "lazy", "eager"]
_START: Final[RowKey] = ("", -1, -1)
_SAMPLE: Final = 20
"""How many locations of each kind of skipped row a report keeps (the log has all)."""

MIGRATE: Final = "migrate"
BACKFILL: Final = "backfill-timestamps"
BACKFILL_NOTE: Final = (
    "timestamp_ms filled from the row's created_at, at second precision (UTC); "
    "the event's real time lies within that second or shortly before it"
)


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
            where.append(f"{row.instance_id} execution {row.execution_id} event {row.event_id}")

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


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _new_run_id(kind: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    prefix = "mig" if kind == MIGRATE else "bf"
    return f"{prefix}-{stamp}-{uuid.uuid4().hex[:8]}"


def _text(data: str | bytes) -> str:
    return data.decode() if isinstance(data, bytes) else data


# --------------------------------------------------------------------------
# Transforms: what a run does to one row
# --------------------------------------------------------------------------

Change = tuple[str, str, dict[str, Any]]
"""(new event_type, new event_data, change description) of a row."""
Transform = Callable[[RawRow, MigrationReport], Change | None]


def _decoded(store: HistoryStore, row: RawRow, report: MigrationReport) -> Decoded | None:
    """The row decoded with the store's checks, or None (the row kept and why)."""
    try:
        return store.decode_raw(row)
    except RowMismatchError:
        report.keep("columns disagree with the event", row)
    except DecodeError:
        report.keep("undecodable", row)
    return None


def _to_v1(store: HistoryStore) -> Transform:
    codec = store.codec

    def transform(row: RawRow, report: MigrationReport) -> Change | None:
        found = _decoded(store, row, report)
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
        found = _decoded(store, row, report)
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


# --------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------


def _cursor(run: MigrationRun) -> RowKey:
    if not run.cursor:
        return _START
    instance_id, execution_id, event_id = json.loads(run.cursor)
    return (str(instance_id), int(execution_id), int(event_id))


def _unfinished(store: HistoryStore, kind: str) -> MigrationRun | None:
    runs = store.backend.migration_runs()
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


def _emit(log: IO[str] | None, record: dict[str, Any]) -> None:
    if log is not None:
        log.write(json.dumps(record, ensure_ascii=False) + "\n")
        log.flush()


def _pages(store: HistoryStore, batch_size: int) -> Iterator[list[RawRow]]:
    return store.scan(batch_size)


def _dry_run(
    store: HistoryStore,
    report: MigrationReport,
    transform: Transform,
    batch_size: int,
    log: IO[str] | None,
    progress: Callable[[int], None] | None,
) -> MigrationReport:
    for page in _pages(store, batch_size):
        report.batches += 1
        grouped: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for row in page:
            report.scanned += 1
            change = transform(row, report)
            if change is not None:
                report.changed += 1
                grouped.setdefault((row.instance_id, row.execution_id), []).append(change[2])
        for (instance_id, execution_id), changes in grouped.items():
            _emit(
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


def _run(
    store: HistoryStore,
    report: MigrationReport,
    transform: Transform,
    batch_size: int,
    log: IO[str] | None,
    progress: Callable[[int], None] | None,
    on_batch: Callable[[int], None] | None,
) -> MigrationReport:
    backend = store.backend
    existing = _unfinished(store, report.kind)
    if existing is not None:
        run_id = existing.run_id
        report.run_id, report.resumed = run_id, True
        report.strategy = existing.strategy
        started_at = existing.started_at
        cursor = _cursor(existing)
        _restore_report(report, existing)
    else:
        run_id = _new_run_id(report.kind)
        report.run_id = run_id
        started_at = _now()
        cursor = _START

    def record(status: str, finished: str | None) -> MigrationRun:
        return MigrationRun(
            run_id,
            report.kind,
            report.strategy,
            report.target,
            status,
            started_at,
            finished,
            report.changed,
            json.dumps(list(cursor)) if cursor != _START else None,
            json.dumps(report.details()),
        )

    with backend.writing() as writer:
        writer.ensure_evolution_tables()
        writer.save_migration_run(record("running", None))
    _emit(
        log,
        {
            "run_id": run_id,
            "kind": report.kind,
            "strategy": report.strategy,
            "target": report.target,
            "resumed": report.resumed,
            "batch_size": batch_size,
            **({"note": report.note} if report.note else {}),
        },
    )
    while True:
        with backend.writing() as writer:
            rows = writer.rows_after(cursor, batch_size)
            if not rows:
                break
            originals: list[ArchivedRow] = []
            rewrites: list[ArchivedRow] = []
            grouped: dict[tuple[str, int], list[dict[str, Any]]] = {}
            for row in rows:
                report.scanned += 1
                change = transform(row, report)
                if change is None:
                    continue
                key = (row.instance_id, row.execution_id, row.event_id)
                originals.append(ArchivedRow(*key, row.event_type, _text(row.event_data)))
                rewrites.append(ArchivedRow(*key, change[0], change[1]))
                grouped.setdefault((row.instance_id, row.execution_id), []).append(change[2])
            if rewrites:
                writer.archive_rows(run_id, originals)
                writer.update_rows_by_key(rewrites)
                writer.log_migration(
                    [
                        MigrationLogRow(
                            run_id,
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
            cursor = (tail.instance_id, tail.execution_id, tail.event_id)
            writer.save_migration_run(record("running", None))
        for (instance_id, execution_id), changes in grouped.items():
            _emit(
                log,
                {
                    "run_id": run_id,
                    "instance_id": instance_id,
                    "execution_id": execution_id,
                    "changes": changes,
                },
            )
        if progress is not None:
            progress(len(rows))
        if on_batch is not None:
            on_batch(report.batches)
    with backend.writing() as writer:
        writer.save_migration_run(record("completed", _now()))
    report.status = "completed"
    _emit(log, {"run_id": run_id, "status": "completed", **report.details()})
    return report


def _check_batch_size(batch_size: int) -> None:
    if type(batch_size) is not int or batch_size < 1:
        raise EventStoreError(f"batch size must be a positive integer, not {batch_size!r}")


def _has_breaking_rows(store: HistoryStore, batch_size: int) -> bool:
    """True when some row needs a breaking migration to read as V1 (a legacy row)."""
    for page in _pages(store, batch_size):
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
    _check_batch_size(batch_size)
    resolved = strategy
    if strategy == "auto":
        unfinished = None if dry_run else _unfinished(store, MIGRATE)
        if unfinished is not None or _has_breaking_rows(store, batch_size):
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
        report.run_id = _new_run_id(MIGRATE)
        now = _now()
        with store.backend.writing() as writer:
            writer.ensure_evolution_tables()
            writer.save_migration_run(
                MigrationRun(
                    report.run_id,
                    MIGRATE,
                    "lazy",
                    to,
                    "completed",
                    now,
                    now,
                    0,
                    None,
                    json.dumps(report.details()),
                )
            )
        _emit(log, {"run_id": report.run_id, "strategy": "lazy", "note": report.note})
        return report
    transform = _to_v1(store)
    if dry_run:
        return _dry_run(store, report, transform, batch_size, log, progress)
    return _run(store, report, transform, batch_size, log, progress, on_batch)


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
    _check_batch_size(batch_size)
    report = MigrationReport(None, BACKFILL, "eager", "timestamp_ms", dry_run, note=BACKFILL_NOTE)
    transform = _backfill(store)
    if dry_run:
        return _dry_run(store, report, transform, batch_size, log, progress)
    previous = schema_metadata(store).get("backfill", {}).get("timestamp_ms")
    if previous and not force and _unfinished(store, BACKFILL) is None:
        runs = {r.run_id: r for r in store.backend.migration_runs()}
        done = runs.get(str(previous.get("run_id")))
        if done is not None and done.status == "completed":
            report.run_id = done.run_id
            report.status = "already-requested"
            return report
    record_catalog(store)
    result = _run(store, report, transform, batch_size, log, progress, on_batch)
    metadata = schema_metadata(store)
    metadata.setdefault("backfill", {})["timestamp_ms"] = {
        "run_id": result.run_id,
        "requested_at": _now(),
        "rows": result.changed,
        "precision": "second",
    }
    set_schema_metadata(store, metadata)
    return result


def list_runs(store: HistoryStore) -> list[MigrationRun]:
    """Every migration and backfill run, oldest first."""
    return store.backend.migration_runs()


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
    `on_batch(n)` is called after the n-th committed batch.
    """
    _check_batch_size(batch_size)
    runs = store.backend.migration_runs()
    found = [r for r in runs if r.run_id == run_id]
    if not found:
        known = ", ".join(r.run_id for r in runs[-5:]) or "none"
        raise EventStoreError(
            f"no migration run {run_id!r} in {store.backend.description} (latest: {known})"
        )
    run = found[0]
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
    backend = store.backend
    with backend.writing() as writer:
        writer.save_migration_run(run._replace(status="rolling_back"))
    cursor = _START
    batches = 0
    while True:
        rows = backend.archived_rows(run_id, cursor, batch_size)
        if not rows:
            break
        with backend.writing() as writer:
            writer.update_rows_by_key(rows)
        report.restored += len(rows)
        batches += 1
        tail = rows[-1]
        cursor = (tail.instance_id, tail.execution_id, tail.event_id)
        if progress is not None:
            progress(len(rows))
        if on_batch is not None:
            on_batch(batches)
    with backend.writing() as writer:
        writer.save_migration_run(run._replace(status="rolled_back", finished_at=_now()))
    if run.kind == BACKFILL:
        metadata = schema_metadata(store)
        entry = metadata.get("backfill", {}).get("timestamp_ms")
        if entry and entry.get("run_id") == run_id:
            del metadata["backfill"]["timestamp_ms"]
            set_schema_metadata(store, metadata)
    return report
