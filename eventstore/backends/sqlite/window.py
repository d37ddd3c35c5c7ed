"""The dual-write window's tables in SQLite: the write generation and the shadow rows.

* `eventstore_write_generation`: one row, the generation every writer of the
  store writes (absent: V1, and no table at all until a window was opened).
* `eventstore_shadow`: the full V1 form of each event written while the
  generation was legacy, keyed like the history (instance, execution, event id).

Both are created only by a writing call that opens a window
(`set_write_generation`); every read here answers "nothing recorded" while
they do not exist, so a reading command never adds a table to a database
duroxide created.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from ...store.protocol import NewEvents, RowKey, WindowCounts
from .translate import translate

__all__ = [
    "WINDOW_TABLES",
    "insert_shadow",
    "recorded_generation",
    "set_write_generation",
    "shadow_rows",
    "window_counts",
]

WINDOW_TABLES: Final = ("eventstore_write_generation", "eventstore_shadow")

_DDL: Final = (
    "CREATE TABLE IF NOT EXISTS eventstore_write_generation ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " generation TEXT NOT NULL,"
    " changed_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS eventstore_shadow ("
    " instance_id TEXT NOT NULL,"
    " execution_id INTEGER NOT NULL,"
    " event_id INTEGER NOT NULL,"
    " event_type TEXT NOT NULL,"
    " event_data TEXT NOT NULL,"
    " PRIMARY KEY (instance_id, execution_id, event_id))",
)
_INSERT_SHADOW: Final = (
    "INSERT INTO eventstore_shadow (instance_id, execution_id, event_id, event_type, event_data)"
    " VALUES (?, ?, ?, ?, CAST(? AS TEXT))"
)


def _has_tables(con: sqlite3.Connection) -> bool:
    found = con.execute(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)",
        WINDOW_TABLES,
    ).fetchone()
    return bool(found[0] == len(WINDOW_TABLES))


def recorded_generation(con: sqlite3.Connection) -> str | None:
    """The recorded write generation, None when none was ever recorded."""
    try:
        if not _has_tables(con):
            return None
        row = con.execute("SELECT generation FROM eventstore_write_generation").fetchone()
    except sqlite3.Error as exc:
        raise translate(exc, "cannot read the write generation") from None
    return str(row[0]) if row is not None else None


def set_write_generation(con: sqlite3.Connection, generation: str, at: str) -> None:
    """Record the generation (creating the window's tables); inside a write transaction."""
    for ddl in _DDL:
        con.execute(ddl)
    con.execute(
        "INSERT INTO eventstore_write_generation (id, generation, changed_at) VALUES (1, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET generation = excluded.generation,"
        " changed_at = excluded.changed_at",
        (generation, at),
    )


def insert_shadow(con: sqlite3.Connection, batch: NewEvents) -> None:
    # Bound as str where the data is UTF-8 (sqlite3 looks up an adapter for
    # every bytes parameter); the CAST keeps anything else TEXT, as history is.
    instance_id, execution_id, ids, types, encoded, _ = batch
    try:
        data: list[str] | list[bytes] = [d.decode() for d in encoded]
    except UnicodeDecodeError:
        data = encoded
    con.executemany(
        _INSERT_SHADOW,
        [
            (instance_id, execution_id, event_id, event_type, event_data)
            for event_id, event_type, event_data in zip(ids, types, data, strict=True)
        ],
    )


def shadow_rows(
    con: sqlite3.Connection, first: RowKey, last: RowKey
) -> dict[RowKey, tuple[str, str]]:
    """Shadow forms of the keys first..last (inclusive), by key."""
    if not _has_tables(con):
        return {}
    return {
        (r[0], r[1], r[2]): (r[3], r[4])
        for r in con.execute(
            "SELECT instance_id, execution_id, event_id, event_type, event_data"
            " FROM eventstore_shadow"
            " WHERE (instance_id, execution_id, event_id) >= (?, ?, ?)"
            " AND (instance_id, execution_id, event_id) <= (?, ?, ?)",
            (*first, *last),
        )
    }


def window_counts(con: sqlite3.Connection) -> WindowCounts:
    """The write generation and how many history rows have a shadow form."""
    try:
        total = int(con.execute("SELECT COUNT(*) FROM history").fetchone()[0])
        if not _has_tables(con):
            return WindowCounts(None, 0, 0, total)
        generation = con.execute("SELECT generation FROM eventstore_write_generation").fetchone()
        shadowed, differ = con.execute(
            "SELECT COUNT(*), COALESCE(SUM(CAST(h.event_data AS BLOB)"
            " IS NOT CAST(s.event_data AS BLOB)), 0)"
            " FROM history h JOIN eventstore_shadow s"
            " ON h.instance_id = s.instance_id AND h.execution_id = s.execution_id"
            " AND h.event_id = s.event_id"
        ).fetchone()
    except sqlite3.Error as exc:
        raise translate(exc, "cannot read the dual-write window") from None
    return WindowCounts(
        str(generation[0]) if generation is not None else None,
        int(shadowed),
        int(differ),
        total,
    )
