"""An append in one call: the server-side function `eventstore_append_v1`.

Why a function
--------------

The plain route of an append is four round trips (locks and the last
event; the INSERT; the catalog's row; COMMIT and NOTIFY), each a wait on the
network and a turn of the client's and the server's CPU. The common append,
a batch that continues its execution exactly where the caller says it ends,
needs no answer from the database before it writes: whether it may write
is a comparison the server can make itself. So the store sends it as one
statement on an autocommit connection, its values bound as server-side
parameters (never written into the text),

    SELECT "<schema>".eventstore_append_v1($1, ..., $17)

which is its own transaction, and then `NOTIFY <channel>`, after that
commit. The function, in the call's transaction:

1. takes the table's advisory key shared and the execution's key
   exclusively (`locks.py`), the same keys and order as every other write;
2. reads the execution's last event, **in a statement of its own**. Under
   READ COMMITTED a PL/pgSQL function's statements each take a fresh
   snapshot (the function is VOLATILE), so this read sees every append that
   committed before the lock was granted, exactly as the plain route's read
   does. One SQL statement that took the lock and read in CTEs could not:
   its one snapshot is taken before it waits for the lock, and it would
   check against a history that a writer it waited for has since extended;
3. declines, writing nothing, unless the stored last event is the one the
   batch follows (`after`: the caller's expected id, or the batch's first id
   minus one) and its type lets the batch pass the history rules without a
   walk (not terminal, not an unrecorded type, and of the kinds `wanted`
   names when a completion of the batch names it; `store/rules.py`
   `clearing_condition` says which);
4. declines too when the store keeps the execution catalog and a continued
   execution's row does not end at `after` (it lags: the plain route
   recomputes it);
5. inserts the batch (ids `after + 1 ...`, types and data each one text
   joined by the record separator U+001E, which valid JSON never holds
   unescaped; created_at now(), the position and transaction id
   from the columns' defaults, drawn together as on the plain route), then
   moves the catalog row (inserted for a new execution, else updated).

It returns how many rows it inserted: the batch's length, or 0 when it
declined. Declining costs one more round trip, after which the store runs
the plain route, which gives the exact answer: the idempotent retry, the
refusal and its error, a lagging catalog row recomputed, the rule walk.
Nothing the contract says is decided here that the plain route would decide
otherwise; the function only says "yes, exactly as the plain route would"
or "ask the plain route".

The NOTIFY follows the commit, as on the plain route (`Queries._compose_locks`
says why): two round trips where raw psycopg's BEGIN, INSERT, COMMIT take
three, and neither waits for the other's flush.

The function is created with the table (and on the first writable open of
a table made by an earlier version), under the table's key held
exclusively, and never in a schema whose history table duroxide created.
Its name carries a version: a change of its signature or meaning gets a
new name, so processes of two versions never call each other's.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from ...errors import StoreBusyError, StoreError
from ...store.row_types import OneFlightAppend
from .locks import execution_key
from .queries import TABLE
from .target import mask
from .translate import DRIVER_ERRORS, translate

__all__ = ["FUNCTION", "function_of", "OneFlight", "OneFlightAppends", "ensure_function"]

FUNCTION: Final = "eventstore_append_v1"
"""Its name; a change of its signature or meaning takes the next version."""

_DDL: Final = """
CREATE OR REPLACE FUNCTION {function}(
    table_key bigint, execution_key bigint, p_instance text, p_execution bigint,
    after bigint, wanted text, refused text, types text, datas text,
    keep_catalog boolean, c_name text, c_version text, c_status text,
    c_started bigint, c_ended bigint, c_bytes bigint, c_shard text
) RETURNS integer LANGUAGE plpgsql VOLATILE AS $body$
DECLARE
    last_id bigint;
    last_type text;
    n integer;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(table_key), pg_advisory_xact_lock(execution_key);
    -- A statement of its own: a fresh snapshot, taken with the locks held.
    SELECT h.event_id, h.event_type INTO last_id, last_type FROM {history} h
        WHERE h.instance_id = p_instance AND h.execution_id = p_execution
        ORDER BY h.event_id DESC LIMIT 1;
    IF COALESCE(last_id, 0) <> after THEN
        RETURN 0;
    END IF;
    IF after > 0 AND (last_type = ANY(string_to_array(refused, chr(30)))
            OR (wanted IS NOT NULL
                AND NOT last_type = ANY(string_to_array(wanted, chr(30))))) THEN
        RETURN 0;
    END IF;
    n := array_length(string_to_array(types, chr(30)), 1);
    -- A continued execution's catalog row must still end at `after` (else it
    -- lags, and the plain route recomputes it). Checked before anything is
    -- written, moved after the rows: the rows' transaction id and positions
    -- are drawn by the same INSERT, as on the plain route.
    -- Nested: a statement is planned when it first runs, and a store that
    -- keeps no catalog may have no catalog table.
    IF keep_catalog AND after > 0 THEN
        IF NOT EXISTS (SELECT 1 FROM {executions} e
                WHERE e.instance_id = p_instance AND e.execution_id = p_execution
                AND e.last_event_id = after) THEN
            RETURN 0;
        END IF;
    END IF;
    INSERT INTO {history} (instance_id, execution_id, event_id, event_type, event_data,
        created_at)
    SELECT p_instance, p_execution, after + r.n, r.t, r.d, now()
    FROM ROWS FROM (unnest(string_to_array(types, chr(30))),
        unnest(string_to_array(datas, chr(30)))) WITH ORDINALITY AS r(t, d, n);
    IF keep_catalog AND after = 0 THEN
        INSERT INTO {executions} (instance_id, execution_id, name, version, status,
            started_ms, ended_ms, last_event_id, event_count, bytes, shard)
        VALUES (p_instance, p_execution, c_name, c_version, c_status, c_started, c_ended,
            n, n, c_bytes, c_shard)
        ON CONFLICT (instance_id, execution_id) DO UPDATE SET name = EXCLUDED.name,
            version = EXCLUDED.version, status = EXCLUDED.status,
            started_ms = EXCLUDED.started_ms, ended_ms = EXCLUDED.ended_ms,
            last_event_id = EXCLUDED.last_event_id, event_count = EXCLUDED.event_count,
            bytes = EXCLUDED.bytes, shard = EXCLUDED.shard;
    ELSIF keep_catalog THEN
        -- Under the execution's key no other append moves this row, and every
        -- other writer of the catalog holds the table's key exclusively.
        UPDATE {executions} SET status = c_status, ended_ms = c_ended,
            last_event_id = after + n, event_count = event_count + n, bytes = bytes + c_bytes
        WHERE instance_id = p_instance AND execution_id = p_execution;
    END IF;
    RETURN n;
