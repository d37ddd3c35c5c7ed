"""`eventstore shards | shards rebase | retention`: day shards and retention with an archive."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .._words import plural
from ..errors import StoreError
from ..lifecycle.census import TERMINAL_STATUSES
from ..lifecycle.manifest import shard_view
from ..lifecycle.partition import BATCH_ROWS, partition_store
from ..lifecycle.relocate import relocate_archives
from ..lifecycle.retention import RetentionPolicy, RetentionReport, run_retention
from ..lifecycle.shards import rebase_shards
from .app import DefaultGroup, main
from .core import TARGET, err, open_store, out, progress_bar

__all__ = ["progress_tasks"]


@contextlib.contextmanager
def progress_tasks() -> Iterator[Callable[[str, int | None], Callable[[int], object]]]:
    """progress(label, total) -> advance(n): one bar per stage, on stderr (terminals only)."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:

        def start(label: str, total: int | None) -> Callable[[int], object]:
            task = bar.add_task(label, total=total)

            def advance(n: int = 1) -> None:
                bar.advance(task, n)

            return advance

        yield start


@main.group(name="shards", cls=DefaultGroup)
def shards_group() -> None:
    """The day shards: `shards TARGET` shows the manifest, `shards rebase TARGET` rebases."""


@shards_group.command(name="show")
@TARGET
@click.option("--json", "as_json", is_flag=True, help='{"shards": [{"shard": ..., ...}]}.')
def shards_show(target: str, as_json: bool) -> None:
    """Show each day shard: state, executions, running, rows, bytes, times, archive."""
    with open_store(target, readonly=True) as store, progress_bar("census", None) as advance:
        shards = shard_view(store, progress=advance)
        try:
            partitioned = store.lifecycle.partitioned
        except StoreError:  # a backend without a shard manifest
            partitioned = False
    if as_json:
        # Whether the table is partitioned by shard: only a PostgreSQL store
        # created with partition_by_shard=True is; any other says false.
        click.echo(json.dumps({"shards": shards, "partitioned_by_shard": partitioned}))
        return
    if not shards:
        err.print("no shards: the store holds no executions")
        return
    table = Table("shard", "state", "executions", "running", "rows", "bytes", "archive")
    for s in shards:
        archive = f"{s['archive_rows']} rows in {s['archive']}" if s["archive"] else ""
        table.add_row(
            s["shard"],
            s["state"],
            str(s["executions"]),
            str(s["running"]),
            str(s["rows"]),
            str(s["bytes"]),
            archive,
        )
    out.print(table)


@shards_group.command(name="rebase")
@TARGET
def shards_rebase(target: str) -> None:
    """Record 'root' executions in their day shards (after backfill-timestamps)."""
    with open_store(target, readonly=False) as store, progress_tasks() as progress:
        before, now = rebase_shards(store, progress=progress)
    was = "never recorded" if before is None else plural(before, "execution")
    out.print(
        f"shard root holds {plural(now, 'execution')} (recorded before: {was});"
        " every other execution is recorded in its day shard"
    )


