"""The shard manifest, purges and migration pruning on PostgreSQL (eventstore.lifecycle).

The same three tables as on SQLite (`eventstore_shards`,
`eventstore_shard_archives`, `eventstore_archived_executions`), in the
store's schema, created on the first lifecycle write. Writes run in plain
transactions, without the table's write lock (which exists to keep feed
positions gap-free; deleting draws none): appenders never wait for
retention, and lifecycle jobs are serialised by the run lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

import psycopg
from psycopg import sql

from ...errors import ReadOnlyError, StoreError
from ...store.lifecycle_protocol import (
    ArchivedExecution,
    CatalogCensusRow,
    ExecutionKey,
    PurgeKey,
    ShardArchiveRow,
    ShardRow,
)
from ...store.protocol import RawRow
from .convert import convert_to_partitioned
from .locks import execution_key, lock_key
from .partitions import ShardPartitions
from .queries import CREATED_AT, TABLE
from .translate import DRIVER_ERRORS, translate

__all__ = ["LIFECYCLE_TABLES", "PostgresManifest", "PostgresManifestWriter"]

LIFECYCLE_TABLES: Final = (
    "eventstore_shards",
    "eventstore_shard_archives",
    "eventstore_archived_executions",
)

_DDL: Final = (
    "CREATE TABLE IF NOT EXISTS {shards} (shard TEXT PRIMARY KEY,"
    " state TEXT NOT NULL, executions BIGINT NOT NULL, running BIGINT NOT NULL,"
    " rows BIGINT NOT NULL, bytes BIGINT NOT NULL, earliest_ms BIGINT, latest_ms BIGINT,"
    " generations TEXT NOT NULL, archive_location TEXT, archive_rows BIGINT NOT NULL,"
    " archive_checksum TEXT, updated_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {archives} (archive_id TEXT PRIMARY KEY,"
    " shard TEXT NOT NULL, state TEXT NOT NULL, location TEXT NOT NULL,"
    " rows BIGINT NOT NULL, executions BIGINT NOT NULL, checksum TEXT NOT NULL,"
    " created_at TEXT NOT NULL)",
    'CREATE TABLE IF NOT EXISTS {index} (instance_id TEXT COLLATE "C" NOT NULL,'
    " execution_id BIGINT NOT NULL, archive_id TEXT NOT NULL, shard TEXT NOT NULL,"
    " rows BIGINT NOT NULL, member_offset BIGINT NOT NULL, last_position BIGINT,"
    " PRIMARY KEY (instance_id, execution_id))",
    # An index made before archived positions were recorded gains the column.
    "ALTER TABLE {index} ADD COLUMN IF NOT EXISTS last_position BIGINT",
    "CREATE INDEX IF NOT EXISTS {by_archive} ON {index} (archive_id, instance_id, execution_id)",
)
_SHARD_COLUMNS: Final = (
    "shard, state, executions, running, rows, bytes, earliest_ms, latest_ms, generations,"
    " archive_location, archive_rows, archive_checksum, updated_at"
)
_ARCHIVE_COLUMNS: Final = (
    "archive_id, shard, state, location, rows, executions, checksum, created_at"
)
_INDEX_COLUMNS: Final = (
    "instance_id, execution_id, archive_id, shard, rows, member_offset, last_position"
)


_SNAPSHOT: Final = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"


class ManifestQueries:
    """The manifest's statements for one schema (identifiers quoted)."""

    def __init__(self, schema: str, positioned: bool, partitioned: bool = False) -> None:
        self.names = {
            "shards": sql.Identifier(schema, "eventstore_shards"),
            "archives": sql.Identifier(schema, "eventstore_shard_archives"),
            "index": sql.Identifier(schema, "eventstore_archived_executions"),
            "by_archive": sql.Identifier("eventstore_archived_by_archive"),
            "history": sql.Identifier(schema, TABLE),
            "executions": sql.Identifier(schema, "eventstore_executions"),
            "archive": sql.Identifier(schema, "eventstore_archive"),
            "log": sql.Identifier(schema, "eventstore_migration_log"),
        }
        self.shards_table = f'"{schema}".eventstore_shards'
        self.ddl = [self._text(ddl) for ddl in _DDL]
        self._compose_manifest()
        self._compose_rows(positioned, partitioned)
        self._compose_catalog_census(partitioned)

    def _compose_catalog_census(self, partitioned: bool) -> None:
        # The catalog's page for the lifecycle's census: each execution's
        # fields and the first bytes of its first and last rows. On a table
        # partitioned by shard an execution's rows are in the partition of
        # its catalog shard, or in root (rows another program wrote before
        # a rebase; partitions.py): naming both lets PostgreSQL prune every
        # other partition at execution, instead of probing each day's index
        # twice per execution (measured: a 2,000-row page of a 10-day table
        # took 261 ms against 60 ms).
        shard = " AND h.eventstore_shard IN (c.shard, 'root')" if partitioned else ""
        t = self._text
        self.catalog_census = t(
            "SELECT c.instance_id, c.execution_id, c.status, c.started_ms, c.event_count,"
            " c.bytes, c.shard,"
            " (SELECT substr(h.event_data, 1, 3) FROM {history} h WHERE"
            "  h.instance_id = c.instance_id AND h.execution_id = c.execution_id"
            + shard
            + "  ORDER BY h.event_id LIMIT 1),"
            " (SELECT substr(h.event_data, 1, 3) FROM {history} h WHERE"
            "  h.instance_id = c.instance_id AND h.execution_id = c.execution_id"
            + shard
            + "  ORDER BY h.event_id DESC LIMIT 1)"
            " FROM {executions} c WHERE (c.instance_id, c.execution_id) > (%s, %s)"
            " ORDER BY c.instance_id, c.execution_id LIMIT %s"
        )

    def _compose_manifest(self) -> None:
        t = self._text
        self.save_shard = t(
            "INSERT INTO {shards} ("
            + _SHARD_COLUMNS
            + ") VALUES ("
            + ", ".join(["%s"] * 13)
            + ") ON CONFLICT (shard) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in _SHARD_COLUMNS.split(", ")[1:])
        )
        self.save_archive = t(
            "INSERT INTO {archives} ("
            + _ARCHIVE_COLUMNS
            + ") VALUES ("
            + ", ".join(["%s"] * 8)
            + ") ON CONFLICT (archive_id) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in _ARCHIVE_COLUMNS.split(", ")[1:])
        )
        self.drop_shard = t("DELETE FROM {shards} WHERE shard = %s")
        self.in_root = t(
            "SELECT DISTINCT h.instance_id, h.execution_id FROM {history} h"
            " JOIN unnest(%s::text[], %s::bigint[]) AS k(i, e)"
            " ON h.instance_id = k.i AND h.execution_id = k.e WHERE h.eventstore_shard = 'root'"
        )
        self.move_to_shard = t(
            "UPDATE {history} SET eventstore_shard = %s WHERE eventstore_shard = 'root'"
            " AND instance_id = %s AND execution_id = %s"
        )
        self.forget_index = t("DELETE FROM {index} WHERE archive_id = %s")
        self.forget_archive = t("DELETE FROM {archives} WHERE archive_id = %s")
        self.index = t(
            "INSERT INTO {index} (" + _INDEX_COLUMNS + ") VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (instance_id, execution_id) DO UPDATE SET"
            " archive_id = EXCLUDED.archive_id, shard = EXCLUDED.shard, rows = EXCLUDED.rows,"
            " member_offset = EXCLUDED.member_offset, last_position = EXCLUDED.last_position"
        )
        self.manifest = t("SELECT " + _SHARD_COLUMNS + " FROM {shards} ORDER BY shard")
        self.archives = t(
            "SELECT " + _ARCHIVE_COLUMNS + " FROM {archives} ORDER BY shard, created_at, archive_id"
        )
        self.archived = t(
            "SELECT "
            + _INDEX_COLUMNS
            + " FROM {index} WHERE instance_id = %s AND execution_id = %s"
        )
        self.archived_instances = t("SELECT DISTINCT instance_id FROM {index} ORDER BY instance_id")
        self.archived_of = t(
            "SELECT execution_id FROM {index} WHERE instance_id = %s ORDER BY execution_id"
        )
        self.archived_in = t(
            "SELECT " + _INDEX_COLUMNS + " FROM {index} WHERE archive_id = %s"
            " AND (instance_id, execution_id) > (%s, %s) ORDER BY instance_id, execution_id"
            " LIMIT %s"
        )

    def _compose_rows(self, positioned: bool, partitioned: bool) -> None:
        t = self._text
        created = CREATED_AT.replace("{", "{{").replace("}", "}}")
        rows = (
            "SELECT "
            + ("eventstore_position" if positioned else "0")
            + ", instance_id, execution_id, event_id, event_type, event_data, "
            + created
            + " FROM {history} WHERE (instance_id, execution_id) IN"
            " (SELECT * FROM unnest(%s::text[], %s::bigint[]))"
        )
        order = " ORDER BY instance_id, execution_id, event_id"
        self.executions_rows = t(rows + order)
        # Executions of one catalog shard on a table partitioned by shard:
        # their rows are in that day's partition or root (partitions.py), so
        # the read plans two partitions, not every day's (retention's archive).
        self.shard_rows = (
            t(rows + " AND eventstore_shard IN (%s, 'root')" + order) if partitioned else None
        )
        # An execution goes only while it holds exactly the rows its archive
        # holds: a row that arrived after archiving keeps the whole execution.
        # Only while the execution holds exactly its archived rows, its last
        # row at the archived position (an id reused after a purge, with as
        # many rows, stays: see the SQLite backend's statement).
        last = (
            " AND (k.p IS NULL OR (SELECT max(x.eventstore_position) FROM {history} x"
            " WHERE x.instance_id = k.i AND x.execution_id = k.e) = k.p)"
            if positioned
            else ""
        )
        self.purge = t(
            "DELETE FROM {history} h USING (SELECT k.i, k.e FROM"
            " unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[]) AS k(i, e, n, p)"
            " WHERE (SELECT count(*) FROM {history} x"
            " WHERE x.instance_id = k.i AND x.execution_id = k.e) = k.n" + last + ") AS ok"
            " WHERE h.instance_id = ok.i AND h.execution_id = ok.e"
            " RETURNING h.instance_id, h.execution_id"
        )
        self.prune = [
            t(
                "DELETE FROM " + table + " WHERE ctid IN"
                " (SELECT ctid FROM " + table + " WHERE run_id = %s LIMIT %s)"
            )
            for table in ("{archive}", "{log}")
        ]
        self.vacuum = [t("VACUUM {archive}"), t("VACUUM {log}")]

    def _text(self, template: str) -> bytes:
        return sql.SQL(template).format(**self.names).as_bytes(None)