END
$body$
"""

_ARGUMENTS: Final = (
    "bigint, bigint, text, bigint, bigint, text, text, text, text, boolean,"
    " text, text, text, bigint, bigint, bigint, text"
)
"""The function's signature (its arguments' types, in order)."""


def function_of(schema: str) -> sql.Identifier:
    """The function's qualified name in `schema`."""
    return sql.Identifier(schema, FUNCTION)


def ensure_function(
    con: psycopg.Connection[Any], schema: str, table_key: int, *, usable: bool
) -> bool:
    """Whether appends can go in one flight on this table: the function is
    there, or was created now (under the table's key held exclusively, so
    concurrent first opens do not race on the system catalog). `usable`:
    the store is writable and the table one of ours with transaction ids,
    not partitioned (partitioned appends name their shards, partitions.py).
    Without the privilege to create it, or on a hot standby, appends take
    the plain route."""
    if not usable:
        return False
    exists = b"SELECT to_regprocedure(%s) IS NOT NULL"
    signature = function_of(schema).as_string(None) + f"({_ARGUMENTS})"
    row = con.execute(exists, (signature,)).fetchone()
    if row is not None and row[0]:
        return True
    try:
        with con.transaction():
            if con.execute("SELECT pg_is_in_recovery()").fetchone() == (True,):
                return False
            con.execute("SELECT pg_advisory_xact_lock(%s)", (table_key,))
            con.execute(
                sql.SQL(_DDL).format(
                    function=function_of(schema),
                    history=sql.Identifier(schema, TABLE),
                    executions=sql.Identifier(schema, "eventstore_executions"),
                )
            )
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