@shards_group.command(name="relocate-archive")
@TARGET
@click.argument("old_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("new_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the files at NEW_DIR and change nothing.")
@click.option("--json", "as_json", is_flag=True, help='{"relocated": [{"archive": ..., ...}]}.')
def shards_relocate_archive(
    target: str, old_dir: Path, new_dir: Path, dry_run: bool, as_json: bool
) -> None:
    """Point the manifest's archives at NEW_DIR after the archive directory moved.

    Every archive recorded under OLD_DIR must be at the same place under
    NEW_DIR and pass its sha256 and row count there; else nothing changes.
    """
    with open_store(target, readonly=False) as store, progress_bar("check", None) as advance:
        moves = relocate_archives(store, old_dir, new_dir, dry_run=dry_run, progress=advance)
    if as_json:
        rows = [
            {"archive": m.archive_id, "shard": m.shard, "old": m.old, "new": m.new} for m in moves
        ]
        click.echo(json.dumps({"dry_run": dry_run, "relocated": rows}))
        return
    verb = "would relocate" if dry_run else "relocated"
    out.print(f"{verb} {plural(len(moves), 'archive')} to {new_dir.resolve()}", markup=False)


@shards_group.command(name="partition")
@TARGET
@click.option(
    "--batch-rows",
    type=click.IntRange(min=1),
    default=BATCH_ROWS,
    show_default=True,
    help="Rows copied per transaction.",
)
def shards_partition(target: str, batch_rows: int) -> None:
    """Convert a PostgreSQL history table into partitions by day shard (offline:
    stop the writers first; run again after an interruption)."""
    with open_store(target, readonly=False) as store, progress_tasks() as progress:
        rows = partition_store(store, batch=batch_rows, progress=progress)
    if rows < 0:
        out.print("the history table is partitioned by day shard already; nothing to do")
        return
    out.print(
        f"the history table is partitioned by day shard now ({plural(rows, 'row')} kept,"
        " positions and transaction ids unchanged); restart the store's writers"
    )


_DURATION = re.compile(r"^(\d+)([dw])$")


def _older_than(value: str | None) -> dt.timedelta | None:
    if value is None:
        return None
    found = _DURATION.match(value.strip())
    if not found:
        raise click.BadParameter(f"{value!r}: write days or weeks, e.g. 30d or 4w")
    n = int(found.group(1))
    return dt.timedelta(days=n * (7 if found.group(2) == "w" else 1))


def _cut(before: dt.datetime | None, older_than: str | None) -> dt.date:
    age = _older_than(older_than)
    cuts = [before.date()] if before is not None else []
    if age is not None:
        cuts.append(dt.datetime.now(dt.UTC).date() - age)
    if not cuts:
        raise click.UsageError("say which shards to retire: --before DATE and/or --older-than")
    return min(cuts)


def _print_retention(report: RetentionReport) -> None:
    verb = "would archive" if report.dry_run else "archived"
    for line in report.resumed:
        out.print(f"finished an interrupted run: {line}", markup=False)
    for s in report.shards:
        where = f" -> {s.archive}" if s.archive else ""
        out.print(
            f"{s.shard}: {verb} {plural(s.executions, 'execution')}"
            f" ({plural(s.rows, 'row')}){where}",
            markup=False,
        )
        if s.kept_changed:
            out.print(
                f"  kept {plural(s.kept_changed, 'execution')} in the table"
                " (rows changed after archiving, or the table's newest row)"
            )
    total = f"{plural(report.rows, 'row')} in {plural(len(report.shards), 'shard')}"
    out.print(f"{verb} {total} before {report.cut}; running executions kept: {report.kept_running}")
    if report.kept_newest:
        out.print(
            f"kept {report.kept_newest}: it holds the newest row (a later run retires it)",
            markup=False,
        )
    if report.kept_last:
        out.print(f"kept by --keep-last: {plural(report.kept_last, 'execution')}")
    if report.root_executions:
        out.print(
            f"shard root ({plural(report.root_executions, 'execution')} without a start time)"
            " is never retired by date: backfill-timestamps, then shards rebase"
        )


@main.command(name="retention")
@TARGET
@click.option(
    "--before",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="DATE",
    help="Retire shards of days before this one (YYYY-MM-DD, UTC).",
)
@click.option(
    "--archive", "archive_dir", required=True, metavar="DIR", help="Directory the archives go to."
)
@click.option("--older-than", metavar="AGE", help="Retire shards older than this (e.g. 30d, 4w).")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(TERMINAL_STATUSES),
    help="Only executions that ended so (repeatable; default: every terminal status).",
)
@click.option(
    "--keep-last",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
    help="Keep the newest N executions of each instance (continue-as-new chains).",
)
@click.option(
    "--throttle",
    type=click.FloatRange(0, 100),
    default=None,
    help="Sleep FACTOR times as long as each step took (3: busy a quarter of the time;"
    " 0: full speed). Default: 1 on PostgreSQL, where appenders run beside retention;"
    " 0 on SQLite.",
    metavar="FACTOR",
)
@click.option("--dry-run", is_flag=True, help="Report what would be archived; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
def retention_command(
    target: str,
    before: dt.datetime | None,
    archive_dir: str,
    older_than: str | None,
    statuses: tuple[str, ...],
    keep_last: int,
    throttle: float | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Archive terminal executions of old day shards, verify, then delete them.

    Shard by shard, oldest first: the rows go verbatim to a gzip JSON-lines
    file in ARCHIVE/<shard>/ (with a .sha256), which is verified before any
    row is deleted. Running executions stay. Interrupted, it is finished by
    running it again. Reads of archived executions follow the archive.
    """
    policy = RetentionPolicy(
        cut=_cut(before, older_than),
        archive_dir=Path(archive_dir),
        statuses=statuses or TERMINAL_STATUSES,
        keep_last=keep_last,
        dry_run=dry_run,
        throttle=throttle,
    )
    with open_store(target, readonly=dry_run) as store, progress_tasks() as progress:
        report = run_retention(store, policy, progress=progress)
    if as_json:
        payload: dict[str, Any] = report.as_json()
        click.echo(json.dumps(payload))
    else:
        _print_retention(report)
