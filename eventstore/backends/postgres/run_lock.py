"""The PostgreSQL table's run lock: one migration, backfill or rollback at a time."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import psycopg

from ...errors import MigrationLockedError
from .translate import translate

__all__ = ["run_lock"]


@contextlib.contextmanager
def run_lock(con: psycopg.Connection[Any], key: int, description: str, what: str) -> Iterator[None]:
    """Hold the run lock on `con` (a connection of its own, outside the pool)
    for the whole run, and close `con` at the end.

    A *session-level* advisory lock (`pg_try_advisory_lock`). It is released
    when that session ends: by closing the connection below, or by the server
    when the holder dies (a SIGKILLed process's socket closes, its backend
    exits and drops its locks), so a killed run never leaves the table
    locked. Its key differs from the write lock's, so appends and the run's
    own batches are not blocked by it. The holder names itself in
    `application_name`, which a refused caller reads to say who holds it.
    """
    try:
        try:
            got = con.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if not (got and got[0]):
                raise MigrationLockedError(
                    f"{description} is locked for a run: {_holder(con, key)}"
                )
            con.execute(
                "SELECT set_config('application_name', %s, false)",
                (f"{what} (pid {os.getpid()})"[:63],),
            )
        except psycopg.Error as exc:
            raise translate(exc, "cannot take the run lock") from None
        yield
    finally:
        con.close()  # ends the session, and with it the lock


def _holder(con: psycopg.Connection[Any], key: int) -> str:
    # A bigint advisory key shows in pg_locks as classid (high 32 bits)
    # and objid (low 32 bits), objsubid 1.
    key &= 0xFFFFFFFFFFFFFFFF
    row = con.execute(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
        " AND l.classid = %s AND l.objid = %s LIMIT 1",
        (key >> 32, key & 0xFFFFFFFF),
    ).fetchone()
    return str(row[0]) if row and row[0] else "another session"
