"""The tables of the SQLite backend: their DDL and the introspection of existing ones.

sqlite-utils does both where it is the right tool: it writes the DDL of our
own tables (`eventstore_*`) and reads what an existing file holds (columns,
types, keys, indexes), whether duroxide or eventstore created it. It is
never on the append or read path: appends and reads run on the raw sqlite3
connection (see `eventstore.backends.sqlite`).

The history table itself is created with duroxide's own statement, kept
verbatim below: its `created_at TIMESTAMP` (NUMERIC affinity) is a type
sqlite-utils does not write, and a table duroxide reads must be the one
duroxide creates.
"""

from __future__ import annotations

import functools
import sqlite3
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["HISTORY_COLUMNS", "HISTORY_DDL", "HistoryTable", "evolution_ddl", "inspect"]

# duroxide's columns and key; `position` aliases the rowid so that positions
# survive VACUUM, and duroxide's primary key stays as a unique constraint.
# duroxide inserts with an explicit column list, so it never sees `position`.
HISTORY_DDL: Final = """
CREATE TABLE IF NOT EXISTS history (
    position INTEGER PRIMARY KEY,
    instance_id TEXT NOT NULL,
    execution_id INTEGER NOT NULL,
    event_id INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    event_data TEXT NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (instance_id, execution_id, event_id)
)
"""

HISTORY_COLUMNS: Final = ("instance_id", "execution_id", "event_id", "event_type", "event_data")
"""The columns every history table has (duroxide's and ours); created_at is optional."""

_KEY: Final = ("instance_id", "execution_id", "event_id")

# Our own tables: (name, columns, primary key, defaults). Every column is NOT
# NULL except a run's finish time and cursor.
_EVOLUTION_TABLES: Final[
    tuple[tuple[str, dict[str, type], tuple[str, ...], dict[str, Any]], ...]
] = (
    (
        "eventstore_schema_versions",
        {"version_id": str, "hash": str, "first_used_at": str, "catalog": str, "metadata": str},
        ("version_id",),
        {"metadata": "{}"},
    ),
    (
        "eventstore_migration_runs",
        {
            "run_id": str,
            "kind": str,
            "strategy": str,
            "target": str,
            "status": str,
            "started_at": str,
            "finished_at": str,
            "rows": int,
            "cursor": str,
            "details": str,
        },
        ("run_id",),
        {"rows": 0, "details": "{}"},
    ),
    (
        "eventstore_archive",
        {
            "run_id": str,
            "instance_id": str,
            "execution_id": int,
            "event_id": int,
            "event_type": str,
            "event_data": str,
        },
        ("run_id", *_KEY),
        {},
    ),
    (
        "eventstore_migration_log",
        {
            "run_id": str,
            "instance_id": str,
            "execution_id": int,
            "first_event_id": int,
            "strategy": str,
            "status": str,
            "changes": str,
        },
        ("run_id", "instance_id", "execution_id", "first_event_id"),
        {},
    ),
)
EVOLUTION_TABLES: Final = tuple(name for name, *_ in _EVOLUTION_TABLES)
_NULLABLE: Final = frozenset({"finished_at", "cursor"})


def _database(con: sqlite3.Connection) -> Any:
    # Imported here: sqlite-utils is needed when a file is opened or our
    # tables are created, never by an append or a read.
    import sqlite_utils

    # No PRAGMA and no plugin hooks on eventstore's connection: wrapping it
    # must change nothing about it.
    return sqlite_utils.Database(con, recursive_triggers=False, execute_plugins=False)


@functools.cache
def evolution_ddl() -> tuple[str, ...]:
    """CREATE TABLE IF NOT EXISTS of our four tables, as sqlite-utils writes them."""
    db = _database(sqlite3.connect(":memory:"))
    try:
        return tuple(
            db.create_table_sql(
                name,
                columns,
                pk=pk[0] if len(pk) == 1 else pk,
                not_null=[c for c in columns if c not in _NULLABLE],
                defaults=defaults,
                if_not_exists=True,
            )
            for name, columns, pk, defaults in _EVOLUTION_TABLES
        )
    finally:
        db.conn.close()


@dataclass(frozen=True, slots=True)
class HistoryTable:
    """What an existing history table is, as far as the backend cares."""

    columns: dict[str, str]
    """Column name -> declared type."""
    primary_key: tuple[str, ...]

    @property
    def missing(self) -> list[str]:
        return [c for c in HISTORY_COLUMNS if c not in self.columns]

    @property
    def stable_positions(self) -> bool:
        """True when a single INTEGER PRIMARY KEY column aliases the rowid (VACUUM keeps it)."""
        return (
            len(self.primary_key) == 1
            and self.columns.get(self.primary_key[0], "").upper() == "INTEGER"
        )


def inspect(con: sqlite3.Connection, name: str = "history") -> HistoryTable | None:
    """The table `name` of the file, or None when there is none."""
    db = _database(con)
    if name not in db.table_names():
        return None
    table = db[name]
    columns = {c.name: c.type for c in table.columns}
    pks = tuple(c.name for c in sorted(table.columns, key=lambda c: c.is_pk) if c.is_pk)
    return HistoryTable(columns, pks)


def has_table(con: sqlite3.Connection, name: str) -> bool:
    return name in _database(con).table_names()
