"""The dual-write window's tables in PostgreSQL: the write generation and the shadow rows.

The same two tables as the SQLite backend's (`eventstore.backends.sqlite.window`),
in the store's schema beside the history table: `eventstore_write_generation`
(one row) and `eventstore_shadow` (keyed like the history). Only
`set_write_generation` creates them; every read answers "nothing recorded"
while they do not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from psycopg import sql

from ...store.protocol import WindowCounts

__all__ = ["WINDOW_TABLES", "WindowQueries", "counts", "recorded"]

Read = Callable[[bytes, Sequence[object]], list[tuple[Any, ...]]]
"""Run a query, return its rows (the backend's `_all`, or a writer's statement)."""

WINDOW_TABLES: Final = ("eventstore_write_generation", "eventstore_shadow")

_DDL: Final = (
    "CREATE TABLE IF NOT EXISTS {generation} ("
    " id INTEGER PRIMARY KEY CHECK (id = 1), generation TEXT NOT NULL,"
    " changed_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {shadow} ("
    ' instance_id TEXT COLLATE "C" NOT NULL, execution_id BIGINT NOT NULL,'
    " event_id BIGINT NOT NULL, event_type TEXT NOT NULL, event_data TEXT NOT NULL,"
    " PRIMARY KEY (instance_id, execution_id, event_id))",
)


class WindowQueries:
    """The statements of the window's tables (identifiers quoted)."""

    def __init__(self, schema: str, table: str) -> None:
        names = {
            "generation": sql.Identifier(schema, "eventstore_write_generation"),
            "shadow": sql.Identifier(schema, "eventstore_shadow"),
            "history": sql.Identifier(schema, table),
        }

        def text(template: str) -> bytes:
            return sql.SQL(template).format(**names).as_bytes(None)

        self.tables = (
            f'"{schema}".eventstore_write_generation',
            f'"{schema}".eventstore_shadow',
        )
        self.exists = b"SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL"
        self.ddl = [text(ddl) for ddl in _DDL]
        self.generation = text("SELECT generation FROM {generation}")
        self.set_generation = text(
            "INSERT INTO {generation} (id, generation, changed_at) VALUES (1, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET generation = EXCLUDED.generation,"
            " changed_at = EXCLUDED.changed_at"
        )
        self.insert_shadow = text(
            "INSERT INTO {shadow} (instance_id, execution_id, event_id, event_type, event_data)"
            " VALUES (%s, %s, %s, %s, %s)"
        )
        self.shadow_rows = text(
            "SELECT instance_id, execution_id, event_id, event_type, event_data FROM {shadow}"
            " WHERE (instance_id, execution_id, event_id) >= (%s, %s, %s)"
            " AND (instance_id, execution_id, event_id) <= (%s, %s, %s)"
        )
        self.count_history = text("SELECT COUNT(*) FROM {history}")
        self.counts = text(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE h.event_data IS DISTINCT FROM s.event_data)"
            " FROM {history} h JOIN {shadow} s ON h.instance_id = s.instance_id"
            " AND h.execution_id = s.execution_id AND h.event_id = s.event_id"
        )


def _exists(read: Read, q: WindowQueries) -> bool:
    return bool(read(q.exists, q.tables)[0][0])


def recorded(read: Read, q: WindowQueries) -> str | None:
    """The recorded write generation, None when none was ever recorded."""
    if not _exists(read, q):
        return None
    rows = read(q.generation, ())
    return str(rows[0][0]) if rows else None


def counts(read: Read, q: WindowQueries) -> WindowCounts:
    """The write generation and how many history rows have a shadow form."""
    total = int(read(q.count_history, ())[0][0])
    if not _exists(read, q):
        return WindowCounts(None, 0, 0, total)
    rows = read(q.generation, ())
    shadowed, pending = read(q.counts, ())[0]
    return WindowCounts(str(rows[0][0]) if rows else None, int(shadowed), int(pending), total)
