"""Refuse to write a command's output onto the store it reads.

`export db -o db` used to truncate the database before reading it. Every
command that opens an output file checks it here first, before anything is
opened: the output must not be the store's file or one of SQLite's companion
files (-wal, -shm, -journal), under any other path, hard link or symlink.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import click

from ..backends import is_postgres, sqlite_path
from ..errors import EventStoreError

__all__ = ["refuse_same_file", "store_file_of"]

_COMPANIONS = ("", "-wal", "-shm", "-journal")


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _store_files(path: str) -> list[str]:
    # SQLite names its companions after the path it opened, and resolves a
    # symlinked database to its real file first: both spellings count.
    bases = {path, os.path.realpath(path)}
    return [base + suffix for base in sorted(bases) for suffix in _COMPANIONS]


def _clashes(output: str, store_path: str) -> str | None:
    """The store file `output` would write onto, if any."""
    output_real = os.path.realpath(output)
    output_id = _identity(output)
    for candidate in _store_files(store_path):
        if os.path.realpath(candidate) == output_real:
            return candidate
        if output_id is not None and _identity(candidate) == output_id:
            return candidate
    return None


def store_file_of(target: str) -> str | None:
    """The SQLite file a store target names; None for PostgreSQL and :memory:."""
    if is_postgres(target):
        return None
    try:
        path = sqlite_path(target)
    except EventStoreError:
        return None  # opening the store will say what is wrong with the target
    return None if path == ":memory:" else path


def refuse_same_file(target: str, outputs: Iterable[tuple[str, str | None]]) -> None:
    """Raise a UsageError if any (label, path) output is TARGET's database file.

    `target` is a store target as the user gave it; PostgreSQL and :memory:
    stores have no file and pass.
    """
    store_path = store_file_of(target)
    if store_path is None:
        return
    for label, output in outputs:
        if output is None or output == "-":
            continue
        clash = _clashes(output, store_path)
        if clash is not None:
            whole = clash in (store_path, os.path.realpath(store_path))
            what = f"the store {target!r}" if whole else f"{clash!r}, part of the store {target!r}"
            raise click.UsageError(
                f"{label} {output!r} is the same file as {what}; nothing was written"
            )
