"""Converting an unpartitioned history table into the partitioned layout (offline).

`eventstore shards partition TARGET` (eventstore.lifecycle.partition) ends
here. The conversion holds the table's advisory key exclusively for its whole
session (`pg_advisory_lock`, the key every write of the store takes, shared
or exclusive, per transaction): appends wait for it (and fail with
StoreBusyError after their lock_timeout), reads go on against the old table
until the swap. So it is an offline conversion: stop the writers first.

The steps, each durable before the next, so a run killed anywhere is
finished by running it again:

1. `history_partitioning` is created (the partitioned DDL, partitions
   made for every shard the execution catalog names, and root), with the
   highest position of the old table at that moment in its comment (the
   high-water mark);
2. rows are copied in key order, a batch per transaction, each with its
   execution's shard from the catalog (root without a catalog row) and its
   position, transaction id and created_at verbatim: the feed's order
   (transaction id, position) and every resume token stay as they were. A
   rerun continues after the last key copied;
3. rows written to the old table between two runs (positions above the
   high-water mark) are copied where absent; then both tables are compared
   (count and sums of hashes of every column); when they differ (rows
   deleted or rewritten between runs), rows that differ are deleted from the
   copy and the missing ones copied again, and the comparison must then pass;
4. rows whose shard differs from the catalog's now (a backfill between runs)
   move to it, so each execution sits in one partition;
5. one transaction swaps: the old table is locked, its identity sequence's
   value carried over, the old table dropped and the new one renamed (with
   its constraints, index and sequence) to the names of the old.

Before step 5 the old table is the store and the copy nobody's; after it the
new one is. What stays unenforced is as in partitions.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Final

import psycopg
from psycopg import sql

from ...errors import StoreError
from .locks import lock_key
from .partitions import PARTITIONED_DDL, ROOT, ShardPartitions, is_partitioned
from .queries import FEED_INDEX, TABLE
from .translate import DRIVER_ERRORS, translate

__all__ = ["NEW_TABLE", "convert_to_partitioned"]

NEW_TABLE: Final = f"{TABLE}_partitioning"
_COLUMNS: Final = (
    "instance_id, execution_id, event_id, event_type, event_data, created_at,"
    " eventstore_position, eventstore_xid"
)
_SOURCE: Final = (
    "SELECT h.instance_id, h.execution_id, h.event_id, h.event_type, h.event_data,"
    " h.created_at, h.eventstore_position, h.eventstore_xid, COALESCE(e.shard, 'root')"
    " AS eventstore_shard FROM {old} h LEFT JOIN {executions} e"
    " ON e.instance_id = h.instance_id AND e.execution_id = h.execution_id"
)
_COPY_BATCH: Final = (
    "WITH batch AS (" + _SOURCE + " WHERE (h.instance_id, h.execution_id, h.event_id)"
    " > (%s, %s, %s) ORDER BY h.instance_id, h.execution_id, h.event_id LIMIT %s),"
    " copied AS (INSERT INTO {new} (" + _COLUMNS + ", eventstore_shard)"
    " SELECT * FROM batch RETURNING 1)"
    " SELECT (SELECT count(*) FROM copied), b.instance_id, b.execution_id, b.event_id"
    " FROM batch b ORDER BY b.instance_id DESC, b.execution_id DESC, b.event_id DESC LIMIT 1"
)
_LAST_COPIED: Final = (
    "SELECT instance_id, execution_id, event_id FROM {new}"
    " ORDER BY instance_id DESC, execution_id DESC, event_id DESC LIMIT 1"
)
_LATE_ROWS: Final = (
    "INSERT INTO {new} (" + _COLUMNS + ", eventstore_shard) " + _SOURCE + " WHERE"
    " h.eventstore_position > %s AND NOT EXISTS (SELECT 1 FROM {new} n"
    " WHERE n.eventstore_position = h.eventstore_position)"
)
_FINGERPRINT: Final = (
    "SELECT count(*), COALESCE(sum(hashtextextended(instance_id || ':' || execution_id"
    " || ':' || event_id || ':' || event_type || ':' || event_data || ':'"
    " || COALESCE(created_at::text, '') || ':' || eventstore_position || ':'"
    " || eventstore_xid::text, 0)::numeric), 0) FROM {table}"
)
_SAME_ROW: Final = (
    "h.eventstore_position = n.eventstore_position AND h.instance_id = n.instance_id"
    " AND h.execution_id = n.execution_id AND h.event_id = n.event_id"
    " AND h.event_type = n.event_type AND h.event_data = n.event_data"
    " AND h.created_at IS NOT DISTINCT FROM n.created_at AND h.eventstore_xid = n.eventstore_xid"
)
_RECONCILE: Final = (
    "DELETE FROM {new} n WHERE NOT EXISTS (SELECT 1 FROM {old} h WHERE " + _SAME_ROW + ")",
    "INSERT INTO {new} (" + _COLUMNS + ", eventstore_shard) " + _SOURCE + " WHERE NOT EXISTS"
    " (SELECT 1 FROM {new} n WHERE n.eventstore_position = h.eventstore_position)",
)
_RESHARD: Final = (
    "UPDATE {new} n SET eventstore_shard = COALESCE(e.shard, 'root') FROM {new} x"
    " LEFT JOIN {executions} e ON e.instance_id = x.instance_id"
    " AND e.execution_id = x.execution_id WHERE n.eventstore_position = x.eventstore_position"
    " AND n.eventstore_shard = x.eventstore_shard"
    " AND n.eventstore_shard <> COALESCE(e.shard, 'root')"
)
_SWAP: Final = (
    "LOCK TABLE {old} IN ACCESS EXCLUSIVE MODE",
    "SELECT setval(pg_get_serial_sequence(%(new)s, 'eventstore_position'), GREATEST("
    " (SELECT COALESCE(max(eventstore_position), 0) FROM {old}),"
    " (SELECT COALESCE(max(eventstore_position), 0) FROM {new}),"
    " %(old_last)s, 1))",
    "DROP TABLE {old}",
    "ALTER TABLE {new} RENAME TO {table_name}",
    "ALTER TABLE {old} RENAME CONSTRAINT {new_position_key} TO {position_key}",
    "ALTER TABLE {old} RENAME CONSTRAINT {new_pkey} TO {pkey}",
    "ALTER INDEX {new_feed_key} RENAME TO {feed_key}",
    "COMMENT ON TABLE {old} IS NULL",
)

Advance = Callable[[int], object]
_MARK: Final = "eventstore high-water "


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _Conversion:
    def __init__(self, con: psycopg.Connection[Any], schema: str, description: str) -> None:
        self.con = con
        self.schema = schema
        self.description = description
        ident = sql.Identifier
        self.names: dict[str, sql.Composable] = {
            "old": ident(schema, TABLE),
            "new": ident(schema, NEW_TABLE),
            "table": ident(schema, NEW_TABLE),
            "executions": ident(schema, "eventstore_executions"),
            "position_key": ident(f"eventstore_{TABLE}_position_key"),
            "new_position_key": ident(f"eventstore_{NEW_TABLE}_position_key"),
            "feed_key": ident(f"eventstore_{TABLE}_feed_key"),
            "new_feed_key": ident(schema, f"eventstore_{NEW_TABLE}_feed_key"),
            "new_feed_key_name": ident(f"eventstore_{NEW_TABLE}_feed_key"),
            "pkey": ident(f"{TABLE}_pkey"),
            "new_pkey": ident(f"{NEW_TABLE}_pkey"),
            "table_name": ident(TABLE),
        }
        self.partitions = ShardPartitions(schema, lambda: con, description, table=NEW_TABLE)

    def run(self, template: str, args: Any = None) -> Any:
        return self.con.execute(sql.SQL(template).format(**self.names), args)

    def one(self, template: str, args: Any = None) -> Any:
        row = self.run(template, args).fetchone()
        return row[0] if row else None

    def exists(self, name: str) -> bool:
        qualified = sql.Identifier(self.schema, name).as_string(self.con)
        row = self.con.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified,)).fetchone()
        return bool(row and row[0])

    def create(self) -> None:
        """Step 1, once: the partitioned table and its high-water mark."""
        with self.con.transaction():
            self.run(PARTITIONED_DDL.replace("{position_key}", "{new_position_key}"))
            self.run(FEED_INDEX.replace("{feed_key}", "{new_feed_key_name}"))
            mark = int(self.one("SELECT COALESCE(max(eventstore_position), 0) FROM {old}"))
            self.run("COMMENT ON TABLE {new} IS " + _literal(f"{_MARK}{mark}"))

    def high_water(self) -> int:
        qualified = sql.Identifier(self.schema, NEW_TABLE).as_string(self.con)
        comment = str(
            self.one("SELECT obj_description(to_regclass(%s), 'pg_class')", (qualified,)) or ""
        )
        mark = comment[len(_MARK) :].strip() if comment.startswith(_MARK) else ""
        if not mark.isdigit():
            raise StoreError(
                f"{self.description}: table {self.schema}.{NEW_TABLE} exists but was not made"
                " by a conversion (no high-water mark); drop it or rename it first"
            )
        return int(mark)

    def make_partitions(self) -> None:
        shards = [ROOT] + [
            str(r[0]) for r in self.run("SELECT DISTINCT shard FROM {executions}").fetchall()
        ]
        for shard in sorted(set(shards)):
            self.partitions.make(self.con, shard)

    def copy(self, batch: int, advance: Advance) -> None:
        """Step 2: key order from the last key copied, a batch per transaction."""
        last = self.run(_LAST_COPIED).fetchone() or ("", -1, -1)
        while True:
            with self.con.transaction():
                row = self.run(_COPY_BATCH, (*last, batch)).fetchone()
            count = int(row[0]) if row else 0
            if not count:
                return
            last = (row[1], int(row[2]), int(row[3]))
            advance(count)

    def reconcile(self, mark: int) -> None:
        """Step 3: rows written between runs, then the comparison."""
        with self.con.transaction():
            self.run(_LATE_ROWS, (mark,))
        if self._same():
            return
        with self.con.transaction():
            for statement in _RECONCILE:
                self.run(statement)
        if not self._same():
            raise StoreError(
                f"{self.description}: the partitioned copy still differs from {TABLE} after"
                " reconciling; nothing was swapped (is another program writing?)"
            )

    def _same(self) -> bool:
        old = self.run(_FINGERPRINT.replace("{table}", "{old}")).fetchone()
        new = self.run(_FINGERPRINT.replace("{table}", "{new}")).fetchone()
        return tuple(old) == tuple(new)

    def reshard_and_swap(self) -> None:
        """Steps 4 and 5."""
        self.make_partitions()
        with self.con.transaction():
            self.run(_RESHARD)
        new = sql.Identifier(self.schema, NEW_TABLE).as_string(self.con)
        old = sql.Identifier(self.schema, TABLE).as_string(self.con)
        sequence = self.one("SELECT pg_get_serial_sequence(%s, 'eventstore_position')", (old,))
        with self.con.transaction():
            # The sequence's value itself, not only the highest row: a
            # position drawn by a rolled-back append is never handed out twice.
            escaped = str(sequence or "").replace("{", "{{").replace("}", "}}")
            old_last = int(self.one("SELECT last_value FROM " + escaped)) if sequence else 0
            for statement in _SWAP:
                args = {"new": new, "old_last": old_last} if "%(" in statement else None
                self.run(statement, args)


def convert_to_partitioned(
    con: psycopg.Connection[Any],
    schema: str,
    description: str,
    *,
    batch: int,
    start: Callable[[str, int | None], Advance],
) -> int:
    """Convert the table (module docstring) on `con` (autocommit, its own);
    the rows the converted table holds, or -1 when it is partitioned already."""
    job = _Conversion(con, schema, description)
    try:
        con.execute("SELECT pg_advisory_lock(%s)", (lock_key(schema),))
        try:
            # Asked again under the table's key: the store's own answer is
            # from its open, and another process may have converted since.
            if is_partitioned(con, schema):
                return -1
            if not job.exists(NEW_TABLE):
                job.create()
            mark = job.high_water()
            job.make_partitions()
            total = int(job.one("SELECT count(*) FROM {old}"))
            advance = start("copy", total)
            advance(int(job.one("SELECT count(*) FROM {new}")))
            job.copy(batch, advance)
            job.reconcile(mark)
            rows = int(job.one("SELECT count(*) FROM {new}"))
            job.reshard_and_swap()
            return rows
        finally:
            with contextlib.suppress(psycopg.Error):
                con.execute("SELECT pg_advisory_unlock(%s)", (lock_key(schema),))
    except DRIVER_ERRORS as exc:
        raise translate(exc, "converting the history table failed") from None
