"""`eventstore ls` and `eventstore catalog`: listings from the execution catalog.

`ls` reads the catalog (HistoryStore.catalog_executions): one query, filters
in the database, no history row decoded where the store keeps the catalog.
The table is laid out here in plain text rather than with rich: rich measures
and styles every cell, which for 42,000 rows takes longer than the query.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import click
import msgspec

from .._words import plural
from ..store import ExecutionRecord, HistoryStore
from ..store.catalog import STATUSES
from .app import main
from .core import TARGET, err, open_store, out

_COLUMNS: Final = ("instance", "execution", "orchestration", "status", "started", "ended",
                   "duration", "events")  # fmt: skip
_CSV_FIELDS: Final = (*ExecutionRecord.__struct_fields__, "duration_ms")


def _moment(text: str, option: str) -> int:
    """ISO 8601 date or date-time (UTC unless it says otherwise) as ms since the epoch."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO date or date-time (2026-11-21, 2026-11-21T04:27:44Z)",
            param_hint=option,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


_TIME: Final = "{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d}"


def _time(ms: int | None) -> str:
    # time.gmtime and one format: a datetime and strftime per cell were a
    # third of listing 42,000 instances.
    if ms is None:
        return ""
    try:
        return _TIME.format(*time.gmtime(ms // 1000)[:6])
    except (OverflowError, OSError, ValueError):  # past what the platform's clock holds
        return str(ms)


def _duration(ms: int | None) -> str:
    if ms is None:
        return ""
    if ms < 60_000:
        return f"{ms / 1000:.3f}s"
    seconds = ms // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02}m{seconds:02}s" if hours else f"{minutes}m{seconds:02}s"


def _cells(record: ExecutionRecord) -> tuple[str, ...]:
    name = f"{record.name} {record.version}" if record.name else ""
    return (
        record.instance_id,
        str(record.execution_id),
        name,
        record.status,
        _time(record.started_ms),
        _time(record.ended_ms),
        _duration(record.duration_ms),
        str(record.event_count),
    )


def _table(records: Sequence[ExecutionRecord]) -> Iterator[str]:
    """The records as a plain-text table (header, rule, one line per record).

    One format string for every line: formatting 42,000 rows cell by cell
    (ljust per cell, a generator per line) took three times as long."""
    rows = [_COLUMNS, *map(_cells, records)]
    widths = [max(map(len, column)) for column in zip(*rows, strict=True)]
    numeric = {1, 7}
    line = "  ".join(
        f"{{:{'>' if i in numeric else '<'}{width}}}" for i, width in enumerate(widths)
    ).format
    yield "  ".join(f"{name:<{width}}" for name, width in zip(_COLUMNS, widths, strict=True))
    yield "  ".join("-" * width for width in widths)
    for row in rows[1:]:
        yield line(*row).rstrip()


def _as_dict(record: ExecutionRecord) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.structs.asdict(record)
    data["duration_ms"] = record.duration_ms
    return data


def _warn_unlisted(store: HistoryStore, listed: Sequence[ExecutionRecord], every: bool) -> None:
    """Rows no execution lists: hand-written keys (verify names each row).

    Cheap first: when the listed executions hold every row, nothing is missing.
    """
    stored = store.count()
    events = sum(r.event_count for r in listed)
    if events != stored and not every:  # earlier executions hold the rest?
        events = sum(r.event_count for r in store.catalog_executions())
    if events == stored:
        return
    instances: list[object] = list(store.instances())  # bytes: an id that is not UTF-8
    undecoded = [i for i in instances if isinstance(i, bytes)]
    if undecoded:
        names = ", ".join(repr(bytes(i)) for i in undecoded)
        err.print(
            f"warning: {plural(len(undecoded), 'instance id')} not UTF-8 text, not listed:"
            f" {names} (verify names their rows)",
            markup=False,  # the names are stored data
        )
        return
    unlisted = stored - events
    if unlisted > 0:
        err.print(
            f"warning: {plural(unlisted, 'row')} with an execution id that is not an integer,"
            " not listed (verify names them)"
        )


def _emit(records: Sequence[ExecutionRecord], as_json: bool, as_csv: bool, noun: str) -> None:
    if as_json:
        write = sys.stdout.write
        for record in records:
            write(json.dumps(_as_dict(record)) + "\n")
        return
    if as_csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=_CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(map(_as_dict, records))
        sys.stdout.write(buffer.getvalue())
        return
    sys.stdout.write("\n".join(_table(records)) + "\n")
    out.print(plural(len(records), noun))


@main.command(name="ls")
@TARGET
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(STATUSES),
    help="Only executions with this status (repeat for several).",
)
@click.option("--name", help="Only this orchestration name.")
@click.option("--instance", "instance_like", help="Instance ids matching this SQL LIKE pattern.")
@click.option("--shard", help="Only this day shard (YYYY-MM-DD, or root).")
@click.option("--since", help="Started at or after this UTC date or date-time (ISO 8601).")
@click.option("--until", help="Started before this UTC date or date-time (ISO 8601).")
@click.option("--limit", type=click.IntRange(min=0), help="List at most this many.")
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many first.")
@click.option(
    "--all-executions", is_flag=True, help="Every execution, not only each instance's latest."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row.")
def list_instances(
    target: str,
    statuses: tuple[str, ...],
    name: str | None,
    instance_like: str | None,
    shard: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
    offset: int,
    all_executions: bool,
    as_json: bool,
    as_csv: bool,
) -> None:
    """List instances (their latest execution) from the execution catalog, newest first:
    orchestration, status, start, end, duration, events."""
    if as_json and as_csv:
        raise click.UsageError("--json and --csv exclude each other")
    filters: dict[str, Any] = {
        "status": statuses or None,
        "name": name,
        "instance_like": instance_like,
        "shard": shard,
        "since_ms": _moment(since, "--since") if since else None,
        "until_ms": _moment(until, "--until") if until else None,
    }
    whole = all(value is None for value in filters.values()) and not (limit or offset)
    with open_store(target, readonly=True) as store:
        records = store.catalog_executions(
            **filters, limit=limit, offset=offset, latest_only=not all_executions
        )
        if whole:  # everything listed: say what no execution holds
            _warn_unlisted(store, records, all_executions)
    _emit(records, as_json, as_csv, "execution" if all_executions else "instance")


@main.group(name="catalog")
def catalog_group() -> None:
    """The execution catalog: one row per execution, kept by appends."""


@catalog_group.command(name="rebuild")
@TARGET
def rebuild(target: str) -> None:
    """Derive the catalog from the history again (creating it on an older store)."""
    with open_store(target, readonly=False) as store:
        if not store.keeps_catalog_table:
            out.print(
                f"{store.description} is a database duroxide created: its catalog is derived"
                " from the history on every read, and nothing is added to it"
            )
            return
        count = store.rebuild_catalog()
    out.print(f"catalog rebuilt: {plural(count, 'execution')}")


@catalog_group.command(name="catch-up")
@TARGET
def catch_up(target: str) -> None:
    """Catch the catalog up with rows another program wrote (from the global feed)."""
    with open_store(target, readonly=False) as store:
        changed = store.catalog_catch_up()
    out.print(f"catalog caught up: {plural(changed, 'execution')} changed")
