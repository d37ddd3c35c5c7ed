"""The SQLite backend: duroxide's history table in an embedded database file.

Its durability and concurrency choices are written down once, in `backend.py`.
"""

from __future__ import annotations

from .backend import SQLiteBackend
from .tables import HISTORY_DDL
from .translate import translate

__all__ = ["HISTORY_DDL", "SQLiteBackend", "translate"]
