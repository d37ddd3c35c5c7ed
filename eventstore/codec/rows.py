"""The check of a stored row: its columns against the event it holds."""

from __future__ import annotations

from typing import Final

import msgspec

from ..errors import DecodeError
from ..events import Event

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
    return (
        "the row's columns disagree with its event "
        f"(columns: {event_type} {event_id}; event: {event.event_type} "
        f"{event.event_id} of {event.instance_id!r} execution {event.execution_id})"
    )


def _reconcile(
    index: int, event: Event, event_id: int, event_type: str, instance_id: str, execution_id: int
) -> None:
    problem = reconcile_row(event, event_id, event_type, instance_id, execution_id)
    if problem is not None:
        raise RowDecodeError(index, problem, mismatch=True)


class RowDecodeError(DecodeError):
    """A stored row that does not decode, or disagrees with its columns."""

    def __init__(self, index: int, message: str, *, mismatch: bool = False) -> None:
        self.index = index
        self.mismatch = mismatch
        """True when the row decoded but its columns disagree with the event."""
        super().__init__(message)
