"""The one check of a stored row: decode it, then hold it against its columns.

Every reader goes through here: `check_row` for one row (feeds, scans,
verify, stats, schema check, migrate, import/export, the metrics exporter,
JSONL fixtures), `reconcile_row` for the batched read routes of
`Codec.decode_rows` / `decode_packed`, which decode many rows in one call and
then hold each against its columns with this same function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec

from ..errors import DecodeError, RowDecodeError
from ..events import Event

if TYPE_CHECKING:
    from .core import Codec
    from .decoders import Decoded

_force_setattr: Final = msgspec.structs.force_setattr

UNRECORDED_TYPE: Final = "Event"
"""What duroxide's PostgreSQL provider writes in every row's event_type column:
the type is not recorded there, so the column cannot disagree with the event."""


def reconcile_row(
    event: Event, event_id: int, event_type: str, instance_id: str, execution_id: int
) -> str | None:
    """Match a freshly decoded event with the columns of the row it was read from.

    An identity the JSON left out (instance "" or execution 0, as V1 rows of
    some writers may) is taken from the row, as for V0 rows; the event must be
    one the decoder just created, since it is completed in place. Returns why
    the columns disagree with the event, or None when they agree.
    """
    if event.instance_id == "":
        _force_setattr(event, "instance_id", instance_id)
    if event.execution_id == 0:
        _force_setattr(event, "execution_id", execution_id)
    if (
        event.event_id == event_id
        and (event.event_type == event_type or event_type == UNRECORDED_TYPE)
        and event.instance_id == instance_id
        and event.execution_id == execution_id
    ):
        return None
    differences = [
        f"{what} column {column!r}, event {found!r}"
        for what, column, found, disagrees in (
            ("event_id", event_id, event.event_id, event.event_id != event_id),
            (
                "event_type",
                event_type,
                event.event_type,
                event.event_type != event_type and event_type != UNRECORDED_TYPE,
            ),
            ("instance_id", instance_id, event.instance_id, event.instance_id != instance_id),
            ("execution_id", execution_id, event.execution_id, event.execution_id != execution_id),
        )
        if disagrees
    ]
    return "the row's columns disagree with its event: " + "; ".join(differences)


def _bytes_problem(column: str, value: bytes) -> str:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return f"{column} column is not UTF-8 text (its bytes: {value!r})"
    return f"{column} column holds a BLOB {value!r}, not text"


def column_problem(instance_id: object, execution_id: object, event_id: object) -> str | None:
    """Why a row's key columns are not a key eventstore could have written, or None.

    SQLite stores any value in any column: a hand-inserted execution_id 'x'
    must be reported as a bad row, not filled into a legacy event as if it
    were an execution.
    """
    if isinstance(instance_id, bytes):
        return _bytes_problem("instance_id", bytes(instance_id))
    if not isinstance(instance_id, str):
        return f"instance_id column holds {type(instance_id).__name__} {instance_id!r}, not text"
    for name, value in (("execution_id", execution_id), ("event_id", event_id)):
        if type(value) is not int or value < 0:
            return f"{name} column holds {value!r}, not a non-negative integer"
    return None


def check_row(
    codec: Codec,
    instance_id: str,
    execution_id: int,
    event_id: int,
    event_type: str,
    data: bytes | str,
) -> Decoded:
    """Decode a stored row and check it against its columns: the one row check.

    Returns the event with its generation (`Generation`, the one classifier:
    `Codec.decode_detailed`). Raises RowDecodeError (index 0) when the key
    columns are not a key, the data does not decode, or the event disagrees
    with the columns (`mismatch=True`).
    """
    problem = column_problem(instance_id, execution_id, event_id)
    if problem is not None:
        raise RowDecodeError(0, problem)
    try:
        decoded = codec.decode_detailed(data, instance_id=instance_id, execution_id=execution_id)
    except DecodeError as exc:
        raise RowDecodeError(0, exc.message) from None
    problem = reconcile_row(decoded.event, event_id, event_type, instance_id, execution_id)
    if problem is not None:
        raise RowDecodeError(0, problem, mismatch=True)
    return decoded


def _reconcile(
    index: int, event: Event, event_id: int, event_type: str, instance_id: str, execution_id: int
) -> None:
    problem = reconcile_row(event, event_id, event_type, instance_id, execution_id)
    if problem is not None:
        raise RowDecodeError(index, problem, mismatch=True)
