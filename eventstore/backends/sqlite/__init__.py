"""The SQLite backend: duroxide's history table in an embedded database file.

Durability and concurrency choices, all enforced here:

* WAL journal: readers never block the writer and vice versa, and several
  processes may share the file.
* Writes begin with BEGIN IMMEDIATE, which takes the write lock up front (or
  waits up to the busy timeout). Checking the last event id and inserting
  therefore happen under one lock: no other writer can slip in between, which
  is what makes the optimistic-concurrency check sound.
* synchronous=NORMAL by default: in WAL mode every commit is atomic and
  survives a crash of the process (SIGKILL included); a power loss or OS
  crash may undo the last commits, never corrupt the file. `synchronous="full"`
  makes every commit durable against power loss at the cost of an fsync each.
* event_data is read as a BLOB: the codec decodes bytes directly (msgspec
  validates the UTF-8), so a row holding invalid UTF-8 becomes a DecodeError
  naming that row instead of a failure of the whole fetch.
* Positions are rowids. On tables eventstore creates the rowid is aliased by
  an INTEGER PRIMARY KEY column (`position`), so VACUUM keeps it; on tables
  duroxide created it is the implicit rowid, which VACUUM may renumber
  (`stable_positions` says which).
"""

from __future__ import annotations

from .backend import SQLiteBackend
from .tables import HISTORY_DDL
from .translate import translate

__all__ = ["HISTORY_DDL", "SQLiteBackend", "translate"]
