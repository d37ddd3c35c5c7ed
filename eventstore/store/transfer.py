"""Whole rows in and out: import and export, verbatim, any generation.

The row format and the checks a row meets live in `transfer_rows`; this
module runs them over a store, in one transaction for an import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, DecodeError, EventStoreError, Location, ValidationError
from . import feed
from .results import ImportReport, row_location
from .transfer_rows import checked_insert, exported_row, location_with

if TYPE_CHECKING:
    from .history import HistoryStore

_REFRESH_EVERY = 10_000
"""Executions an import remembers before it refreshes their catalog rows
(memory stays bounded on imports of any size)."""

OnRow = Callable[[dict[str, Any], EventStoreError], None]


def import_located(
    store: HistoryStore,
    rows: Iterable[tuple[Location, dict[str, Any]]],
    *,
    skip_corrupt: bool = False,
) -> ImportReport:
    """Insert whole rows, each with where it came from, in one transaction.

    Every row must meet append's identity rules, have columns both backends
    hold, decode and agree with its columns (see transfer_rows); a row that
    does not raises naming its location and column, or with `skip_corrupt` is
    left out and listed in the report. A row whose key is already stored is
    skipped when identical and refused otherwise (ConflictError); on any
    error nothing is written.
    """
    report = ImportReport()
    touched: set[tuple[str, int]] = set()
    with store.backend.writing() as writer:
        for where, row in rows:
            try:
                insert = checked_insert(row, where, store._decode)
            except (DecodeError, ValidationError) as exc:
                if not skip_corrupt:
                    raise
                report.corrupt.append(exc)
                continue
            located = location_with(
                where,
                instance_id=insert.instance_id,
                execution_id=insert.execution_id,
                event_id=insert.event_id,
            )
            try:
                existing = writer.insert_or_compare(insert)
            except EventStoreError as exc:  # named like every other import error
                raise type(exc)(exc.message, location=located) from None
            if existing is None:
                report.inserted += 1
                touched.add((insert.instance_id, insert.execution_id))
                if len(touched) >= _REFRESH_EVERY:
                    store._refresh_catalog(writer, touched)
                    touched.clear()
            elif existing == insert.event_data:
                report.skipped_identical += 1
            else:
                raise ConflictError(
                    "a different event is already stored under this key", location=located
                )
        # The execution catalog's rows of what was inserted, in this same
        # transaction (an execution refreshed twice is simply exact twice).
        store._refresh_catalog(writer, touched)
    return report


def import_rows(
    store: HistoryStore, rows: Iterable[dict[str, Any]], *, skip_corrupt: bool = False
) -> ImportReport:
    """import_located with each row named by its ordinal (`line`)."""
    located = ((Location(line=n), row) for n, row in enumerate(rows, start=1))
    return import_located(store, located, skip_corrupt=skip_corrupt)


def export_located(store: HistoryStore) -> Iterator[tuple[Location, dict[str, Any]]]:
    """Every row as export writes it, with its position and key, in commit order."""
    for position, instance_id, execution_id, event_id, event_type, data, created_at in (
        row for rows in feed.pages(store, 0, None, 1000) for row in rows
    ):
        # An instance id that is not text is named by the position alone.
        named = instance_id if isinstance(instance_id, str) else None
        where = row_location(named, execution_id, event_id, position)
        yield where, exported_row(instance_id, execution_id, event_id, event_type, data, created_at)


def export_rows(
    store: HistoryStore, *, quarantine: OnRow | None = None, warn: OnRow | None = None
) -> Iterator[dict[str, Any]]:
    """Every row, whole and verbatim, in commit order (see HistoryStore.export_rows)."""
    for where, row in export_located(store):
        if quarantine is not None or warn is not None:
            try:
                checked_insert(row, where, store._decode)
            except (DecodeError, ValidationError) as exc:
                if quarantine is not None:
                    quarantine(row, exc)
                    continue
                if warn is not None:
                    warn(row, exc)
        yield row
