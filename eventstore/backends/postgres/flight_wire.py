"""How the one-call append travels: the call and the notification in one flight.

`one_flight.py` says what the call does; this module sends it. One append
is one network flight, in libpq's pipeline mode, through psycopg's libpq
wrapper (`psycopg.pq`, the connection's `pgconn`):

    Bind/Execute  the call (a statement prepared once per connection)
    Sync          -> the call's implicit transaction commits here, and
                     the server waits for its WAL flush before going on
    Parse/Bind/Execute  NOTIFY <channel>
    Sync          -> the notification's own transaction commits

The client writes all of it at once and then reads the answers: one round
trip where the call and then the NOTIFY as two statements took two. The
call is prepared in the first flight on a connection; psycopg drops every
prepared statement of a connection (DEALLOCATE ALL) after a ROLLBACK or a
DROP there once it has prepared statements of its own, so a call that
finds its statement gone (it failed before it ran) is prepared again and
sent once more.

Why the notification is a transaction of its own, after the call's
-----------------------------------------------------------------

A Sync ends the extended protocol's implicit transaction (the connection is
in autocommit), so the NOTIFY after the first Sync cannot be part of the
call's transaction. It must not be: a NOTIFY inside the data transaction
takes PostgreSQL's cluster-wide notification lock in PreCommit_Notify and
holds it through the commit's WAL flush, which serialises every committer
(`Queries._compose_locks`). The server runs the messages in order, so the
notification commits after the call's commit returned: a waiter woken by it
reads a feed that holds the append.

Its transaction does not wait for a WAL flush, and needs no
`synchronous_commit = off` for that: PreCommit_Notify gives it a transaction
id, so it writes a commit record, but it wrote no WAL before that record, and
RecordTransactionCommit flushes (and waits for a synchronous standby) only
for a transaction that did (`wrote_xlog`). Measured on a server with fsync
on: 2,000 NOTIFY transactions wrote 2,000 commit records with 3 WAL syncs
(the WAL writer's), and took as long as 2,000 `SELECT 1`, while one INSERT
took a flush (about ten times as long).

When the call fails
-------------------

An error (a lock timeout, a value the server refuses) aborts the call's
implicit transaction; the Sync after it rolls it back, so nothing of the
append is written and the connection is idle again, usable. The NOTIFY after
that Sync still runs: a waiter wakes, finds nothing new, and waits on. The
server's error is raised as psycopg's exception of its SQLSTATE and
translated by the caller (`translate.py`), as on every other route. If the
exchange itself fails (the connection breaks, or the thread is interrupted
halfway), the connection is closed, and the pool discards it when it comes
back.

A notification that never comes
-------------------------------

A notification can still be lost: the server ends the session between the
call's commit and the NOTIFY (the client vanished; the server was stopped),
or the listening connection broke and was made again meanwhile. Nothing
waits on it alone: `PostgresBackend._wait` checks the feed again on a
timer, every half second, notified or not.

Pipeline mode needs libpq 14 or later (psycopg's binary package bundles a
newer one); with an older libpq the call and then the NOTIFY go as two
statements, two round trips, as before (`FlightWire.pipelined`).

Why not psycopg's `Connection.pipeline()`
------------------------------------------

`Pipeline.sync()` fetches the results sent before it: the NOTIFY would leave
only after the call's commit came back, two round trips again. Sending
BEGIN, the call, COMMIT and NOTIFY in one Sync-delimited pipeline does go in
one flight, but psycopg's pipeline machinery cost more client CPU per append
than the two plain statements did (about 165-210 us against 115-160 us of
process time per append in a loop on this machine), where the exchange here
costs less than either (50-75 us). `benchmarks/postgres_callgrind.py` counts
the whole append's client instructions.
"""

from __future__ import annotations

import re
import select
import weakref
from typing import Any, Final

import psycopg
from psycopg import pq

__all__ = ["FlightWire"]

_PREPARED: Final = b"eventstore_append_call"
"""The call's prepared statement, per connection (psycopg's own are `_pg3_*`)."""

_SYNC: Final = int(pq.ExecStatus.PIPELINE_SYNC)
_NO_SUCH_STATEMENT: Final = "26000"
_DONE: Final = int(pq.ExecStatus.COMMAND_OK)
_ROWS: Final = int(pq.ExecStatus.TUPLES_OK)


def _numbered(call: bytes) -> bytes:
    """psycopg's `%s` placeholders as libpq's `$1, $2, ...`."""
    numbers = iter(range(1, 1000))
    return re.sub(rb"%s", lambda _: b"$%d" % next(numbers), call)


