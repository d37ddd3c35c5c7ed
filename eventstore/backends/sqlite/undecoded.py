"""Whole-store reads that survive a TEXT value whose bytes are not UTF-8.

sqlite3 refuses a whole result when one TEXT value is not UTF-8 ("Could not
decode to UTF-8 column ..."); such a page is read again with those values as
UndecodedText, for the store to report by position. The normal case pays
nothing: the fallback runs only after that failure.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Final

from ...store.protocol import UndecodedText

__all__ = ["AFTER_KEY", "RAW_AFTER", "UndecodedText", "fetch_tolerant", "key_args"]

# Keyset pagination after a key whose instance_id may be UndecodedText: bound
# as a BLOB and cast back to TEXT, so it sorts where the stored TEXT value does
# (a real BLOB key stays a BLOB, which sorts after every TEXT value).
AFTER_KEY: Final = (
    " WHERE (instance_id, execution_id, event_id)"
    " > (CASE WHEN ? THEN CAST(? AS TEXT) ELSE ? END, ?, ?)"
    " ORDER BY instance_id, execution_id, event_id LIMIT ?"
)
RAW_AFTER: Final = (
    "SELECT rowid, instance_id, execution_id, event_id, event_type, event_data,"
    " created_at FROM history" + AFTER_KEY
)


def _text_or_bytes(data: bytes) -> str | bytes:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return UndecodedText(data)


def key_args(key: tuple[str | bytes, int, int], limit: int) -> tuple[object, ...]:
    instance_id, execution_id, event_id = key
    undecoded = isinstance(instance_id, UndecodedText)
    return (undecoded, instance_id, instance_id, execution_id, event_id, limit)


def fetch_tolerant(con: sqlite3.Connection, sql: str, args: tuple[object, ...]) -> list[Any]:
    """The rows of a whole-store read, where one bad row must not fail the rest."""
    try:
        return con.execute(sql, args).fetchall()
    except sqlite3.OperationalError as exc:
        if "Could not decode" not in str(exc):
            raise
    con.text_factory = _text_or_bytes
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.text_factory = str
