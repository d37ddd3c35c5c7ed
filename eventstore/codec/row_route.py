"""The read route row by row: an execution's stored rows decoded and checked.

`Codec.decode_rows` is `decode` per row plus the check that each row's
columns agree with its event (`rows.reconcile_row`), in one call. An
execution's rows are of one generation but for a dual-write window's, so the
loop that runs is chosen by its first row: V1 rows with the V1 decode inline,
legacy rows with their body decoded inline (`legacy_rows`). A row the chosen
loop does not take in its common case goes through `decode_row`, the whole
dispatch for one row, which upcasts, keeps or explains it. Every loop gives
the same events and raises the same RowDecodeError (naming the row's index)
as `decode_row` over every row; tests/test_read_routes.py holds them to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

import msgspec

from ..errors import DecodeError, RowDecodeError
from ..events import Event
from .decoders import _DECODE_ERRORS, _V1_DECODER
from .legacy_rows import CLOSING, NO_PLAN
from .rows import _reconcile

if TYPE_CHECKING:
    from .core import Codec

__all__ = ["decode_row", "decode_rows"]

_force_setattr: Final = msgspec.structs.force_setattr

Row = tuple[int, str, bytes | str]


def decode_rows(
    codec: Codec, rows: Iterable[Row], instance_id: str, execution_id: int
) -> list[Event]:
    """Decode the stored rows (event_id, event_type, data) of one execution.

    `Codec.decode_rows` (this function is the method): `decode` per row plus
    a check that each row's columns agree with its event, in one call.
    Raises RowDecodeError naming the row's index.
    """
    if type(rows) is not list:
        rows = list(rows)
    if rows and rows[0][2][2:3].isupper():  # `legacy_shaped`
        return _legacy_rows(codec, rows, instance_id, execution_id)
    return _v1_rows(codec, rows, instance_id, execution_id)


def _v1_rows(codec: Codec, rows: list[Row], instance_id: str, execution_id: int) -> list[Event]:
    v1 = _V1_DECODER.decode
    limit = codec.max_event_bytes
    events: list[Event] = []
    append = events.append
    for index, row in enumerate(rows):
        event_id, event_type, data = row
        if len(data) <= limit and not data[2:3].isupper():  # `legacy_shaped`, inline
            try:
                event: Event = v1(data)
            except _DECODE_ERRORS:
                append(decode_row(codec, index, row, instance_id, execution_id))
                continue
            if (  # inline for speed; _reconcile completes or explains
                event.event_id != event_id
                or event.event_type != event_type
                or event.instance_id != instance_id
                or event.execution_id != execution_id
            ):
                _reconcile(index, event, event_id, event_type, instance_id, execution_id)
            append(event)
        else:
            append(decode_row(codec, index, row, instance_id, execution_id))
    return events


def _legacy_rows(codec: Codec, rows: list[Row], instance_id: str, execution_id: int) -> list[Event]:
    plans = codec._row_plans
    limit = codec.max_event_bytes
    force_setattr = _force_setattr
    events: list[Event] = []
    append = events.append
    for index, row in enumerate(rows):
        event_id, event_type, data = row
        # The column names the type, and the bytes open with exactly that key
        # and close the envelope: the body alone is decoded (`legacy_rows`).
        plan = plans.get(event_type, NO_PLAN)
        if data[: plan.cut] == plan.prefix and data[-1] == CLOSING and len(data) <= limit:
            try:
                event: Event = plan.decode(data[plan.cut : -1])
            except _DECODE_ERRORS:
                pass
            else:
                # The built-in V0b -> V1 step (`legacy._fill_context`), in place:
                # the decoder created the event a moment ago and nothing else holds it.
                force_setattr(event, "instance_id", instance_id)
                force_setattr(event, "execution_id", execution_id)
                if event.event_id == event_id:  # its type and identity agree by construction
                    append(event)
                    continue
        append(decode_row(codec, index, row, instance_id, execution_id))
    return events


def decode_row(codec: Codec, index: int, row: Row, instance_id: str, execution_id: int) -> Event:
    """One stored row of an execution, any generation, checked against its
    columns; RowDecodeError names `index` when it does not decode or agree."""
    event_id, event_type, data = row
    event = _event(codec, index, event_type, data, instance_id, execution_id)
    if (
        event.event_id != event_id
        or event.event_type != event_type
        or event.instance_id != instance_id
        or event.execution_id != execution_id
    ):
        _reconcile(index, event, event_id, event_type, instance_id, execution_id)
    return event


def _event(
    codec: Codec,
    index: int,
    event_type: str,
    data: bytes | str,
    instance_id: str,
    execution_id: int,
) -> Event:
    failed: Exception | None = None
    if len(data) <= codec.max_event_bytes:
        if not data[2:3].isupper():
            try:
                return _V1_DECODER.decode(data)
            except _DECODE_ERRORS as exc:
                failed = exc
        else:
            event = _legacy_event(codec, event_type, data, instance_id, execution_id)
            if event is not None:
                return event
    try:
        if failed is None:  # legacy, or too large: the full dispatch
            return codec.decode(data, instance_id=instance_id, execution_id=execution_id)
        # not V1 after all: explain, or keep as unknown
        return codec._slow(data, failed, instance_id, execution_id).event
    except DecodeError as exc:
        raise RowDecodeError(index, exc.message) from None


def _legacy_event(
    codec: Codec, event_type: str, data: bytes | str, instance_id: str, execution_id: int
) -> Event | None:
    """A legacy row's common case (`legacy_rows`, failures included), else
    `Codec._legacy_row`'s, else None (the full dispatch reads it)."""
    plan = codec._row_plans.get(event_type) or codec._failure_plans.get(event_type)
    if (
        plan is not None
        and isinstance(data, bytes)
        and data[: plan.cut] == plan.prefix
        and data[-1] == CLOSING
    ):
        event = plan.read(data, instance_id, execution_id)
        if event is not None:
            return event
    return codec._legacy_row(data, instance_id, execution_id)
