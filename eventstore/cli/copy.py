"""`eventstore copy SOURCE DEST`: a whole store, between any two backends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

from .._words import plural
from ..errors import Location, TargetError
from ._samefile import refuse_same_file, store_file_of
from .app import main
from .core import err, open_store, out, progress_bar
from .transfer import report_corrupt


@main.command(name="copy")
@click.argument("source", metavar="SOURCE")
@click.argument("dest", metavar="DEST")
@click.option(
    "--skip-corrupt",
    is_flag=True,
    help="Leave out source rows that do not decode or cannot be stored, naming each"
    " (default: copy nothing if one is found).",
)
def copy_store(source: str, dest: str, skip_corrupt: bool) -> None:
    """Copy every history row of SOURCE into DEST, verbatim (SQLite <-> PostgreSQL).

    Rows keep their columns exactly (created_at included) and arrive in
    SOURCE's commit order, streamed page by page in constant memory, in one
    transaction on DEST. Rows DEST already holds identically are skipped, so
    an interrupted copy can simply be run again; a row that clashes with a
    different one under the same key aborts the copy with nothing written,
    and so does a corrupt source row unless --skip-corrupt. Rows are named by
    their position in SOURCE and their key.
    """
    if source == dest:
        raise TargetError("SOURCE and DEST are the same store")
    refuse_same_file(source, [("DEST", store_file_of(dest))])
    with (
        open_store(source, readonly=True) as reader,
        open_store(dest, readonly=False) as writer,
    ):
        total = reader.count()
        with progress_bar("copy", total) as advance:

            def rows() -> Iterator[tuple[Location, dict[str, Any]]]:
                for located in reader.export_located():
                    yield located
                    advance()

            report = writer.import_located(rows(), skip_corrupt=skip_corrupt)
        out.print(
            f"copied {plural(report.inserted, 'row')} from {reader.description}"
            f" to {writer.description}"
            f" ({report.skipped_identical} already present)"
        )
    if report.corrupt:
        report_corrupt(
            [str(e) for e in report.corrupt],
            verb="skipped",
            hint=f"skipped {plural(len(report.corrupt), 'corrupt row')} of {total}",
        )
    if report.inserted + report.skipped_identical + len(report.corrupt) != total:
        err.print(
            f"note: {total} rows were counted in the source when the copy began, "
            f"{report.inserted + report.skipped_identical + len(report.corrupt)} were read"
            " (it changed meanwhile)"
        )