def _texts(values: tuple[object, ...], encoding: str) -> list[bytes | None] | None:
    """The values in PostgreSQL's text format (the call casts every
    parameter), or None when one cannot go as text: a NUL, where libpq would
    cut a text parameter short (the plain route binds it, and psycopg refuses
    it with its error). A str that is not valid Unicode raises UnicodeError,
    translated by the caller, as psycopg's binding would."""
    params: list[bytes | None] = []
    add = params.append
    for value in values:
        kind = type(value)
        if kind is int:
            add(b"%d" % value)  # type: ignore[str-format]
        elif value is None:
            add(None)
        elif kind is bool:
            add(b"t" if value else b"f")
        else:
            text = str(value)
            if "\x00" in text:
                return None
            add(text.encode(encoding))
    return params


class FlightWire:
    """The call and the notification of one append, sent in one flight."""

    __slots__ = ("_call", "_encodings", "_notify", "_psycopg_call", "pipelined")

    def __init__(self, call: bytes, notify: bytes) -> None:
        self._call = _numbered(call)
        self._psycopg_call = call
        self._notify = notify
        self.pipelined = psycopg.capabilities.has_pipeline()
        """libpq 14 or later (pipeline mode); an older libpq sends the call
        and then the NOTIFY as two statements (`_two_statements`)."""
        self._encodings: weakref.WeakKeyDictionary[psycopg.Connection[Any], str] = (
            weakref.WeakKeyDictionary()
        )
        """Connections on which the call is prepared, with their encoding."""

    def send(self, con: psycopg.Connection[Any], values: tuple[object, ...]) -> int | None:
        """Send the call and the notification: the call's answer (the rows it
        wrote), or None when a value cannot travel as text (`_texts`)."""
        if not self.pipelined:
            return self._two_statements(con, values)
        known = self._encodings.get(con)
        encoding = known or con.info.encoding
        params = _texts(values, encoding)
        if params is None:
            return None
        pg = con.pgconn
        pg.enter_pipeline_mode()
        try:
            if known is None:
                pg.send_prepare(_PREPARED, self._call)
            pg.send_query_prepared(_PREPARED, params)
            pg.pipeline_sync()
            pg.send_query_params(self._notify, None)
            pg.pipeline_sync()
            results = _exchange(pg, syncs=2)
            pg.exit_pipeline_mode()
        except BaseException:
            con.close()  # halfway through the exchange: the pool discards it
            raise
        if known is None and results[0].status == _DONE:
            self._encodings[con] = encoding  # prepared (whatever the call did)
        for result in results:
            if result.status != _DONE and result.status != _ROWS:
                if known is not None and _state(result) == _NO_SUCH_STATEMENT:
                    # psycopg sends DEALLOCATE ALL after a ROLLBACK or a DROP
                    # on a connection where it prepared statements of its own
                    # (the plain route's), which drops ours too. The call did
                    # nothing (it failed before it ran): prepare it again, once.
                    del self._encodings[con]
                    return self.send(con, values)
                raise _error(result, encoding)
        value = results[-2].get_value(0, 0)  # the call's; the notification's is last
        return int(value) if value is not None else 0

    def _two_statements(self, con: psycopg.Connection[Any], values: tuple[object, ...]) -> int:
        """Without pipeline mode: the call (its own transaction), then the
        NOTIFY, two round trips; psycopg binds the values (and refuses a NUL)."""
        row = con.execute(self._psycopg_call, values).fetchone()
        con.execute(self._notify)
        return int(row[0]) if row is not None and row[0] is not None else 0


def _exchange(pg: Any, syncs: int) -> list[Any]:
    """Write what is queued, then read every result up to the `syncs`-th
    pipeline sync (the results in order, the syncs left out). The socket is
    nonblocking (psycopg's); the waits release the GIL."""
    poller = select.poll()
    if pg.flush():  # the kernel took only part of it: wait until it takes the rest
        poller.register(pg.socket, select.POLLIN | select.POLLOUT)
        while pg.flush():
            poller.poll()
            pg.consume_input()  # read while writing: the server may answer meanwhile
        poller.modify(pg.socket, select.POLLIN)
    else:
        poller.register(pg.socket, select.POLLIN)
    results = []
    while syncs:
        while pg.is_busy():
            poller.poll()
            pg.consume_input()
        result = pg.get_result()
        if result is None:
            continue
        if result.status == _SYNC:
            syncs -= 1
        else:
            results.append(result)
    return results


def _state(result: Any) -> str:
    """The SQLSTATE of a failed result."""
    return (result.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()


def _error(result: Any, encoding: str) -> psycopg.Error:
    """psycopg's exception for the server's error, by its SQLSTATE."""
    state = _state(result)
    try:
        kind = psycopg.errors.lookup(state)
    except KeyError:
        kind = psycopg.DatabaseError
    return kind(result.get_error_message(encoding), info=result, encoding=encoding)
