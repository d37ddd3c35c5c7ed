"""The end of a dual-write window: cutover to V1, and the checks that guard the window.

While a store's write generation is legacy (`eventstore.open(...,
write_generation="V0b")`, see `eventstore.store.window`), each appended event
is stored twice in one transaction: its history row in the V0b shape that old
readers read, and its full V1 form in the shadow table. `cutover`

1. flips the recorded write generation to V1 and records a migration run of
   kind `cutover` (its strategy column names the generation it left), in one
   transaction: from that commit on, a writer still configured for the legacy
   generation is refused before it writes;
2. rewrites every history row that has a shadow form to that form, in
   batches, through the migration engine (`runs.execute_run`): each batch's
   transaction archives the legacy rows, rewrites them, logs the change and
   moves the run's cursor, so a killed cutover is resumed by running it
   again, and `rollback` restores the legacy rows byte for byte and the
   legacy write generation.

Rows written before the window have no shadow form: they are left as they
are (a later `migrate`, or the lazy upcast on read) and counted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import IO, Final

from ..codec.generation import legacy_shaped
from ..errors import DecodeError, EventStoreError, SchemaEvolutionError
from ..store import HistoryStore
from ..store.evolution import EvolutionTransaction
from ..store.protocol import MigrationRun, RawRow, RowKey
from .catalogs import CURRENT
from .lock import run_lock
from .runs import (
    CUTOVER,
    DEFAULT_BATCH_SIZE,
    NOTHING_TO_DO,
    Change,
    MigrationReport,
    check_batch_size,
    execute_run,
    new_run_id,
    now,
    row_text,
    unfinished,
)

__all__ = ["BEFORE_WINDOW", "CUTOVER", "cutover", "refuse_during_window"]

BEFORE_WINDOW: Final = "legacy row from before the window (left to migrate or the lazy upcast)"
_BAD_SHADOW: Final = "shadow form does not read back as its row"


def refuse_during_window(store: HistoryStore, what: str) -> None:
    """`migrate` and `backfill-timestamps` would rewrite the legacy rows that old
    readers still read (and lose the timestamps the shadow rows keep)."""
    generation = store.evolution.write_generation()
    if generation is not None and generation != CURRENT:
        raise EventStoreError(
            f"{what} refused: {store.description} writes generation {generation} (a dual-write"
            " window is open, for readers that know only that generation); end the window"
            " with `eventstore cutover TARGET --to V1` first"
        )


class _Shadows:
    """The current batch's shadow forms, read in its transaction; the transform."""

    def __init__(self, store: HistoryStore, left: str) -> None:
        self.store, self.left = store, left
        self.rows: dict[RowKey, tuple[str, str]] = {}

    def fetch(self, writer: EvolutionTransaction, rows: list[RawRow]) -> None:
        first, last = rows[0], rows[-1]
        self.rows = writer.shadow_rows(
            (first.instance_id, first.execution_id, first.event_id),
            (last.instance_id, last.execution_id, last.event_id),
        )

    def transform(self, row: RawRow, report: MigrationReport) -> Change | None:
        shadow = self.rows.get((row.instance_id, row.execution_id, row.event_id))
        if shadow is None:
            if legacy_shaped(row.event_data):
                report.keep(BEFORE_WINDOW, row)
            else:
                report.current += 1
            return None
        event_type, data = shadow
        if row_text(row.event_data) == data:
            report.current += 1  # rewritten already (a resumed run)
            return None
        try:  # the row check every reader applies, on the form about to be stored
            self.store.check_row(
                row.instance_id, row.execution_id, row.event_id, event_type, data, row.position
            )
        except DecodeError:
            report.keep(_BAD_SHADOW, row)
            return None
        report.by_generation[self.left] += 1
        return (
            event_type,
            data,
            {"event_id": row.event_id, "event_type": event_type, "from": self.left, "to": CURRENT},
        )


def cutover(
    store: HistoryStore,
    *,
    to: str = CURRENT,
    batch_size: int = DEFAULT_BATCH_SIZE,
    log: IO[str] | None = None,
    progress: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> MigrationReport:
    """End the store's dual-write window (see the module docstring); resumes an
    unfinished cutover. Holds the run lock; nothing is written when no window is
    open and no cutover is unfinished (status "nothing-to-do")."""
    if to != CURRENT:
        raise SchemaEvolutionError(f"a cutover goes to {CURRENT}, not {to!r}")
    check_batch_size(batch_size)
    store.evolution.require_window("cutover")
    with run_lock(store, "cutover"):
        pending = unfinished(store, CUTOVER)
        left = pending.strategy if pending is not None else _flip(store)
        report = MigrationReport(None, CUTOVER, left or "", to, False)
        report.note = f"write generation {left} -> {CURRENT}"
        if left is None:
            report.status = NOTHING_TO_DO
            report.note = "no dual-write window is open"
            return report
        shadows = _Shadows(store, left)
        report = execute_run(
            store, report, shadows.transform, batch_size, log, progress, on_batch, shadows.fetch
        )
        report.resumed = pending is not None
        return report


def _flip(store: HistoryStore) -> str | None:
    """Record V1 and the cutover run in one transaction; the generation left, or
    None when the store does not write a legacy generation."""
    with store.evolution.writing() as writer:
        left = writer.recorded_generation()
        if left is None or left == CURRENT:
            return None
        writer.ensure_evolution_tables()
        at = now()
        writer.save_migration_run(
            MigrationRun(
                new_run_id(CUTOVER),
                CUTOVER,
                left,
                CURRENT,
                "running",
                at,
                None,
                0,
                None,
                json.dumps({"note": f"write generation {left} -> {CURRENT}"}),
            )
        )
        writer.set_write_generation(CURRENT, at)
    return left
