"""`eventstore migrate | migrations | rollback | backfill-timestamps`: rewriting stored rows."""

from __future__ import annotations

import builtins
import contextlib
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

import click

from .._words import plural
from ..evolution.migrate import (
    DEFAULT_BATCH_SIZE,
    NOTHING_TO_DO,
    MigrationReport,
    Strategy,
    backfill_timestamps,
    list_runs,
    migrate,
    rollback,
)
from ..evolution.prune import prune_runs
from .app import DefaultGroup, main
from .core import TARGET, err, open_store, out, progress_bar

BATCH = click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Rows per batch (one transaction each).",
)
DRY_RUN = click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
LOG = click.option(
    "--log",
    "log_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write the change set as JSON lines to this file.",
)


def _print_report(report: MigrationReport) -> None:
    if report.dry_run:
        out.print(
            f"dry run ({report.strategy}): {plural(report.scanned, 'row')} examined,"
            f" {report.changed} to rewrite to {report.target}"
            f" ({report.current} already current); nothing was written"
        )
    elif report.status == "already-requested":
        out.print(f"already done by run {report.run_id}; nothing to do (use --force to run again)")
        return
    elif report.status == NOTHING_TO_DO:
        out.print(
            f"nothing to do ({report.strategy}): {plural(report.scanned, 'row')} examined,"
            f" none to rewrite; nothing was written"
        )
    else:
        resumed = " (resumed)" if report.resumed else ""
        out.print(f"run {report.run_id}{resumed}: {report.strategy}, {report.status}")
        out.print(
            f"rewrote {plural(report.changed, 'row')} in {plural(report.batches, 'batch')}"
            f" ({report.scanned} scanned, {report.current} already current)"
        )
    if report.by_generation:
        gens = ", ".join(f"{g}: {n}" for g, n in sorted(report.by_generation.items()))
        out.print(f"rewritten by generation: {gens}", markup=False)
    for reason, count in sorted(report.kept.items()):
        sample = report.samples.get(reason, [])
        more = f" (e.g. {'; '.join(sample[:3])})" if sample else ""
        out.print(f"kept as written: {count} {reason}{more}", markup=False)
    if report.note:
        out.print(f"note: {report.note}", markup=False)


@contextlib.contextmanager
def _log_file(path: str | None) -> Iterator[IO[str] | None]:
    if path is None:
        yield None
        return
    with builtins.open(path, "a", encoding="utf-8") as handle:
        yield handle


@contextlib.contextmanager
def _resumable(command: str) -> Iterator[None]:
    """Ctrl-C says what is kept and how to go on, not only `Aborted!`."""
    try:
        yield
    except KeyboardInterrupt:
        raise click.ClickException(
            f"interrupted: the batches committed so far are kept; run the same"
            f" `eventstore {command}` again to resume"
        ) from None


@main.command(name="migrate")
@TARGET
@click.option("--to", "to", default="V1", show_default=True, help="Target generation.")
@click.option(
    "--strategy",
    type=click.Choice(["auto", "lazy", "eager"]),
    default="auto",
    show_default=True,
    help="lazy: upcast on read; eager: rewrite rows; auto: eager only for breaking changes.",
)
@DRY_RUN
@BATCH
@LOG
def migrate_command(
    target: str, to: str, strategy: str, dry_run: bool, batch_size: int, log_path: str | None
) -> None:
    """Bring stored rows to the current generation (rewriting legacy rows in place).

    Each batch is one transaction that also archives the original rows, so the
    run can be rolled back (`eventstore rollback TARGET --run RUN_ID`). An
    interrupted run is resumed by running the same command again. Legacy
    SystemCall events have no V1 form and are kept as they are.
    """
    chosen: Strategy = "lazy" if strategy == "lazy" else "eager" if strategy == "eager" else "auto"
    with (
        _resumable("migrate"),
        open_store(target, readonly=dry_run) as store,
        _log_file(log_path) as log,
        progress_bar("migrate", store.count()) as advance,
    ):
        report = migrate(
            store,
            to=to,
            strategy=chosen,
            dry_run=dry_run,
            batch_size=batch_size,
            log=log,
            progress=advance,
        )
    _print_report(report)
    if report.run_id and not report.dry_run:
        click.echo(f"run id: {report.run_id}")


