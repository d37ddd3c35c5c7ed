"""An append in one call: the server-side functions `eventstore_append_v1` (and `_sharded_v1`).

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
says why), as a transaction of its own that waits for no flush; the call and
the NOTIFY travel together in one flight (`flight_wire.py`): one round trip
where raw psycopg's BEGIN, INSERT, COMMIT take three.

On a table partitioned by day shard
-----------------------------------

The store's default table (partitions.py) takes the same route through its
own function, `eventstore_append_sharded_v1`: the arguments above and one
more, the shard the store derived for a batch that starts its execution
(`NewEvents.shard`, store/shard_key.py; never derived here; empty for a
continued execution). Every row of an execution must land in one partition,
and a read must not plan every partition, so the function differs in where
it looks and where it writes:

* it reads the catalog row first (the shard it names; a new execution must
  have none, a continued one's must end at `after`: the lagging check of
  step 4 made earlier, with the same outcome);
* the last-event read names the partitions the execution can be in, the
  catalog's shard (else the derived one) and root, as the plain route's
  does (`queries.last_event_in`); only when it knows neither (a store that
  keeps no catalog, continuing an execution) does it read every partition;
* the rows take the shard of the stored last row (a continued execution:
  where its rows are, root included), else the derived one.

No DEFAULT partition: an INSERT whose shard has no partition fails. The
client makes a new execution's partition before the call
(`ShardPartitions.ensure`, which remembers the partitions this process
saw, so the common call costs no round trip for it). When another process
(retention) has dropped a partition this one remembers, the INSERT fails
with PostgreSQL's "no partition" check violation; the call was its own
transaction, so nothing was written, and the client declines instead of
failing: it forgets the partition and the plain route, which makes it
again (`PostgresWriter.insert`), appends. The function holds no EXCEPTION
block for this, which would cost every call a subtransaction.

The functions (`append_function.py`) are created with the table (and on
the first writable open of a table made by an earlier version), under the
table's key held exclusively, each only on its shape of table, and never
in a schema whose history table duroxide created. Their names carry a
version: a change of a signature or meaning gets a new name, so processes
of two versions never call each other's, and both keep to the same locks
and checks as the plain route.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from ...errors import StoreBusyError, StoreError
from ...store.row_types import OneFlightAppend
from .append_function import (
    FUNCTION,
    SHARDED_FUNCTION,
    arguments_of,
    ensure_function,
    function_of,
)
from .flight_wire import FlightWire
from .locks import execution_key
from .partitions import ROOT, ShardPartitions
from .target import mask
from .translate import DRIVER_ERRORS, translate
from .writer import partition_missing

__all__ = [
    "FUNCTION",
    "SHARDED_FUNCTION",
    "OneFlight",
    "OneFlightAppends",
    "declined_if_partition_gone",
    "ensure_function",
    "function_of",
    "new_partition",
]

_Value = int | str | bool | None


class OneFlight:
    """The statements of one append in one flight, for one table: the call,
    its values (seventeen; eighteen on a partitioned table, the derived
    shard last) bound as server-side parameters (never written into the
    text: tests/reliability/test_parameterised_sql.py), and the
    notification that follows its commit."""

    __slots__ = ("_partitioned", "_schema", "_table_key", "call", "notify", "wire")

    def __init__(self, schema: str, table_key: int, channel: str, partitioned: bool) -> None:
        types = arguments_of(partitioned).split(",")
        arguments = ", ".join(f"%s::{name.strip()}" for name in types)
        function = function_of(schema, partitioned).as_bytes(None)
        self.call = b"SELECT " + function + f"({arguments})".encode()
        self.notify = b"NOTIFY " + channel.encode()
        self.wire = FlightWire(self.call, self.notify)
        """How the call and the notification travel (flight_wire.py)."""
        self._schema = schema
        self._table_key = table_key
        self._partitioned = partitioned

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
        values = (
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
        # The shard the store derived for a batch that starts its execution
        # (store/shard_key.py, never derived here); a continued execution's
        # is the stored one, which the function reads.
        return (*values, new.shard) if self._partitioned else values


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
    partitions: ShardPartitions | None

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
        values = self._flight.values(append)
        if values is None:
            return False
        shard = self._new_partition(append)
        con = self._checkout()
        written = None
        try:
            with (
                _rolled_back_on_error(con),
                declined_if_partition_gone(self.partitions, append, shard),
            ):
                # The call alone is its transaction (committed at the flight's
                # first Sync, its keys released); the notification follows in
                # the same flight as a transaction of its own (flight_wire.py).
                written = self._flight.wire.send(con, values)
        finally:
            self._pool.putconn(con)  # a broken or closed connection is discarded by the pool
        return bool(written)

    def _new_partition(self, append: OneFlightAppend) -> str | None:
        """The new execution's shard, its partition made (or known) before
        the call, as the plain route's insert does (`ShardPartitions.ensure`,
        which remembers the partitions it saw)."""
        shard = new_partition(self.partitions, append)
        if shard is not None and self.partitions is not None:
            self.partitions.ensure(shard)
        return shard


def new_partition(partitions: ShardPartitions | None, append: OneFlightAppend) -> str | None:
    """On a partitioned table, a new execution's shard: its partition must
    exist before the call. None: unpartitioned, or a continued execution,
    whose rows are in their partition already."""
    if partitions is None or append.after != 0:
        return None
    return append.new.shard or ROOT


@contextlib.contextmanager
def declined_if_partition_gone(
    partitions: ShardPartitions | None, append: OneFlightAppend, shard: str | None
) -> Iterator[None]:
    """The INSERT found no partition for its rows: another process
    (retention) dropped the one this process remembered. Nothing was written
    (the call is its own transaction), so the append is declined rather than
    failed: the partition is forgotten and the plain route, which makes it
    again (`PostgresWriter.insert`), gives the answer. No EXCEPTION block in
    the function for this: each would cost every call a subtransaction."""
    try:
        yield
    except psycopg.errors.CheckViolation as exc:
        if partitions is None or not partition_missing(exc, append.new, None):
            raise
        if shard is not None:
            partitions.forget(shard)


@contextlib.contextmanager
def _rolled_back_on_error(con: psycopg.Connection[Any]) -> Iterator[None]:
    """A statement that failed left the transaction aborted (the rest of the
    message skipped): roll it back, then raise the project's error."""
    try:
        yield
    except DRIVER_ERRORS as exc:
        if not con.closed and con.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                con.execute(b"ROLLBACK")
        raise translate(exc, "write failed") from None
