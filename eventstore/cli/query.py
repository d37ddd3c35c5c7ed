"""`eventstore query TARGET SQL`: read-only SQL over a SQLite store, with the es_* functions."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import sys
import urllib.parse
from collections.abc import Iterator
from typing import Any

import click
from rich.table import Table

from ..backends import sqlite_path
from ..sqlite_plugin import register_functions
from .app import main
from .core import TARGET, out

_ALLOWED = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    sqlite3.SQLITE_RECURSIVE,
}
_READING_PRAGMAS = {
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "integrity_check",
    "quick_check",
}
"""Pragmas whose argument names what to read, not a value to set."""

_ACTION_NAMES = {
    getattr(sqlite3, f"SQLITE_{name}"): name.replace("_", " ")
    for name in (
        "CREATE_INDEX",
        "CREATE_TABLE",
        "CREATE_TEMP_INDEX",
        "CREATE_TEMP_TABLE",
        "CREATE_TEMP_TRIGGER",
        "CREATE_TEMP_VIEW",
        "CREATE_TRIGGER",
        "CREATE_VIEW",
        "DELETE",
        "DROP_INDEX",
        "DROP_TABLE",
        "DROP_TEMP_INDEX",
        "DROP_TEMP_TABLE",
        "DROP_TEMP_TRIGGER",
        "DROP_TEMP_VIEW",
        "DROP_TRIGGER",
        "DROP_VIEW",
        "INSERT",
        "PRAGMA",
        "TRANSACTION",
        "UPDATE",
        "ATTACH",
        "DETACH",
        "ALTER_TABLE",
        "REINDEX",
        "ANALYZE",
        "CREATE_VTABLE",
        "DROP_VTABLE",
        "SAVEPOINT",
    )
}
"""The authorizer's action codes, named as the statements that cause them."""


class _Guard:
    """The authorizer: only reads pass; the first refused action is kept for the message."""

    def __init__(self) -> None:
        self.refused: str | None = None

    def __call__(self, action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
        if action in _ALLOWED:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA and (arg2 is None or arg1 in _READING_PRAGMAS):
            return sqlite3.SQLITE_OK
        if self.refused is None:
            what = _ACTION_NAMES.get(action, f"action {action}")
            self.refused = f"{what} {arg1}" if arg1 else what
        return sqlite3.SQLITE_DENY


def _connect(target: str) -> tuple[sqlite3.Connection, _Guard]:
    if target.startswith(("postgresql://", "postgres://")):
        raise click.ClickException(
            "eventstore query works on SQLite stores; for PostgreSQL use psql"
            " (the es_* functions are SQLite functions)"
        )
    path = sqlite_path(target)
    if path == ":memory:":
        raise click.ClickException("eventstore query needs a SQLite file, not an in-memory store")
    if not os.path.isfile(path):
        raise click.ClickException(f"no SQLite store at {path}")
    # Read-only twice over: the file is opened mode=ro, and query_only plus an
    # authorizer refuse any statement that would write, before it runs.
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True)
        connection.execute("PRAGMA query_only = ON")
    except sqlite3.Error as exc:
        raise click.ClickException(f"cannot open {path}: {exc}") from None
    # A hand-written TEXT value that is not UTF-8 is shown with its bad bytes
    # escaped (\xff) instead of failing the whole query.
    connection.text_factory = _text
    register_functions(connection)
    guard = _Guard()
    connection.set_authorizer(guard)
    return connection, guard


def _text(data: bytes) -> str:
    return data.decode("utf-8", "backslashreplace")


def _run(connection: sqlite3.Connection, guard: _Guard, sql: str) -> sqlite3.Cursor:
    try:
        return connection.execute(sql)
    except sqlite3.DatabaseError as exc:
        if guard.refused is not None:
            raise click.ClickException(
                f"refused: this statement would write ({guard.refused}); eventstore query"
                " only reads, and the store is unchanged"
            ) from None
        raise click.ClickException(f"SQL error: {exc}") from None
    except sqlite3.ProgrammingError as exc:  # e.g. more than one statement
        raise click.ClickException(f"SQL error: {exc}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()  # BLOBs as hex: JSON and CSV have no bytes
    return value


def _rows(cursor: sqlite3.Cursor) -> Iterator[tuple[Any, ...]]:
    try:
        for row in cursor:
            yield tuple(_plain(v) for v in row)
    except sqlite3.Error as exc:
        raise click.ClickException(f"SQL error: {exc}") from None


@main.command(name="query")
@TARGET
@click.argument("sql")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row.")
def query_command(target: str, sql: str, as_json: bool, as_csv: bool) -> None:
    """Run read-only SQL on a SQLite store, with es_type, es_generation,
    es_timestamp_ms and es_v1 over event_data (any generation).

    Anything that would write (INSERT, UPDATE, DELETE, DROP, ATTACH, a PRAGMA
    that sets a value ...) is refused and the store is left unchanged. Example:
    eventstore query history.db "select es_type(event_data), count(*) from history group by 1"
    """
    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    connection, guard = _connect(target)
    try:
        cursor = _run(connection, guard, sql)
        columns = [d[0] for d in cursor.description or ()]
        if as_json:
            for row in _rows(cursor):
                click.echo(json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False))
        elif as_csv:
            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(_rows(cursor))
        else:
            table = Table(*columns)
            for row in _rows(cursor):
                table.add_row(*("" if v is None else str(v) for v in row))
            out.print(table)
    finally:
        connection.close()