@main.command(name="backfill-timestamps")
@TARGET
@DRY_RUN
@BATCH
@LOG
@click.option("--force", is_flag=True, help="Run even if a backfill was already done.")
def backfill_command(
    target: str, dry_run: bool, batch_size: int, log_path: str | None, force: bool
) -> None:
    """Fill timestamp_ms of V1 events that have none from the row's created_at.

    created_at has second precision, so the filled timestamps do too (the run
    log says so). A migration run: logged, archived, reversible with
    `eventstore rollback`; rows that have a timestamp are skipped.
    """
    with (
        _resumable("backfill-timestamps"),
        open_store(target, readonly=dry_run) as store,
        _log_file(log_path) as log,
        progress_bar("backfill", store.count()) as advance,
    ):
        report = backfill_timestamps(
            store,
            dry_run=dry_run,
            force=force,
            batch_size=batch_size,
            log=log,
            progress=advance,
        )
    _print_report(report)
    if report.run_id and not report.dry_run and report.status != "already-requested":
        click.echo(f"run id: {report.run_id}")


@main.group(name="migrations", cls=DefaultGroup)
def migrations_group() -> None:
    """Migration runs: `migrations TARGET` lists them, `migrations prune TARGET` prunes."""


@migrations_group.command(name="show")
@TARGET
@click.option("--json", "as_json", is_flag=True, help="One JSON object per run.")
def migrations_command(target: str, as_json: bool) -> None:
    """List migration runs: id, kind, strategy, status, rows rewritten."""
    with open_store(target, readonly=True) as store:
        runs = list_runs(store)
    for run in runs:
        try:
            details = json.loads(run.details)
        except ValueError:
            details = {}
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "run_id": run.run_id,
                        "kind": run.kind,
                        "strategy": run.strategy,
                        "target": run.target,
                        "status": run.status,
                        "rows": run.rows,
                        "started_at": run.started_at,
                        "finished_at": run.finished_at,
                        "details": details,
                    }
                )
            )
        else:
            click.echo(
                f"{run.run_id}  {run.kind:<19} {run.strategy:<6} {run.status:<12}"
                f" {run.rows:>8} rows  {run.started_at}"
            )
    if not runs and not as_json:
        err.print("no migration runs")


@main.command(name="rollback")
@TARGET
@click.option("--run", "run_id", required=True, help="The run to undo (see `migrations`).")
@BATCH
def rollback_command(target: str, run_id: str, batch_size: int) -> None:
    """Restore the rows a migration, backfill or cutover run rewrote, exactly as they were.

    Rolling back a cutover also restores the legacy write generation it left.
    """
    with open_store(target, readonly=False) as store, progress_bar("rollback", None) as advance:
        report = rollback(store, run_id, batch_size=batch_size, progress=advance)
        generation = store.evolution.write_generation()
    if report.already:
        out.print(f"run {run_id} was already rolled back")
    else:
        out.print(f"rolled back run {run_id}: restored {report.restored} rows")
    if generation is not None and generation != "V1":
        out.print(f"write generation: {generation} (the dual-write window is open again)")


@migrations_group.command(name="prune")
@TARGET
@click.option("--run", "run_ids", multiple=True, help="Prune this run (repeatable).")
@click.option(
    "--before",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Without --run: prune the finished runs that finished before this day (UTC).",
)
@click.option(
    "--archive",
    "archive_dir",
    type=click.Path(file_okay=False),
    help="First write each run's originals to DIR/migrations/RUN.jsonl.gz (verified).",
)
@click.option("--no-vacuum", is_flag=True, help="Do not VACUUM afterwards.")
@DRY_RUN
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
def migrations_prune(
    target: str,
    run_ids: tuple[str, ...],
    before: datetime | None,
    archive_dir: str | None,
    no_vacuum: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Drop the originals and logs finished runs keep (they can no longer be rolled
    back), then VACUUM so the file shrinks. Default: every finished run."""
    cut = before.strftime("%Y-%m-%dT00:00:00") if before else None
    with (
        open_store(target, readonly=dry_run) as store,
        progress_bar("prune", None) as advance,
    ):
        report = prune_runs(
            store,
            run_ids=run_ids,
            before=cut,
            archive=Path(archive_dir) if archive_dir else None,
            dry_run=dry_run,
            reclaim=not no_vacuum,
            progress=advance,
        )
    if as_json:
        click.echo(json.dumps(report.as_json()))
        return
    verb = "would prune" if dry_run else "pruned"
    out.print(f"{verb} {plural(len(report.runs), 'run')}: {plural(report.rows, 'row')}")
    for run_id, path in report.archives.items():
        out.print(f"originals of {run_id} kept in {path}", markup=False)
    if report.reclaimed:
        out.print("space reclaimed (VACUUM)")
