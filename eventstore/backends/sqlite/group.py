"""Group commit on SQLite: many appends in one transaction, each in its own savepoint.

The backend runs a group; which appends form one is the store's business
(store/grouping.py for threads, store/async_group.py for asyncio). The group
runs on the backend's one write connection, under the same lock and nesting
count as `writing()`, so a group, a plain write and a `transaction()` never
interleave their statements.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from typing import Any

from ...errors import StoreError
from ...store.protocol import GroupUnit
from .translate import BINDING_ERRORS, translate
from .writer import SQLiteWriter, WriteState

__all__ = ["commit_group"]


def commit_group(state: WriteState, units: Sequence[GroupUnit]) -> list[Any]:
    """Run each unit in its own savepoint of one BEGIN IMMEDIATE transaction, then COMMIT.

    Per unit, in order: what it returned, or the exception it raised (its
    savepoint rolled back; the units before and after it are untouched).

    Durability and ordering, enforced here:

    * Nothing is returned before COMMIT has returned. The callers' awaits
      resolve from this list, so an append is acknowledged only once the
      commit that holds it is done (and, with synchronous=full, on disk).
      A crash before COMMIT loses the whole group, and no caller of it has
      been answered; a crash after it loses nothing that was answered.
    * The units run in the order given, inside one write lock taken up
      front (BEGIN IMMEDIATE): each sees the rows of the units before it
      that were kept, exactly as if they had been separate transactions
      committed one after the other in that order. Feed positions follow
      the same order, and the commit makes the whole group visible at once,
      so a reader sees every append of a group or none, never a part of one.
    * A unit's failure is its own: ROLLBACK TO its savepoint undoes its
      statements only. When that rollback fails too (SQLite may already have
      rolled the whole transaction back after an I/O error or a full disk),
      or when COMMIT fails, the whole group is rolled back and the error is
      raised: every caller of the group then gets it, none was stored.
    """
    cursor = state._writer._cursor
    with state._lock:
        if state._depth:
            raise StoreError("a group commit cannot run inside a transaction")
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise translate(exc, "cannot begin a write") from None
        state._depth = 1
        try:
            outcomes = [_run_unit(cursor, state._writer, unit) for unit in units]
            cursor.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                cursor.execute("ROLLBACK")
            if isinstance(exc, BINDING_ERRORS):
                raise translate(exc, "cannot commit the group") from None
            raise
        finally:
            state._depth = 0
    return outcomes


def _run_unit(cursor: sqlite3.Cursor, writer: SQLiteWriter, unit: GroupUnit) -> Any:
    cursor.execute("SAVEPOINT grouped")
    try:
        outcome = unit(writer)
    except Exception as exc:  # the unit's own refusal or failure: reported to its caller
        cursor.execute("ROLLBACK TO grouped")
        cursor.execute("RELEASE grouped")
        return translate(exc, "write failed") if isinstance(exc, BINDING_ERRORS) else exc
    cursor.execute("RELEASE grouped")
    return outcome
