"""Core commands: init, stats, verify, demo (`show` and `tail`: eventstore.cli.show)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from .._words import plural
from ..lifecycle.archived import verify_archives
from ..opening import open as open_target
from ..store import HistoryStore
from ..store.verify import StoreStats, VerifyReport, stats, verify
from .app import main
from .describe import print_timeline

# Off a terminal (a pipe, a log file) lines are never wrapped: one message
# stays one line. Tables still need a width there, hence 120.
out = Console(
    highlight=False,
    width=None if sys.stdout.isatty() else 120,
    soft_wrap=not sys.stdout.isatty(),
)
err = Console(stderr=True, highlight=False, soft_wrap=not sys.stderr.isatty())

TARGET = click.argument("target", metavar="TARGET")


def open_store(target: str, *, readonly: bool) -> HistoryStore:
    return open_target(target, readonly=readonly)


@contextlib.contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[Any]:
    """A progress bar on stderr (hidden when stderr is not a terminal)."""
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n=1: bar.advance(task, n)


@main.command()
@TARGET
def init(target: str) -> None:
    """Create a store (the history table) if it does not exist."""
    with open_store(target, readonly=False) as store:
        out.print(f"ready: {store.description} ({store.count()} events)")


@main.command(name="stats")
@TARGET
@click.option("--json", "as_json", is_flag=True, help="The figures as one JSON object.")
def show_stats(target: str, as_json: bool) -> None:
    """Rows per event type and generation, and timestamp coverage.

    Rows that do not decode are counted under `undecodable` and named on
    stderr by position (the first 1,000; `verify` names them all).
    """
    with (
        open_store(target, readonly=True) as store,
        progress_bar("stats", store.count()) as advance,
    ):
        result = stats(store, progress=advance)
    _name_undecodable(result)
    if as_json:
        click.echo(json.dumps(_stats_json(result)))
        return
    generations = sorted(result.by_generation) + (["undecodable"] if result.undecodable else [])
    table = Table("event type", *generations, "total")
    for event_type, total in sorted(result.by_type.items()):
        cells = [str(result.by_type_and_generation.get((event_type, g), "")) for g in generations]
        table.add_row(event_type, *cells, str(total))
    out.print(table)
    out.print(
        f"{result.rows} rows; {result.with_timestamp} with a timestamp "
        f"({result.timestamp_coverage:.1%} of decodable rows)"
        + (f"; {result.undecodable} undecodable" if result.undecodable else "")
    )


def _name_undecodable(result: StoreStats) -> None:
    for problem in result.undecodable_rows:
        click.echo(f"{problem}", err=True)
    more = result.undecodable - len(result.undecodable_rows)
    if more:
        click.echo(
            f"... and {plural(more, 'more undecodable row')} (see `eventstore verify`)", err=True
        )


def _stats_json(result: StoreStats) -> dict[str, Any]:
    return {
        "rows": result.rows,
        "undecodable": result.undecodable,
        "undecodable_rows": [
            {"position": p.location.position, "location": str(p.location), "reason": p.message}
            for p in result.undecodable_rows
        ],
        "with_timestamp": result.with_timestamp,
        "timestamp_coverage": result.timestamp_coverage,
        "by_type": dict(result.by_type),
        "by_generation": dict(result.by_generation),
        "by_type_and_generation": {
            f"{t}/{g}": n for (t, g), n in sorted(result.by_type_and_generation.items())
        },
    }


def print_verify(report: VerifyReport) -> None:
    gens = ", ".join(f"{g}: {n}" for g, n in sorted(report.generations.items()))
    executions = plural(report.executions, "execution")
    out.print(f"verified {plural(report.rows, 'row')} in {executions} ({gens})")
    if report.integrity is not None:
        out.print(f"integrity: {report.integrity.summary()}", markup=False)
    for problem in report.problems:
        out.print(Text(str(problem), style="red"))
    for gap in report.legacy_gaps:
        out.print(Text(f"tolerated legacy {gap}"))
    if report.legacy_gaps:
        tolerated = plural(len(report.legacy_gaps), "id gap")
        out.print(f"{tolerated} in legacy data tolerated (not problems)")
    if report.catalog_behind_count:
        for behind in report.catalog_behind[:10]:
            out.print(str(behind), markup=False)
        behind_count = plural(report.catalog_behind_count, "execution")
        out.print(
            f"execution catalog behind the history for {behind_count} (another program wrote"
            " or deleted rows): `eventstore catalog catch-up TARGET` takes in what was"
            " written, `eventstore catalog rebuild TARGET` everything (not problems)",
            markup=False,
        )
    out.print(
        "[green]OK[/green]"
        if report.ok
        else f"[red]{plural(len(report.problems), 'problem')}[/red]"
    )


@main.command(name="verify")
@TARGET
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
@click.option(
    "--include-archived",
    is_flag=True,
    help="Also check every retention archive (checksum, rows) and decode its rows.",
)
def verify_store(target: str, as_json: bool, include_archived: bool) -> None:
    """Decode every row and check ordering and pairing; exit 1 if anything is wrong."""
    with (
        open_store(target, readonly=True) as store,
        progress_bar("verify", store.count()) as advance,
    ):
        report = verify(store, progress=advance)
        archives = verify_archives(store) if include_archived else None
    archives_ok = all(a.ok for a in archives or [])
    if as_json:
        click.echo(
            json.dumps(
                {
                    "archives": None if archives is None else [a.as_json() for a in archives],
                    "rows": report.rows,
                    "executions": report.executions,
                    "by_generation": dict(report.generations),
                    "ok": report.ok,
                    "integrity": report.integrity.as_dict() if report.integrity else None,
                    "problems": [
                        {"kind": p.kind, "where": str(p.location), "message": p.message}
                        for p in report.problems
                    ],
                    "legacy_gaps": len(report.legacy_gaps),
                    "catalog_behind": report.catalog_behind_count,
                    "tolerated": [
                        {"kind": "legacy-gap", "where": str(p.location), "message": p.message}
                        for p in report.legacy_gaps
                    ],
                }
            )
        )
    else:
        print_verify(report)
        for a in archives or []:
            state = "OK" if a.ok else f"{plural(len(a.problems), 'problem')}"
            out.print(
                f"archive {a.location} (shard {a.shard}, {a.rows} rows): {state}", markup=False
            )
            for problem in a.problems:
                out.print(f"  {problem}", markup=False)
    if not report.ok or not archives_ok:
        sys.exit(1)


@main.command()
@TARGET
def demo(target: str) -> None:
    """The main job: write sample histories (V1 and legacy V0), read, show, verify."""
    from ..samples import legacy_rows, sample_histories

    with open_store(target, readonly=False) as store:
        if store.count():
            raise click.ClickException(
                f"the demo writes into an empty store; {store.description} "
                f"already holds {store.count()} events"
            )
        # A clock that moves 250 ms per turn, so the timelines show offsets.
        start = store.clock()
        ticks = iter(range(start, start + 10_000_000, 250))
        store.clock = lambda: next(ticks)
        written = 0
        for instance_id, execution_id, batches in sample_histories(start):
            last = 0
            for batch in batches:
                result = store.append(instance_id, execution_id, batch, expected_last_event_id=last)
                last = result.last_event_id
                written += len(batch)
        report = store.import_rows(legacy_rows())
        out.print(
            f"wrote {written} V1 events through append and {report.inserted} legacy V0 rows "
            f"to {store.description}"
        )
        for summary in store.summaries():
            events = store.read(summary.instance_id)
            print_timeline(out, summary.instance_id, summary.latest_execution, events)
        print_verify(verify(store))
