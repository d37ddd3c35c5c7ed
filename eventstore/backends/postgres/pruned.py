"""Reads of one execution that name its partition (a table partitioned by shard).

A statement on a partitioned table that does not constrain the partition key
is planned against every partition: with a month of days kept, reading one
execution spent more time planning than running (proposals/lifecycle.md has
the figures). The execution catalog, which appends keep in their own
transaction, says each execution's shard; its rows are in that shard's
partition, or in root (imports, other programs' rows, legacy rows until
`shards rebase`). So these reads ask the catalog first (a primary-key probe
of a small table) and then read with the shard given, which the planner
prunes to two partitions. Both statements go over one pooled connection. An
execution without a catalog row (written by another program, or inside a
`transaction()` still open) is read from every partition, as before.

The global feed cannot be pruned this way: it spans every day by definition
(the order is (transaction id, position), not shard). Its statement stays
as it is; psycopg prepares it on a connection after a few executions, and
PostgreSQL then reuses a generic plan, so its planning is paid once per
connection rather than per page.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from ...store.protocol import ExecutionRow, StoredRow
from .queries import TABLE
from .translate import DRIVER_ERRORS, translate

__all__ = ["ExecutionReads", "PrunedQueries"]

_IN_SHARD = " AND eventstore_shard IN (%s, 'root')"
_KEY = " WHERE instance_id = %s AND execution_id = %s"


class PrunedQueries:
    """The reads of one execution with its shard as the last parameter."""

    def __init__(self, schema: str) -> None:
        names = {
            "table": sql.Identifier(schema, TABLE),
            "executions": sql.Identifier(schema, "eventstore_executions"),
        }

        def text(template: str) -> bytes:
            return sql.SQL(template).format(**names).as_bytes(None)

        self.shard = text("SELECT shard FROM {executions}" + _KEY)
        self.execution_rows = text(
            "SELECT event_id, event_type, event_data FROM {table}"
            + _KEY
            + _IN_SHARD
            + " ORDER BY event_id"
        )
        self.position_of = text(
            "SELECT eventstore_position FROM {table}" + _KEY + " AND event_id = %s" + _IN_SHARD
        )
        self.last_event_id = text(
            "SELECT COALESCE(MAX(event_id), 0) FROM {table}" + _KEY + _IN_SHARD
        )
        edge = (
            "SELECT event_id, event_type, event_data, eventstore_position FROM {table}"
            + _KEY
            + _IN_SHARD
            + " ORDER BY event_id {} LIMIT 1"
        )
        self.first_row = text(edge.replace("{}", "ASC"))
        self.last_row = text(edge.replace("{}", "DESC"))


class ExecutionReads:
    """PostgresBackend's reads of one execution (a mixin): pruned to the
    execution's partition where the table is partitioned (the module)."""

    _q: Any  # the backend's Queries
    _pruned: PrunedQueries | None

    if TYPE_CHECKING:

        def _connection(self) -> AbstractContextManager[psycopg.Connection[Any]]: ...

    def _execution_read(
        self, plain: bytes, pruned: Sequence[bytes], args: tuple[object, ...]
    ) -> list[list[tuple[Any, ...]]]:
        """Each of `pruned` (with the execution's shard) or, without a
        catalog row or partitions, `plain`'s one statement."""
        with self._connection() as con:
            try:
                if self._pruned is not None:
                    found = con.execute(self._pruned.shard, args[:2]).fetchone()
                    if found is not None:
                        return [con.execute(q, (*args, found[0])).fetchall() for q in pruned]
                return [con.execute(plain, args).fetchall()]
            except DRIVER_ERRORS as exc:
                raise translate(exc, "read failed") from None

    def _pruned_of(self, name: str) -> list[bytes]:
        return [getattr(self._pruned, name)] if self._pruned is not None else []

    def execution_rows(self, instance_id: str, execution_id: int) -> list[ExecutionRow]:
        args = (instance_id, execution_id)
        return self._execution_read(
            self._q.execution_rows, self._pruned_of("execution_rows"), args
        )[0]

    def position_of(self, instance_id: str, execution_id: int, event_id: int) -> int | None:
        args = (instance_id, execution_id, event_id)
        rows = self._execution_read(self._q.position_of, self._pruned_of("position_of"), args)[0]
        return int(rows[0][0]) if rows else None

    def last_event_id(self, instance_id: str, execution_id: int) -> int:
        args = (instance_id, execution_id)
        rows = self._execution_read(self._q.last_event_id, self._pruned_of("last_event_id"), args)
        value = rows[0][0][0]
        return int(value) if value is not None else 0

    def edge_rows(
        self, instance_id: str, execution_id: int
    ) -> tuple[StoredRow | None, StoredRow | None]:
        args = (instance_id, execution_id)
        if self._pruned is not None:
            found = self._execution_read(b"", [self._pruned.first_row, self._pruned.last_row], args)
            if len(found) == 2:
                first, last = found
                return (
                    StoredRow(*first[0]) if first else None,
                    StoredRow(*last[0]) if last else None,
                )
        first = self._execution_read(self._q.first_row, [], args)[0]
        last = self._execution_read(self._q.last_row, [], args)[0]
        return (StoredRow(*first[0]) if first else None, StoredRow(*last[0]) if last else None)