class PostgresManifestWriter:
    """The manifest's writes inside one plain transaction (see the module)."""

    __slots__ = ("_cur", "_q")

    def __init__(self, cur: psycopg.Cursor[Any], queries: ManifestQueries) -> None:
        self._cur = cur
        self._q = queries

    def ensure_lifecycle_tables(self) -> None:
        for ddl in self._q.ddl:
            self._cur.execute(ddl)

    def save_shard(self, row: ShardRow) -> None:
        self._cur.execute(self._q.save_shard, row)

    def drop_shard(self, shard: str) -> None:
        self._cur.execute(self._q.drop_shard, (shard,))

    def save_archive(self, row: ShardArchiveRow) -> None:
        self._cur.execute(self._q.save_archive, row)

    def forget_archive(self, archive_id: str) -> None:
        self._cur.execute(self._q.forget_index, (archive_id,))
        self._cur.execute(self._q.forget_archive, (archive_id,))

    def index_archived(self, rows: Sequence[ArchivedExecution]) -> None:
        if rows:
            self._cur.executemany(self._q.index, rows)


def _columns(keys: Sequence[ExecutionKey]) -> tuple[list[str], list[int]]:
    return [k[0] for k in keys], [k[1] for k in keys]


class PostgresManifest:
    """PostgresBackend's manifest reads, purges and pruning (a mixin)."""

    readonly: bool
    description: str
    _manifest_q: ManifestQueries
    _q: Any  # the backend's Queries (`.catalog`: the execution catalog's)
    partitions: ShardPartitions | None
    schema: str
    stable_positions: bool

    if TYPE_CHECKING:

        def _all(self, query: bytes, args: Sequence[object] = ()) -> list[tuple[Any, ...]]: ...

        def catalog_kept(self) -> bool: ...

        def _connection(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]: ...

        def _connect(self) -> psycopg.Connection[Any]: ...

    @contextlib.contextmanager
    def _plain_transaction(self, what: str) -> Iterator[psycopg.Cursor[Any]]:
        """A transaction without the table's write lock: lifecycle writes draw no
        feed positions (the lock's reason), and jobs are serialised by the run
        lock, so appenders never wait for them."""
        if self.readonly:
            raise ReadOnlyError(f"{self.description} was opened read-only")
        with self._connection() as con:
            try:
                with con.transaction(), con.cursor() as cur:
                    yield cur
            except DRIVER_ERRORS as exc:
                raise translate(exc, what) from None

    @contextlib.contextmanager
    def manifest_writing(self) -> Iterator[PostgresManifestWriter]:
        with self._plain_transaction("the shard manifest write failed") as cur:
            yield PostgresManifestWriter(cur, self._manifest_q)

    def _manifest_rows(self, query: bytes, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        exists = self._all(b"SELECT to_regclass(%s) IS NOT NULL", (self._manifest_q.shards_table,))
        return self._all(query, args) if exists[0][0] else []

    def shard_manifest(self) -> list[ShardRow]:
        return [ShardRow(*r) for r in self._manifest_rows(self._manifest_q.manifest)]

    def shard_archives(self) -> list[ShardArchiveRow]:
        return [ShardArchiveRow(*r) for r in self._manifest_rows(self._manifest_q.archives)]

    def archived_execution(self, instance_id: str, execution_id: int) -> ArchivedExecution | None:
        rows = self._manifest_rows(self._manifest_q.archived, (instance_id, execution_id))
        return ArchivedExecution(*rows[0]) if rows else None

    def archived_in(
        self, archive_id: str, after: ExecutionKey, limit: int
    ) -> list[ArchivedExecution]:
        rows = self._manifest_rows(self._manifest_q.archived_in, (archive_id, *after, limit))
        return [ArchivedExecution(*r) for r in rows]

    def executions_rows(
        self, keys: Sequence[ExecutionKey], shard: str | None = None
    ) -> list[RawRow]:
        if not keys:
            return []
        q = self._manifest_q
        if shard is not None and q.shard_rows is not None:
            args: tuple[object, ...] = (*_columns(keys), shard)
            return [RawRow(*r) for r in self._all(q.shard_rows, args)]
        return [RawRow(*r) for r in self._all(q.executions_rows, _columns(keys))]

    def catalog_census_pages(self, limit: int) -> Iterator[list[CatalogCensusRow]]:
        """The census's pages in one REPEATABLE READ, READ ONLY transaction on
        one connection: the catalog as it was at the first page, so that
        appenders creating executions meanwhile (keys after the cursor)
        cannot keep the census going. Read-only, it draws no transaction id:
        appends, the feed's horizon and a partition's DETACH CONCURRENTLY
        (run after the census) do not wait for it."""
        if not self.catalog_kept():
            return
        with self._connection() as con:
            try:
                # Inside a caller's open transaction (a pinned connection) its
                # snapshot rules; else this transaction's first statement.
                fresh = con.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
                with con.transaction():
                    if fresh:
                        con.execute(_SNAPSHOT)
                    query = self._manifest_q.catalog_census
                    after: ExecutionKey = ("", -1)
                    while rows := con.execute(query, (*after, limit)).fetchall():
                        yield [CatalogCensusRow(*r) for r in rows]
                        after = (str(rows[-1][0]), int(rows[-1][1]))
            except DRIVER_ERRORS as exc:
                raise translate(exc, "the catalog census failed") from None

    def catalog_census_page(self, after: ExecutionKey, limit: int) -> list[CatalogCensusRow]:
        if not self.catalog_kept():
            return []
        rows = self._all(self._manifest_q.catalog_census, (*after, limit))
        return [CatalogCensusRow(*r) for r in rows]

    def archived_instances(self) -> list[str]:
        return [str(r[0]) for r in self._manifest_rows(self._manifest_q.archived_instances)]

    def archived_executions_of(self, instance_id: str) -> list[int]:
        rows = self._manifest_rows(self._manifest_q.archived_of, (instance_id,))
        return [int(r[0]) for r in rows]

    def purge_executions(self, keys: Sequence[PurgeKey]) -> int:
        if not keys:
            return 0
        args = (
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            [k[3] for k in keys],
        )
        # No write lock (see _plain_transaction): an execution retention
        # deletes is terminal, so no append can add to it; the statement
        # deletes it only while it holds exactly its archived rows.
        with self._plain_transaction("purge failed") as cur:
            rows = cur.execute(self._manifest_q.purge, args).fetchall()
            gone = sorted({(str(r[0]), int(r[1])) for r in rows})
            # The execution catalog loses them in the same transaction.
            if gone and self.catalog_kept():
                cur.executemany(self._q.catalog.remove, gone)
            return len(rows)

    def prune_migration_run(self, run_id: str, limit: int) -> int:
        deleted = 0
        with self._plain_transaction("pruning the migration archive failed") as cur:
            for query in self._manifest_q.prune:
                deleted += int(cur.execute(query, (run_id, limit)).rowcount)
        return deleted

    def reclaim_space(self) -> None:
        # VACUUM cannot run inside a transaction: pool connections autocommit.
        with self._connection() as con:
            try:
                for query in self._manifest_q.vacuum:
                    con.execute(query)
            except DRIVER_ERRORS as exc:
                raise translate(exc, "cannot reclaim space (VACUUM)") from None

    # -- the shard partitions (partitions.py) ------------------------------------

    def partitioned_by_shard(self) -> bool:
        return self.partitions is not None

    def drop_shard_partition(self, shard: str) -> bool:
        if self.readonly:
            raise ReadOnlyError(f"{self.description} was opened read-only")
        return self.partitions is not None and self.partitions.drop_if_empty(shard)

    def drop_archived_partition(self, shard: str, archive_id: str, rows: int) -> int | None:
        if self.readonly:
            raise ReadOnlyError(f"{self.description} was opened read-only")
        if self.partitions is None:
            return None
        return self.partitions.drop_archived(shard, archive_id, rows)

    def convert_to_partitioned(
        self, batch: int, start: Callable[[str, int | None], Callable[[int], object]]
    ) -> int:
        """convert.py; refused on a table another program (duroxide) created:
        it has no positions to keep, and we never reshape another's table."""
        if self.readonly:
            raise ReadOnlyError(f"{self.description} was opened read-only")
        if not self.stable_positions:
            raise StoreError(
                f"{self.description}: its history table was created by another program"
                " (duroxide: no eventstore_position column); it is never converted"
            )
        if self.partitions is not None:
            return -1
        with contextlib.closing(self._connect()) as con:
            return convert_to_partitioned(
                con, self.schema, self.description, batch=batch, start=start
            )

    def move_to_shards(self, moves: Sequence[tuple[str, int, str]]) -> int:
        """Each execution under the keys an append takes (the table's shared,
        the execution's exclusively), so no append to it runs between reading
        its stored shard and inserting: an execution's rows never split.
        Updating the partition key moves the rows; their position and
        transaction id stay, so the feed does not change."""
        if self.partitions is None or not moves:
            return 0
        for shard in sorted({m[2] for m in moves}):
            self.partitions.ensure(shard)  # before the transaction reads the table
        moved = 0
        table = lock_key(self.schema)
        shard_of = {(m[0], m[1]): m[2] for m in moves}
        with self._plain_transaction("moving rows to their day partitions failed") as cur:
            # Only the executions that have rows in root (one probe per batch).
            in_root = cur.execute(
                self._manifest_q.in_root, ([m[0] for m in moves], [m[1] for m in moves])
            ).fetchall()
            for instance_id, execution_id in in_root:
                shard = shard_of[(instance_id, execution_id)]
                key = execution_key(self.schema, instance_id, execution_id)
                cur.execute(self._q.append_lock, (table, key))
                cur.execute(self._manifest_q.move_to_shard, (shard, instance_id, execution_id))
                moved += cur.rowcount
        return moved
