"""Reads of one execution that name its partition (a table partitioned by shard).

A statement on a partitioned table that does not constrain the partition key
is planned against every partition and starts a scan of each: with a month
of days kept, reading one execution spent more time planning than running
(proposals/lifecycle.md has the figures). The execution catalog, which
appends keep in their own transaction, says each execution's shard; its rows
are in that shard's partition, or in root (imports, other programs' rows,
legacy rows until `shards rebase`). So these reads constrain the shard to
`IN ((<the catalog's shard>), (<'root' if the catalog has the row>))`, two
uncorrelated subqueries that PostgreSQL runs first (InitPlans) and prunes
with at execution: every other partition's scan is never started, in one
statement and one round trip, and psycopg's prepared statement keeps one
plan for it per connection. An execution without a catalog row (another
program's, or one a `transaction()` still open wrote) gives both NULL and no
row: then, and only when the pruned read finds nothing, the read is made
again against every partition, so it is never partial and never wrong.

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

_IN_SHARD = (
    " AND eventstore_shard IN ((SELECT shard FROM {executions}" + "{key}" + "),"
    " (SELECT 'root' FROM {executions}" + "{key}" + "))"
)
_KEY = " WHERE instance_id = %s AND execution_id = %s"


class PrunedQueries:
    """The reads of one execution, pruned by the catalog's shard (the key given again)."""

    def __init__(self, schema: str) -> None:
        names = {
            "table": sql.Identifier(schema, TABLE),
            "executions": sql.Identifier(schema, "eventstore_executions"),
        }

        def text(template: str) -> bytes:
            template = template.replace("{key}", _KEY)
            return sql.SQL(template).format(**names).as_bytes(None)

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
        self, plain: Sequence[bytes], pruned: Sequence[bytes], args: tuple[object, ...]
    ) -> list[list[tuple[Any, ...]]]:
        """Each of `pruned` (the execution's key given again for the shard's
        subqueries); where the first finds nothing, each of `plain`."""
        with self._connection() as con:
            try:
                if self._pruned is not None:
                    extra = (*args, *args[:2], *args[:2])
                    found = [con.execute(q, extra).fetchall() for q in pruned]
                    if found[0] and found[0][0] != (0,):
                        return found
                return [con.execute(q, args).fetchall() for q in plain]
            except DRIVER_ERRORS as exc:
                raise translate(exc, "read failed") from None

    def _pruned_of(self, *names: str) -> list[bytes]:
        return [getattr(self._pruned, n) for n in names] if self._pruned is not None else []

    def execution_rows(self, instance_id: str, execution_id: int) -> list[ExecutionRow]:
        args = (instance_id, execution_id)
        pruned = self._pruned_of("execution_rows")
        return self._execution_read([self._q.execution_rows], pruned, args)[0]

    def position_of(self, instance_id: str, execution_id: int, event_id: int) -> int | None:
        args = (instance_id, execution_id, event_id)
        pruned = self._pruned_of("position_of")
        rows = self._execution_read([self._q.position_of], pruned, args)[0]
        return int(rows[0][0]) if rows else None

    def last_event_id(self, instance_id: str, execution_id: int) -> int:
        args = (instance_id, execution_id)
        pruned = self._pruned_of("last_event_id")
        rows = self._execution_read([self._q.last_event_id], pruned, args)[0]
        value = rows[0][0]
        return int(value) if value is not None else 0

    def edge_rows(
        self, instance_id: str, execution_id: int
    ) -> tuple[StoredRow | None, StoredRow | None]:
        plain = [self._q.first_row, self._q.last_row]
        pruned = self._pruned_of("first_row", "last_row")
        first, last = self._execution_read(plain, pruned, (instance_id, execution_id))
        return (StoredRow(*first[0]) if first else None, StoredRow(*last[0]) if last else None)
