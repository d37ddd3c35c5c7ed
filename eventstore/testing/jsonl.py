"""Histories as JSONL fixtures: one event per line, the stored JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from ..codec import DEFAULT_CODEC, Codec, RowDecodeError, check_row
from ..errors import DecodeError, Location, RowMismatchError
from ..events import Event

__all__ = ["dump_history", "load_history", "parse_history", "save_history"]


def dump_history(events: Iterable[Event], *, codec: Codec | None = None) -> str:
    """The history as JSONL text: each event's stored JSON on its own line."""
    codec = codec or DEFAULT_CODEC
    return "".join(codec.encode(event).decode() + "\n" for event in events)


def parse_history(
    text: str,
    *,
    instance_id: str | None = None,
    execution_id: int | None = None,
    codec: Codec | None = None,
) -> list[Event]:
    """Events from JSONL text (any generation), in file order.

    A line is one event's JSON, or a whole row as `eventstore export` writes
    it: its `event_data` is decoded with the row's instance and execution and
    must agree with the row's columns, as a store read checks. Legacy events
    carry no instance or execution: they take `instance_id` and
    `execution_id` when given. Errors name the line.
    """
    codec = codec or DEFAULT_CODEC
    events: list[Event] = []
    for number, line in enumerate(text.splitlines(), start=1):
        data = line.strip()
        if data:
            events.append(_parse_line(data, number, instance_id, execution_id, codec))
    return events


def _parse_line(
    data: str, number: int, instance_id: str | None, execution_id: int | None, codec: Codec
) -> Event:
    where = Location(line=number)
    row: object = None
    if '"event_data"' in data:  # perhaps a whole exported row
        try:
            row = json.loads(data)
        except ValueError as exc:
            raise DecodeError(f"not JSON: {exc}", location=where) from None
    if not (isinstance(row, dict) and "event_data" in row):
        try:
            return codec.decode(data, instance_id=instance_id, execution_id=execution_id)
        except DecodeError as exc:
            raise DecodeError(exc.message, location=where) from None
    stored = row["event_data"]
    if not isinstance(stored, str):
        stored = json.dumps(stored)
    if not {"instance_id", "execution_id", "event_id", "event_type"} <= row.keys():
        try:  # an event with some of its row: nothing to hold it against
            return codec.decode(
                stored, instance_id=row.get("instance_id"), execution_id=row.get("execution_id")
            )
        except DecodeError as exc:
            raise DecodeError(exc.message, location=where) from None
    try:  # a whole row: the store's one row check
        return check_row(
            codec,
            row["instance_id"],
            row["execution_id"],
            row["event_id"],
            row["event_type"],
            stored,
        ).event
    except RowDecodeError as exc:
        raise (RowMismatchError if exc.mismatch else DecodeError)(
            exc.message, location=where
        ) from None


def load_history(
    path: str | os.PathLike[str],
    *,
    instance_id: str | None = None,
    execution_id: int | None = None,
    codec: Codec | None = None,
) -> list[Event]:
    """Events of a JSONL fixture file (see parse_history)."""
    text = Path(path).read_text(encoding="utf-8")
    return parse_history(text, instance_id=instance_id, execution_id=execution_id, codec=codec)


def save_history(
    path: str | os.PathLike[str], events: Iterable[Event], *, codec: Codec | None = None
) -> Path:
    """Write events as a JSONL fixture (UTF-8, one event per line); returns the path."""
    target = Path(path)
    target.write_text(dump_history(events, codec=codec), encoding="utf-8")
    return target
