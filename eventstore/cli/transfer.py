"""`eventstore export` and `eventstore import`: whole rows as JSON lines.

Export writes every row verbatim and says on stderr which rows will not
import (or, with --skip-corrupt, quarantines them). Import takes the same
checks as the store applies and names the file's line and the column at
fault; with --skip-corrupt it leaves such rows out and lists their lines.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

import click

from .._words import plural
from ..errors import DecodeError, EventStoreError, Location
from ..lifecycle.archived import archived_export_rows
from ..store import HistoryStore
from ._samefile import refuse_same_file
from .app import main
from .core import TARGET, err, open_store, out, progress_bar

__all__ = ["export_rows", "import_rows", "report_corrupt"]

_LISTED = 20  # problems printed one per line; beyond that, a count


def report_corrupt(problems: list[str], *, verb: str, hint: str | None) -> None:
    """One stderr line per problem (the first few), then a count and a hint."""
    for problem in problems[:_LISTED]:
        err.print(f"{verb}: {problem}", soft_wrap=True)
    if len(problems) > _LISTED:
        err.print(f"... and {len(problems) - _LISTED} more", soft_wrap=True)
    if problems and hint:
        err.print(hint, soft_wrap=True)


def _dump(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False) + "\n"


def _rows_out(
    store: HistoryStore,
    quarantine: Callable[[dict[str, Any], EventStoreError], None] | None,
    warn: Callable[[dict[str, Any], EventStoreError], None],
    include_archived: bool,
) -> Iterator[dict[str, Any]]:
    """The table's rows, then (include_archived) those only archives hold."""
    yield from store.export_rows(quarantine=quarantine, warn=warn)
    if include_archived:
        yield from archived_export_rows(store)


@main.command(name="export")
@TARGET
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Default: stdout."
)
@click.option(
    "--skip-corrupt",
    is_flag=True,
    help="Check every row as import would; write the ones that would not import"
    " to a quarantine file instead.",
)
@click.option(
    "--quarantine",
    type=click.Path(dir_okay=False, writable=True),
    help="Where --skip-corrupt puts bad rows"
    " (default: OUTPUT.quarantine.jsonl, or quarantine.jsonl).",
)
@click.option(
    "--include-archived",
    is_flag=True,
    help="Also write the rows retention moved to archives (after the table's rows).",
)
def export_rows(
    target: str,
    output: str | None,
    skip_corrupt: bool,
    quarantine: str | None,
    include_archived: bool,
) -> None:
    """Write every row, whole and verbatim, as JSON lines (commit order).

    Bytes that are not UTF-8 are written as {"base64": ...}, exactly as
    stored. Rows that will not import are named on stderr (by output line).
    """
    if quarantine and not skip_corrupt:
        raise click.UsageError("--quarantine goes with --skip-corrupt")
    if skip_corrupt:
        quarantine = quarantine or (f"{output}.quarantine.jsonl" if output else "quarantine.jsonl")
    refuse_same_file(target, [("--output", output), ("--quarantine", quarantine)])
    if output and quarantine and os.path.realpath(output) == os.path.realpath(quarantine):
        raise click.UsageError(f"--output and --quarantine are the same file {output!r}")
    with open_store(target, readonly=True) as store, contextlib.ExitStack() as stack:
        total = store.count()
        stream: IO[str] = (
            stack.enter_context(builtins.open(output, "w", encoding="utf-8"))
            if output
            else sys.stdout
        )
        problems: list[str] = []
        count = 0

        def warn(row: dict[str, Any], error: EventStoreError) -> None:
            problems.append(f"line {count + 1}: {error}")

        on_corrupt = None
        if quarantine:
            quarantined = stack.enter_context(builtins.open(quarantine, "w", encoding="utf-8"))

            def on_corrupt(row: dict[str, Any], error: EventStoreError) -> None:
                quarantined.write(_dump(dict(row, error=str(error))))
                problems.append(str(error))

        with progress_bar("export", total) as advance:
            for row in _rows_out(store, on_corrupt, warn, include_archived):
                stream.write(_dump(row))
                count += 1
                advance()
    if output:
        err.print(f"exported {plural(count, 'row')} to {output}", soft_wrap=True)
    if skip_corrupt:
        err.print(
            f"quarantined {plural(len(problems), 'row')} that would not import in {quarantine}",
            soft_wrap=True,
        )
        report_corrupt(problems, verb="quarantined", hint=None)
    else:
        report_corrupt(
            problems,
            verb="will not import",
            hint=f"warning: {plural(len(problems), 'exported row')} will not import"
            " (import --skip-corrupt leaves them out; export --skip-corrupt quarantines them)",
        )


def _read_jsonl(path: str) -> Iterator[tuple[Location, dict[str, Any]]]:
    """The JSON objects of a JSON-lines file with their line; a bad line raises DecodeError."""
    with builtins.open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            where = Location(line=number)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DecodeError(
                    f"not UTF-8: byte 0x{raw[exc.start]:02x} at column {exc.start + 1}",
                    location=where,
                ) from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise DecodeError(f"not JSON: {exc}", location=where) from None
            except RecursionError:
                raise DecodeError(
                    "not JSON this reader takes: nested too deeply", location=where
                ) from None
            if not isinstance(row, dict):
                raise DecodeError("not a JSON object", location=where)
            yield where, row


@main.command(name="import")
@TARGET
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--skip-corrupt",
    is_flag=True,
    help="Leave out rows that do not decode or cannot be stored, listing their lines"
    " (default: refuse the whole file).",
)
def import_rows(target: str, file: str, skip_corrupt: bool) -> None:
    """Insert whole rows from JSON lines (as export writes them), all or nothing."""
    refuse_same_file(target, [("FILE", file)])
    with open_store(target, readonly=False) as store, progress_bar("import", None) as advance:

        def rows() -> Iterator[tuple[Location, dict[str, Any]]]:
            for located in _read_jsonl(file):
                advance()
                yield located

        report = store.import_located(rows(), skip_corrupt=skip_corrupt)
    out.print(
        f"imported {plural(report.inserted, 'row')} ({report.skipped_identical} already present)"
    )
    if report.corrupt:
        report_corrupt(
            [str(e) for e in report.corrupt],
            verb="skipped",
            hint=f"skipped {plural(len(report.corrupt), 'corrupt row')}",
        )
