"""Whole rows in and out of a store: what export writes and import takes.

Export is verbatim: each column's value goes out as stored. A value JSON
cannot carry as text (bytes that are not UTF-8, in any column) goes out as
`{"base64": "..."}`, the stored bytes exactly, never a repaired string: such
a row is corrupt, and must stay recognisably corrupt in a backup rather than
come back as a different, valid row.

Import applies to each row the rules a row must meet to be stored by append
(`identity.check_identity`, the function append uses), the column types both
backends can hold, and the store's row check (decode + columns). A row that
fails is named by where it came from (a file's line, or a source store's
position and key) and by the column at fault. The same check tells export
which of the rows it writes will not import.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Callable
from typing import Any, Final

from ..errors import DecodeError, Location, RowMismatchError, ValidationError
from .identity import MAX_ID, check_identity
from .protocol import InsertRow, StoredRow

__all__ = [
    "COLUMNS",
    "CheckRow",
    "RowProblem",
    "checked_insert",
    "exported_row",
    "location_with",
]

COLUMNS: Final = (
    "instance_id",
    "execution_id",
    "event_id",
    "event_type",
    "event_data",
    "created_at",
)

RowProblem = DecodeError | ValidationError
"""What a row that cannot be imported raises (import's --skip-corrupt skips these)."""

CheckRow = Callable[[StoredRow, str, int], object]
"""The store's row check: decode event_data and compare it with the columns."""

# created_at as both backends take it: SQLite's CURRENT_TIMESTAMP text, or
# ISO 8601 with fractional seconds and an offset (PostgreSQL's timestamptz).
_TIMESTAMP: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}(:?\d{2})?)?"
)


def _json_value(value: object) -> object:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode("ascii")}
    return value


def exported_row(
    instance_id: object,
    execution_id: object,
    event_id: object,
    event_type: object,
    event_data: object,
    created_at: object,
) -> dict[str, Any]:
    """A stored row as export writes it: every column verbatim (see the module)."""
    values = (instance_id, execution_id, event_id, event_type, event_data, created_at)
    return dict(zip(COLUMNS, map(_json_value, values), strict=True))


def location_with(where: Location, **identity: Any) -> Location:
    """`where` (a line, or a source position) completed by the row's identity."""
    changes = {k: v for k, v in identity.items() if getattr(where, k) is None and v is not None}
    return dataclasses.replace(where, **changes)


def _restored(value: object, column: str, where: Location) -> object:
    """A column's stored value from its JSON form (undoing `{"base64": ...}`)."""
    if isinstance(value, dict):
        if set(value) != {"base64"} or not isinstance(value["base64"], str):
            raise DecodeError(
                f"column {column}: an object that is not {{'base64': ...}}", location=where
            )
        try:
            return base64.b64decode(value["base64"], validate=True)
        except (binascii.Error, ValueError):
            raise DecodeError(f"column {column}: invalid base64", location=where) from None
    return value


def _text(value: object, column: str, where: Location) -> str:
    if isinstance(value, bytes):
        raise DecodeError(
            f"column {column}: the stored bytes are not UTF-8 text",
            location=where,
        )
    if not isinstance(value, str):
        raise DecodeError(f"column {column}: expected text, found {_kind(value)}", location=where)
    return value


def _integer(value: object, column: str, where: Location) -> int:
    if type(value) is not int or not 1 <= value <= MAX_ID:
        raise DecodeError(
            f"column {column}: expected an integer from 1 to 2**63-1, found {_kind(value)}",
            location=where,
        )
    return value


def _created_at(value: object, where: Location) -> str | None:
    if value is None:
        return None
    text = _text(value, "created_at", where)
    if not _TIMESTAMP.fullmatch(text):
        raise DecodeError(
            f"column created_at: expected 'YYYY-MM-DD HH:MM:SS' (UTC) or null, found {text!r}",
            location=where,
        )
    return text


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {value!r}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, bytes):
        return "bytes"
    return type(value).__name__ if not isinstance(value, str) else f"text {value!r}"


def checked_insert(row: dict[str, Any], where: Location, check: CheckRow) -> InsertRow:
    """The InsertRow for an exported row, or a RowProblem naming where and which column."""
    missing = [c for c in COLUMNS[:5] if c not in row]
    if missing:
        raise DecodeError(f"not a history row: missing {', '.join(missing)}", location=where)
    values = {c: _restored(row.get(c), c, where) for c in COLUMNS}
    execution_id = _integer(values["execution_id"], "execution_id", where)
    event_id = _integer(values["event_id"], "event_id", where)
    where = location_with(where, execution_id=execution_id, event_id=event_id)
    instance_id = _text(values["instance_id"], "instance_id", where)
    where = location_with(where, instance_id=instance_id)
    try:
        check_identity(instance_id, execution_id)
    except ValidationError as exc:
        raise type(exc)(f"column instance_id: {exc.message}", location=where) from None
    insert = InsertRow(
        instance_id,
        execution_id,
        event_id,
        _text(values["event_type"], "event_type", where),
        _text(values["event_data"], "event_data", where),
        _created_at(values["created_at"], where),
    )
    try:
        check(
            StoredRow(event_id, insert.event_type, insert.event_data, 0), instance_id, execution_id
        )
    except DecodeError as exc:
        # A mismatch names the columns it compares; anything else is event_data's.
        prefix = "" if isinstance(exc, RowMismatchError) else "column event_data: "
        raise type(exc)(prefix + exc.message, location=where) from None
    return insert
