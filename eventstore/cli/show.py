"""`eventstore show` (an execution's timeline, one or all, or followed while it
runs) and `eventstore tail` (the global feed, followed).

Both read only. Following polls at `--interval` (or, for `tail`, waits on the
store where it can: PostgreSQL's LISTEN) and ends on Ctrl-C quietly, with exit
status 130 as a shell expects of an interrupted command.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from typing import Any, Final

import click
from rich.text import Text

from .. import events as ev
from ..errors import DecodeError
from ..store import HistoryStore
from ..store.protocol import RawRow
from .app import main
from .core import TARGET, err, open_store, out
from .describe import (
    event_json,
    format_time,
    pair_events,
    summary,
    timeline_json,
    timeline_row,
    timeline_table,
)
from .metrics import Duration

__all__ = ["show", "tail"]

INTERRUPTED: Final = 130
"""Exit status after Ctrl-C (128 + SIGINT), as shells report it."""

INTERVAL = click.option(
    "--interval",
    type=Duration(),
    default="500ms",
    show_default=True,
    help="How often to look for new events when following (1s, 500ms, 2m).",
)


@contextlib.contextmanager
def _until_interrupted() -> Iterator[None]:
    """Ctrl-C ends a follow quietly (no traceback), with status 130."""
    try:
        yield
    except KeyboardInterrupt:
        sys.stdout.flush()
        sys.exit(INTERRUPTED)


def _emit_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False))
    sys.stdout.flush()


def _pick_execution(store: HistoryStore, instance: str, execution: int | None) -> list[int]:
    executions = store.executions(instance, include_archived=True)
    if not executions:
        raise click.ClickException(f"no instance {instance!r} in {store.description}")
    if execution is not None and execution not in executions:
        raise click.ClickException(
            f"instance {instance!r} has no execution {execution} (it has {executions})"
        )
    return executions


@main.command()
@TARGET
@click.argument("instance")
@click.option("--execution", type=int, help="Execution number (default: the latest).")
@click.option(
    "--all-executions", is_flag=True, help="Every execution of the instance, oldest first."
)
@click.option(
    "--follow",
    is_flag=True,
    help="Keep printing new events of a running execution (and the executions it "
    "continues as) until it ends or Ctrl-C.",
)
@INTERVAL
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="The timeline as JSON (with --follow: one JSON object per event and line).",
)
def show(
    target: str,
    instance: str,
    execution: int | None,
    all_executions: bool,
    follow: bool,
    interval: float,
    as_json: bool,
) -> None:
    """Show an execution's timeline: each completion paired with the event it
    completes (its source_event_id) and the time between them, where both
    events carry a timestamp (legacy events say "no time")."""
    if all_executions and (follow or execution is not None):
        raise click.UsageError("--all-executions takes neither --execution nor --follow")
    with open_store(target, readonly=True) as store:
        executions = _pick_execution(store, instance, execution)
        chosen = executions if all_executions else [execution or executions[-1]]
        if follow:
            with _until_interrupted():
                _follow(store, instance, chosen[0], interval, as_json=as_json)
            return
        timelines = [(n, store.read(instance, n)) for n in chosen]
    if as_json:
        if all_executions:
            value: Any = [{"execution_id": n, "timeline": timeline_json(e)} for n, e in timelines]
        else:
            value = timeline_json(timelines[0][1])
        click.echo(json.dumps(value, ensure_ascii=False, indent=2))
        return
    for n, events in timelines:
        out.print(timeline_table(f"{instance} execution {n}", events))


def _follow(
    store: HistoryStore, instance: str, execution: int, interval: float, *, as_json: bool
) -> None:
    """Print the execution, then its new events as they are stored, until it ends.

    An execution that continues as new is followed into the next one.
    """
    while True:
        ended = _follow_execution(store, instance, execution, interval, as_json=as_json)
        if not isinstance(ended, ev.OrchestrationContinuedAsNew):
            return
        execution += 1
        while execution not in store.executions(instance):
            time.sleep(interval)


def _follow_execution(
    store: HistoryStore, instance: str, execution: int, interval: float, *, as_json: bool
) -> ev.Event:
    """Follow one execution; returns its terminal event."""
    shown = 0
    start_ms = 0
    title = f"{instance} execution {execution}"
    while True:
        if store.last_event_id(instance, execution) > shown:
            events = store.read(instance, execution)
            fresh = [e for e in events if e.event_id > shown]
            start_ms = start_ms or next((e.timestamp_ms for e in events if e.has_timestamp), 0)
            _print_fresh(title if shown == 0 else None, events, fresh, start_ms, as_json)
            shown = events[-1].event_id
            terminal = next((e for e in fresh if e.event_type in ev.TERMINAL_TYPES), None)
            if terminal is not None:
                return terminal
        time.sleep(interval)


def _print_fresh(
    title: str | None,
    events: list[ev.Event],
    fresh: list[ev.Event],
    start_ms: int,
    as_json: bool,
) -> None:
    pairings = pair_events(events)
    if as_json:
        for event in fresh:
            _emit_json(event_json(event, start_ms, pairings.get(event.event_id)))
        return
    table = timeline_table(title or "", [], start_ms=start_ms, header=title is not None)
    if title is None:
        table.title = None
    for event in fresh:
        table.add_row(*timeline_row(event, start_ms, pairings.get(event.event_id)))
    out.print(table)


DEFAULT_LINES: Final = 10
"""How many of the feed's last events `tail` starts with, as tail(1) does."""


