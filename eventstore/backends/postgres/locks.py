"""The advisory locks of a PostgreSQL write unit: which it holds, which it takes next.

Two kinds of key, both transaction-scoped (`pg_advisory_xact_lock*`, released
by PostgreSQL when the transaction, or the savepoint that took them, ends):

* the table's key (`lock_key(schema)`, the key every earlier version took for
  every write), taken *shared* by every append and *exclusively* by every
  other write unit: imports, schema evolution, the dual-write window's
  generation switch. So appends run side by side, while an import or a
  cutover still has the table to itself, exactly as before, and a process of
  an earlier version (which takes the key exclusively) excludes and is
  excluded by every append of this one;
* the execution's key (`execution_key`), taken exclusively by an append
  before it reads the execution's last event: writers of one execution take
  turns, so "read the last id, check, insert" (expected id, idempotent retry,
  refusals, the shadow rows of a dual-write window) is exact under any
  number of connections and machines.

Deadlocks: every unit takes the table's key first and then execution keys,
so two plain appends never wait on each other in a cycle (an append holds
one execution key). Only a `transaction()` that appends to several
executions can wait in a cycle with another such transaction appending to
the same executions in the other order; PostgreSQL detects it and fails one
append with DeadlockDetected, which `translate` makes StoreBusyError (the
runtime retries its transaction). A hash collision of two executions' keys
only makes their writers take turns.
"""

from __future__ import annotations

import hashlib

from .queries import TABLE, Queries

__all__ = ["WriteLocks", "execution_key", "lock_key"]

Statement = tuple[bytes, tuple[object, ...]]
"""Query text to send before the unit's next statement, and its arguments."""

_NOTHING: Statement = (b"", ())


def _key(name: str) -> int:
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_key(schema: str, purpose: str = "") -> int:
    """A stable signed 64-bit advisory-lock key for one table (and purpose)."""
    return _key(f"eventstore:{schema}.{TABLE}" + (f":{purpose}" if purpose else ""))


def execution_key(schema: str, instance_id: str, execution_id: int) -> int:
    """The advisory-lock key of one execution (its writers take turns on it)."""
    return _key(f"eventstore:{schema}.{TABLE}:{execution_id}:{instance_id}")


class WriteLocks:
    """The locks one write unit holds; each method gives the statement that
    takes what the unit's next statement needs (nothing when it holds it).

    The first statement also opens the unit (BEGIN, unless it is a savepoint
    inside `transaction()`), in the same simple query as the statement itself.
    """

    __slots__ = ("_begin", "_executions", "_q", "_schema", "_table", "exclusive")

    def __init__(self, queries: Queries, schema: str, *, begin: bool) -> None:
        self._q = queries
        self._schema = schema
        self._table = lock_key(schema)
        self._begin = b"BEGIN; " if begin else b""
        self._executions: set[int] | None = None
        self.exclusive = False

    @property
    def nested(self) -> bool:
        """A savepoint inside `transaction()`: the unit cannot start over."""
        return not self._begin

    def restart(self) -> None:
        """After a ROLLBACK of the unit's own transaction: nothing is held,
        the next statement opens it again."""
        self._executions = None
        self.exclusive = False

    @property
    def opened(self) -> bool:
        """Whether the opening was handed out (a failed one still asks for a ROLLBACK)."""
        return self.exclusive or self._executions is not None

    def for_execution(self, instance_id: str, execution_id: int) -> Statement:
        """Before an append reads its execution: the table shared and the execution's key."""
        key = execution_key(self._schema, instance_id, execution_id)
        if self._executions is None and not self.exclusive:
            self._executions = {key}
            return self._begin + self._q.append_lock + b"; ", (self._table, key)
        if self.exclusive or self._executions is None or key in self._executions:
            return _NOTHING
        self._executions.add(key)
        return self._q.execution_lock + b"; ", (key,)

    def for_table(self) -> Statement:
        """Before any other write: the table's key exclusively (an upgrade
        when this unit appended first: it then waits for the other appends)."""
        if self.exclusive:
            return _NOTHING
        self.exclusive = True
        if self._executions is None:
            return self._begin + self._q.lock + b"; ", (self._table,)
        return self._q.execution_lock + b"; ", (self._table,)
