"""`eventstore cutover`: end a dual-write window (the rolling upgrade's last step)."""

from __future__ import annotations

import click

from ..evolution.cutover import cutover
from .app import main
from .core import TARGET, open_store, out, progress_bar
from .migrate import BATCH, LOG, _log_file, _print_report, _resumable


@main.command(name="cutover")
@TARGET
@click.option(
    "--to", "to", default="V1", show_default=True, help="The generation to write from now on."
)
@BATCH
@LOG
def cutover_command(target: str, to: str, batch_size: int, log_path: str | None) -> None:
    """Flip the store's write generation to V1 and rewrite the window's rows.

    Every row written while the write generation was legacy (V0b) is
    rewritten from the V1 form kept beside it (timestamps, versions,
    metadata), in batches that archive the legacy rows: `eventstore rollback
    TARGET --run RUN_ID` restores them byte for byte and the legacy write
    generation. An interrupted cutover is resumed by running it again. Rows
    written before the window are left to `migrate` or the lazy upcast.
    """
    with (
        _resumable("cutover"),
        open_store(target, readonly=False) as store,
        _log_file(log_path) as log,
        progress_bar("cutover", store.count()) as advance,
    ):
        report = cutover(store, to=to, batch_size=batch_size, log=log, progress=advance)
    _print_report(report)
    if report.run_id:
        click.echo(f"run id: {report.run_id}")
    elif report.note:
        out.print(f"nothing to do: {report.note}", markup=False)
