"""The PostgreSQL backend: duroxide's history table on a PostgreSQL server.

`eventstore.open("postgresql://user:password@host/db")` (the `postgres` extra:
psycopg 3 and psycopg_pool). Same API, errors and CLI as the SQLite backend.

The table has the columns and key of duroxide's PostgreSQL provider history
table, so a duroxide database can be read and written. On tables eventstore
creates, one column of ours is added: `eventstore_position`, the feed
position (an identity column, unique). Our own tables, columns, indexes,
locks and notification channels are all prefixed `eventstore_`.

One module per job:

* `target`: parsing the URL; passwords never leave it (`mask`).
* `queries`: the DDL and every statement, composed once per table.
* `table`: the table on open: checked, created, or upgraded (the feed's
  transaction-id column).
* `locks`: the advisory locks of a write unit (the execution's key; the
  table's key shared by appends, exclusive for every other write).
* `writer`: write units, and why the global feed, in (transaction id,
  position) order below the snapshot's horizon, never skips an event.
* `translate`: the one place psycopg's exceptions become eventstore's.
* `backend`: PostgresBackend itself: pool, sessions, reads, LISTEN/NOTIFY.

Concurrency, the feed and subscriptions, all enforced here:

* Writers of different executions run side by side; writers of one
  execution take turns on its advisory key, so "read the last event id,
  check, insert" is sound under any number of writers on any number of
  connections and processes. Readers never take a lock.
* The feed is gap-free without a table lock: rows carry their transaction
  id, and the feed returns only rows of transactions below the reading
  snapshot's horizon (the argument is in `writer`).
* Inside `transaction()`, each append runs in a savepoint (atomic on its own),
  while the embedding runtime's transaction decides the final commit.
* A store opened read-only sets `default_transaction_read_only` on every
  session: the server itself refuses writes. On a hot standby everything
  reads; `wait_for_events` polls there.
* `wait_for_events` waits on LISTEN/NOTIFY: every write transaction sends
  a notification right after its commit (never on rollback).
"""

from __future__ import annotations

try:
    import psycopg  # noqa: F401
    import psycopg_pool  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "the PostgreSQL backend needs the postgres extra: pip install 'eventstore[postgres]'"
    ) from exc

from .backend import PostgresBackend
from .queries import TABLE
from .translate import translate

__all__ = ["TABLE", "PostgresBackend", "translate"]
