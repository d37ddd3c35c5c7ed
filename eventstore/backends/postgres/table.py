"""The history table on open: checked, created when absent, brought up to date.

A table of an earlier version (a position column but no `eventstore_xid`) is
given the feed's transaction-id column and index on its first writable open
(`FEED_UPGRADE`; writer.py explains the feed's order). Its rows get
transaction id 0: they come first, in position order, which was their commit
order under the table-wide lock those versions took. A read-only open
changes nothing: it reads such a table in position order, as before.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from ...errors import StoreError, StoreNotFoundError
from .catalog import CatalogQueries
from .partitions import PARTITIONED_DDL, ROOT, ShardPartitions, is_partitioned
from .queries import FEED_INDEX, FEED_UPGRADE, HISTORY_DDL, TABLE
from .translate import translate

__all__ = ["prepare"]

_REQUIRED = frozenset({"instance_id", "execution_id", "event_id", "event_type", "event_data"})


def prepare(
    con: psycopg.Connection[Any],
    schema: str,
    description: str,
    key: int,
    readonly: bool,
    partition_by_shard: bool = True,
) -> tuple[bool, bool, bool]:
    """(whether the table has our position column, whether it has the feed's
    transaction ids, whether it is partitioned by shard); `key` is the
    table's advisory-lock key. `partition_by_shard` only shapes a table made
    now: an existing one keeps its shape (partitions.py)."""
    try:
        columns = _columns(con, schema)
        if not columns and readonly:
            raise StoreNotFoundError(f"{description} has no {TABLE} table in schema {schema}")
        earlier = "eventstore_position" in columns and "eventstore_xid" not in columns
        if not readonly and (not columns or (earlier and not _in_recovery(con))):
            _create_or_upgrade(
                con, schema, key, upgrade=bool(columns), partitioned=partition_by_shard
            )
            columns = _columns(con, schema)
        partitioned = "eventstore_shard" in columns and is_partitioned(con, schema)
    except psycopg.Error as exc:
        raise translate(exc, f"cannot open {description}") from None
    missing = _REQUIRED - columns
    if missing:
        raise StoreError(
            f"{description}: table {schema}.{TABLE} is not a history table"
            f" (missing {', '.join(sorted(missing))})"
        )
    positioned = "eventstore_position" in columns
    return positioned, positioned and "eventstore_xid" in columns, partitioned


def _in_recovery(con: psycopg.Connection[Any]) -> bool:
    """A hot standby: nothing can be changed there (an earlier table is read
    as it is, in position order, until the primary's first open upgrades it)."""
    row = con.execute("SELECT pg_is_in_recovery()").fetchone()
    return bool(row is not None and row[0])


def _columns(con: psycopg.Connection[Any], schema: str) -> set[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s",
        (schema, TABLE),
    ).fetchall()
    return {str(r[0]) for r in rows}


def _create_or_upgrade(
    con: psycopg.Connection[Any], schema: str, key: int, *, upgrade: bool, partitioned: bool
) -> None:
    """Under the table's key held exclusively: concurrent first opens (CREATE
    ... IF NOT EXISTS can otherwise race on the catalog) and writers of
    earlier versions wait. The upgrade's ALTER TABLE holds the table briefly
    (a column with a constant default rewrites nothing); building the index
    reads the table once."""
    names = {
        "table": sql.Identifier(schema, TABLE),
        "position_key": sql.Identifier(f"eventstore_{TABLE}_position_key"),
        "feed_key": sql.Identifier(f"eventstore_{TABLE}_feed_key"),
    }
    with con.transaction():
        con.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
        if upgrade:
            for statement in FEED_UPGRADE:
                con.execute(sql.SQL(statement).format(**names))
            return
        con.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        con.execute(sql.SQL(PARTITIONED_DDL if partitioned else HISTORY_DDL).format(**names))
        if partitioned:  # no DEFAULT partition: rows without a day go to root
            ShardPartitions(schema, lambda: con, "").make(con, ROOT)
        con.execute(sql.SQL(FEED_INDEX).format(**names))
        # A new store keeps its execution catalog from the start.
        for ddl in CatalogQueries(schema, TABLE).ddl:
            con.execute(ddl)