_Value = int | str | bool | None


class OneFlight:
    """The statements of one append in one flight, for one table: the call,
    its seventeen values bound as server-side parameters (never written into
    the text: tests/reliability/test_parameterised_sql.py), and the
    notification that follows its commit."""

    __slots__ = ("_schema", "_table_key", "call", "notify")

    def __init__(self, schema: str, table_key: int, channel: str) -> None:
        arguments = ", ".join(f"%s::{name.strip()}" for name in _ARGUMENTS.split(","))
        self.call = b"SELECT " + function_of(schema).as_bytes(None) + f"({arguments})".encode()
        self.notify = b"NOTIFY " + channel.encode()
        self._schema = schema
        self._table_key = table_key

    def values(self, append: OneFlightAppend) -> tuple[_Value, ...] | None:
        """The call's values, or None when the batch cannot travel this way
        (the separator inside a type or a row: the plain route binds them)."""
        new = append.new
        data = b"\x1e".join(new.event_data)
        types = "\x1e".join(new.event_types)
        count = len(new.event_types)
        if data.count(b"\x1e") != count - 1 or types.count("\x1e") != count - 1:
            return None
        row = append.catalog
        catalog: tuple[_Value, ...] = (
            (False, None, None, None, None, None, 0, None)
            if row is None
            else (True, row[2], row[3], row[4], row[5], row[6], row[9], row[10])
        )
        wanted = append.wanted
        return (
            self._table_key,
            execution_key(self._schema, new.instance_id, new.execution_id),
            new.instance_id,
            new.execution_id,
            append.after,
            None if wanted is None else "\x1e".join(sorted(wanted)),
            _joined_set(append.refused),
            types,
            data.decode(),
            *catalog,
        )


_JOINED_SETS: dict[frozenset[str], str] = {}


def _joined_set(types: frozenset[str]) -> str:
    """A set of types joined by U+001E (the refused set is one constant: joined once)."""
    text = _JOINED_SETS.get(types)
    if text is None:
        text = _JOINED_SETS[types] = "\x1e".join(sorted(types))
    return text


class OneFlightAppends:
    """PostgresBackend's `append_in_one_flight` (store.protocol.AppendsInOneFlight)."""

    one_flight: bool
    description: str
    _closed: bool
    _flight: OneFlight
    _local: threading.local
    _pool: ConnectionPool[psycopg.Connection[Any]]

    def _checkout(self) -> psycopg.Connection[Any]:
        """A connection from the pool (give it back with `_pool.putconn`)."""
        if self._closed:
            raise StoreError(f"{self.description} is closed")
        try:
            return self._pool.getconn()
        except PoolTimeout as exc:
            raise StoreBusyError(
                f"{self.description}: no connection available ({mask(str(exc))})"
            ) from None
        except psycopg.Error as exc:  # the pool is closed, or cannot connect
            raise translate(exc, f"cannot connect to {self.description}") from None

    def append_in_one_flight(self, append: OneFlightAppend) -> bool:
        if not self.one_flight or getattr(self._local, "connection", None) is not None:
            return False  # inside transaction(): a savepoint, the plain route
        con = self._checkout()
        try:
            with _rolled_back_on_error(con):
                values = self._flight.values(append)
                if values is None:
                    return False
                # The call alone is the transaction (autocommit: it commits
                # when it returns, its keys released); the notification
                # follows the commit, as on the plain route.
                row = con.execute(self._flight.call, values).fetchone()
                con.execute(self._flight.notify)
        finally:
            self._pool.putconn(con)  # a broken connection is discarded by the pool
        return bool(row is not None and row[0])


@contextlib.contextmanager
def _rolled_back_on_error(con: psycopg.Connection[Any]) -> Iterator[None]:
    """A statement that failed left the transaction aborted (the rest of the
    message skipped): roll it back, then raise the project's error."""
    try:
        yield
    except DRIVER_ERRORS as exc:
        with contextlib.suppress(psycopg.Error):
            con.execute(b"ROLLBACK")
        raise translate(exc, "write failed") from None
