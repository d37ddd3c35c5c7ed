"""Whole rows in and out: import and export, verbatim, any generation."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import (
    ConflictError,
    DecodeError,
    Location,
)
from .protocol import (
    InsertRow,
    StoredRow,
)
from .results import ImportReport

if TYPE_CHECKING:
    from .history import HistoryStore


def import_rows(store: HistoryStore, rows: Iterable[dict[str, Any]]) -> ImportReport:
    """Insert whole rows verbatim (any generation), in one transaction.

    Every row must decode and agree with its columns. A row whose key is
    already stored is skipped when identical and refused otherwise
    (ConflictError); on any error nothing is written.
    """
    report = ImportReport()
    with store.backend.writing() as writer:
        for line, row in enumerate(rows, start=1):
            insert = _checked_import_row(store, row, line)
            existing = writer.insert_or_compare(insert)
            if existing is None:
                report.inserted += 1
            elif existing == insert.event_data:
                report.skipped_identical += 1
            else:
                raise ConflictError(
                    "a different event is already stored under this key",
                    location=Location(
                        instance_id=insert.instance_id,
                        execution_id=insert.execution_id,
                        event_id=insert.event_id,
                        line=line,
                    ),
                )
    return report


def _checked_import_row(store: HistoryStore, row: dict[str, Any], line: int) -> InsertRow:
    try:
        insert = InsertRow(
            row["instance_id"],
            row["execution_id"],
            row["event_id"],
            row["event_type"],
            row["event_data"],
            row.get("created_at"),
        )
    except (KeyError, TypeError) as exc:
        raise DecodeError(
            f"not a history row: missing {exc}", location=Location(line=line)
        ) from None
    if not (
        isinstance(insert.instance_id, str)
        and type(insert.execution_id) is int
        and type(insert.event_id) is int
        and isinstance(insert.event_type, str)
        and isinstance(insert.event_data, str)
        and (insert.created_at is None or isinstance(insert.created_at, str))
    ):
        raise DecodeError(
            "a history row has a column of the wrong type", location=Location(line=line)
        )
    stored = StoredRow(insert.event_id, insert.event_type, insert.event_data, 0)
    try:
        store._decode(stored, insert.instance_id, insert.execution_id)
    except DecodeError as exc:
        raise type(exc)(  # the same kind of error, located by its line
            exc.message,
            location=Location(
                instance_id=insert.instance_id,
                execution_id=insert.execution_id,
                event_id=insert.event_id,
                line=line,
            ),
        ) from None
    return insert


def export_rows(
    store: HistoryStore, *, quarantine: Callable[[dict[str, Any], DecodeError], None] | None = None
) -> Iterator[dict[str, Any]]:
    """Every row, whole and verbatim, in commit order (what import_rows takes).

    Without `quarantine` rows are copied as stored, decodable or not (a
    backup never drops data). With it, each row is decoded first and a row
    that does not decode, or disagrees with its columns, is handed to
    `quarantine(row, error)` instead of being yielded.
    """
    for position, instance_id, execution_id, event_id, event_type, data, created_at in (
        row for rows in store._feed_pages(0, None, 1000) for row in rows
    ):
        row = {
            "instance_id": instance_id,
            "execution_id": execution_id,
            "event_id": event_id,
            "event_type": event_type,
            "event_data": data.decode("utf-8", "replace") if isinstance(data, bytes) else data,
            "created_at": created_at,
        }
        if quarantine is not None:
            try:
                store._decode((event_id, event_type, data, position), instance_id, execution_id)
            except DecodeError as exc:
                quarantine(row, exc)
                continue
        yield row
