"""`eventstore copy SOURCE DEST`: a whole store, between any two backends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

from ..errors import TargetError
from . import main
from ._samefile import refuse_same_file, store_file_of
from .core import err, open_store, out, progress_bar


@main.command(name="copy")
@click.argument("source", metavar="SOURCE")
@click.argument("dest", metavar="DEST")
def copy_store(source: str, dest: str) -> None:
    """Copy every history row of SOURCE into DEST, verbatim (SQLite <-> PostgreSQL).

    Rows keep their columns exactly (created_at included) and arrive in
    SOURCE's commit order, streamed page by page in constant memory, in one
    transaction on DEST. Rows DEST already holds identically are skipped, so
    an interrupted copy can simply be run again; a row that clashes with a
    different one under the same key aborts the copy with nothing written.
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

            def rows() -> Iterator[dict[str, Any]]:
                for row in reader.export_rows():
                    yield row
                    advance()

            report = writer.import_rows(rows())
        out.print(
            f"copied {report.inserted} rows from {reader.backend.description}"
            f" to {writer.backend.description}"
            f" ({report.skipped_identical} already present)"
        )
    if report.inserted + report.skipped_identical != total:
        err.print(
            f"note: {total} rows were counted in the source when the copy began, "
            f"{report.inserted + report.skipped_identical} were copied (it changed meanwhile)"
        )
