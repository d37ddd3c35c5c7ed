"""PostgreSQL's own integrity check (amcheck), and the history table counted two ways.

amcheck's `bt_index_check(index, heapallindexed => true)` runs on every
b-tree index of the table when the extension is installed and this role may
call it. Creating the extension is a change to the user's database (and
needs rights verify should not ask for), so verify never does: without it,
or without the right to run it, the check did not run and the report's note
says "amcheck not available" and why; that alone is no problem. The rows
are counted with the planner steered to a sequential scan and to an index
scan.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg
import psycopg.errors

from ...store.protocol import IntegrityResult

__all__ = ["postgres_integrity"]

_PG_INDEXES: Final = (
    "SELECT c.relname, c.oid::regclass::text FROM pg_index i"
    " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
    # A table partitioned by shard: the partitions' own indexes (a
    # partitioned index has no pages to check); a plain table is its own leaf.
    " WHERE i.indrelid IN (SELECT relid FROM pg_partition_tree(%s::regclass) WHERE isleaf)"
    " AND c.relkind = 'i' AND a.amname = 'btree' AND i.indpred IS NULL"
    " ORDER BY c.relname"
)
_AMCHECK: Final = "amcheck bt_index_check"
_UNAVAILABLE: Final = "amcheck not available"


def postgres_integrity(con: psycopg.Connection[Any], qualified: str) -> IntegrityResult:
    """Run in one transaction on a psycopg connection (its errors are the caller's).

    `qualified` is the table's schema-qualified, quoted name. The index count
    is one count with sequential scans off: PostgreSQL cannot be told which
    index to walk, and amcheck's `heapallindexed` checks each index against
    the table anyway.
    """
    count = f"SELECT count(*) FROM {qualified}"
    with con.transaction():
        for setting in ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"):
            con.execute(f"SET LOCAL {setting} = off")
        table_rows = int(_one(con, count))
        con.execute("SET LOCAL enable_seqscan = off")
        con.execute("SET LOCAL enable_indexonlyscan = on")
        con.execute("SET LOCAL enable_indexscan = on")
        index_rows = {"an index scan": int(_one(con, count))}
        indexes = [(str(r[0]), str(r[1])) for r in con.execute(_PG_INDEXES, (qualified,))]
        if con.execute("SELECT 1 FROM pg_extension WHERE extname = 'amcheck'").fetchone() is None:
            note = f"{_UNAVAILABLE}: the extension is not installed (CREATE EXTENSION amcheck)"
            return IntegrityResult(_AMCHECK, False, [], table_rows, index_rows, note)
        problems: list[str] = []
        for name, regclass in indexes:
            try:
                with con.transaction():  # a savepoint: one damaged index, the rest still checked
                    con.execute("SELECT bt_index_check(%s::regclass, true)", (regclass,))
            except (psycopg.errors.InsufficientPrivilege, psycopg.errors.UndefinedFunction) as exc:
                note = f"{_UNAVAILABLE} to this role: {_first_line(exc)}"
                return IntegrityResult(_AMCHECK, False, [], table_rows, index_rows, note)
            except psycopg.Error as exc:  # amcheck reports damage as an error
                problems.append(f"index {name}: {str(exc).strip()}")
    return IntegrityResult(_AMCHECK, True, problems, table_rows, index_rows)


def _first_line(exc: psycopg.Error) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _one(con: psycopg.Connection[Any], query: str) -> Any:
    row = con.execute(query.encode()).fetchone()
    return row[0] if row else 0
