"""How a run records a row key and names a row, when the key may not be text.

A hand-written SQLite row's instance_id may be TEXT whose bytes are not UTF-8
(read as `UndecodedText`) or a BLOB (`bytes`). Such a row is skipped and
reported, but it can still end a batch, so the run's cursor must hold it:
it is kept in JSON as {"text": hex} or {"blob": hex} and read back as the
same kind of value, so the backend resumes right after that row.
"""

from __future__ import annotations

import json
from typing import Any

from ..store.protocol import RawRow, RowKey, UndecodedText

__all__ = ["cursor_json", "cursor_key", "row_place"]


def _instance_json(instance_id: str | bytes) -> Any:
    if isinstance(instance_id, UndecodedText):
        return {"text": instance_id.hex()}
    if isinstance(instance_id, bytes):
        return {"blob": instance_id.hex()}
    return instance_id


def cursor_json(key: RowKey) -> str:
    instance_id, execution_id, event_id = key
    return json.dumps([_instance_json(instance_id), execution_id, event_id])


def cursor_key(text: str) -> RowKey:
    instance_id, execution_id, event_id = json.loads(text)
    if isinstance(instance_id, dict) and "text" in instance_id:
        instance_id = UndecodedText(bytes.fromhex(instance_id["text"]))
    elif isinstance(instance_id, dict):
        instance_id = bytes.fromhex(instance_id["blob"])
    else:
        instance_id = str(instance_id)
    return (instance_id, int(execution_id), int(event_id))


def row_place(row: RawRow) -> str:
    """The row by key and position, for a report (an id that is not text as bytes)."""
    instance: str | bytes = row.instance_id
    name = repr(bytes(instance)) if isinstance(instance, bytes) else instance
    return f"{name} execution {row.execution_id} event {row.event_id} position {row.position}"
