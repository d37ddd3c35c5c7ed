"""Histories as JSONL fixtures: one event per line, the stored JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from ..codec import DEFAULT_CODEC, Codec
from ..errors import DecodeError, Location
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
    it (its `event_data` decoded with the row's instance and execution).
    Legacy events carry no instance or execution: they take `instance_id`
    and `execution_id` when given.
    """
    codec = codec or DEFAULT_CODEC
    events: list[Event] = []
    for number, line in enumerate(text.splitlines(), start=1):
        data = line.strip()
        if not data:
            continue
        try:
            if data.startswith('{"instance_id"') or '"event_data"' in data[:200]:
                row = json.loads(data)
                if isinstance(row, dict) and "event_data" in row:
                    events.append(
                        codec.decode(
                            row["event_data"],
                            instance_id=row.get("instance_id"),
                            execution_id=row.get("execution_id"),
                        )
                    )
                    continue
            events.append(codec.decode(data, instance_id=instance_id, execution_id=execution_id))
        except (DecodeError, ValueError) as exc:
            message = exc.message if isinstance(exc, DecodeError) else str(exc)
            raise DecodeError(message, location=Location(line=number)) from None
    return events


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
