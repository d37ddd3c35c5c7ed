"""Opening a SQLite file: read-write, or read-only where nothing can be written."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ...errors import StoreError

__all__ = ["connect"]


def connect(path: str, *, readonly: bool) -> sqlite3.Connection:
    """A connection to `path`; read-only ones through a file: URI.

    The URI is built from the path with every special character quoted
    (`Path.as_uri`): a plain path is that path, `%41` and `?` included.
    A read-only open works where nothing can be written (a read-only
    directory, file system or medium): when SQLite cannot create the WAL
    index beside the file, the file is opened `immutable`, which is exact as
    long as no write-ahead log holds commits it would not see.
    """
    if path == ":memory:" or not readonly:
        return sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    uri = Path(path).absolute().as_uri()
    con = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    try:
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return con
    except sqlite3.OperationalError:
        con.close()
        if not _cannot_write_beside(path):
            raise
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise StoreError(
            f"cannot open {path} read-only: its write-ahead log {wal.name} holds commits, and"
            " the shared-memory index SQLite needs to read them cannot be created here"
            " (open it once where it is writable, or copy it elsewhere)"
        )
    return sqlite3.connect(
        f"{uri}?mode=ro&immutable=1", uri=True, isolation_level=None, check_same_thread=False
    )


def _cannot_write_beside(path: str) -> bool:
    """True when SQLite could not create the -shm file next to `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.access(directory, os.W_OK):
        return True
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return True