@main.command()
@TARGET
@click.option(
    "-n",
    "--lines",
    type=click.IntRange(min=0),
    default=None,
    help=f"Start with the last N events of the feed (default {DEFAULT_LINES}; 0: only new ones).",
)
@click.option(
    "--after",
    type=click.IntRange(min=0),
    default=None,
    help="Start after this feed position (the number each line starts with), to resume.",
)
@click.option("--from-start", is_flag=True, help="Start at the feed's first event.")
@click.option(
    "--follow/--no-follow",
    default=True,
    show_default=True,
    help="Keep waiting for new events (Ctrl-C ends), or stop at the end of the feed.",
)
@INTERVAL
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event and line.")
def tail(
    target: str,
    lines: int | None,
    after: int | None,
    from_start: bool,
    follow: bool,
    interval: float,
    as_json: bool,
) -> None:
    """Print the end of the global feed (every event, in commit order) and follow it.

    As tail -f does: the last 10 events (-n to choose how many), then each new
    one as it is committed, until Ctrl-C. Each line starts with the event's feed
    position: pass it to --after to resume there; --from-start prints the whole
    feed. Rows that do not decode are named on stderr and skipped.
    """
    if (lines is not None) + (after is not None) + from_start > 1:
        raise click.UsageError("choose one of -n/--lines, --after and --from-start")
    with open_store(target, readonly=True) as store, _until_interrupted():
        if from_start or after is not None:
            position = after or 0
        else:
            # The feed's last rows end at its head: following from there skips
            # nothing (store.head_position(), PostgreSQL's horizon included).
            last = store.read_last_raw(DEFAULT_LINES if lines is None else lines)
            for row in last:
                _print_row(store, row, as_json=as_json)
            position = last[-1].position if last else store.head_position()
        while True:
            position = _print_feed(store, position, as_json=as_json)
            if not follow:
                return
            if store.can_wait_for_events:
                store.wait_for_events(position, interval)
            else:
                time.sleep(interval)


def _print_feed(store: HistoryStore, after: int, *, as_json: bool) -> int:
    """Print every event after `after`; returns the position of the last row read."""
    position = after
    for row in store.read_all_raw(after):
        position = row.position
        _print_row(store, row, as_json=as_json)
    return position


def _print_row(store: HistoryStore, row: RawRow, *, as_json: bool) -> None:
    """One feed row as a line (a row that does not decode: named on stderr)."""
    try:
        event = store.decode_raw(row).event
    except DecodeError as exc:
        err.print(Text(f"skipping undecodable row at {exc.location}: {exc.message}"))
        return
    if as_json:
        _emit_json(
            {
                "position": row.position,
                "instance_id": row.instance_id,
                "execution_id": row.execution_id,
                "event_id": event.event_id,
                "event_type": event.event_type,
                "timestamp_ms": event.timestamp_ms,
                "source_event_id": event.source_event_id,
                "summary": summary(event),
                "event": event_json(event, 0, None)["event"],
            }
        )
    else:
        out.print(
            Text(
                f"{row.position:>10}  {format_time(event.timestamp_ms):<23}  "
                f"{row.instance_id} #{row.execution_id}/{event.event_id}  "
                f"{event.event_type}  {summary(event)}"
            )
        )
