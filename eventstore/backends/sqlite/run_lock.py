"""The run lock of a SQLite store: one migration, backfill or rollback at a time.

An exclusive `flock` on a sidecar file next to the database
(`<database>.eventstore-lock`). The kernel drops the lock when the holder's
file descriptor is closed, which includes the holder dying by SIGKILL, so a
killed run never leaves the store locked, and there is no lease to expire or
pid to check. The file itself stays (removing it would let a later locker
lock a fresh inode while an earlier one still holds the old one); it holds
only the current holder's pid and what it is doing, to name it in a refusal.

Not the database file itself: SQLite locks with POSIX `fcntl` locks, which a
process loses on *every* descriptor of the file as soon as it closes any one
of them, so opening and closing the database file here could silently drop
the connection's own locks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from typing import Final

from ...errors import MigrationLockedError, StoreError

__all__ = ["SUFFIX", "file_run_lock", "memory_run_lock"]

SUFFIX: Final = ".eventstore-lock"


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError):
        text = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
        if text:
            return text
    return "another process"


@contextlib.contextmanager
def file_run_lock(database: str, what: str) -> Iterator[None]:
    """Hold the run lock of the SQLite database at `database`, or raise at once."""
    path = database + SUFFIX
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot open the run lock {path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MigrationLockedError(f"{database} is locked for a run: {_holder(fd)}") from None
        except OSError as exc:
            raise StoreError(f"cannot lock {path}: {exc.strerror}") from None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{what} (pid {os.getpid()})\n".encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock


@contextlib.contextmanager
def memory_run_lock(lock: threading.Lock, description: str, what: str) -> Iterator[None]:
    """The run lock of an in-memory database: only this process can see it."""
    if not lock.acquire(blocking=False):
        raise MigrationLockedError(f"{description} is locked for a run in this process")
    try:
        yield
    finally:
        lock.release()
