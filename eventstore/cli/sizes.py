"""`eventstore sizes`: history sizes against duroxide's limits, and what to continue as new."""

from __future__ import annotations

import json
import re
from typing import Any, Final

import click
from rich.table import Table
from rich.text import Text

from ..sizes import MAX_HISTORY_BYTES, MAX_PAYLOAD_BYTES, MAX_SMALL_VALUE_BYTES
from ..sizes.advisor import DEFAULT_THRESHOLD, DEFAULT_TOP, SizeReport, measure
from ..sizes.limits import SOURCE
from .app import main
from .core import TARGET, err, open_store, out, progress_bar

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_UNITS: Final = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


class ByteSize(click.ParamType[int, Any]):
    """A size in bytes: 1048576, 512KiB, 1MiB, 2.5MB."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            size = value
        else:
            match = _SIZE.match(str(value))
            if match is None:
                self.fail(f"{value!r} is not a size such as 512KiB, 1MiB or 1048576", param, ctx)
            size = int(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])
        if size < 1:
            self.fail("the size must be at least one byte", param, ctx)
        return size


def human(size: float) -> str:
    """Bytes in binary units: 512 B, 3.0 KiB, 1.25 MiB."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:.2f} {unit}"
    return f"{int(size)} B"


@main.command()
@TARGET
@click.option(
    "--threshold",
    type=ByteSize(),
    default=DEFAULT_THRESHOLD,
    show_default="1MiB",
    help="History size past which an execution should have continued as new (512KiB, 2MiB).",
)
@click.option(
    "--top",
    type=click.IntRange(min=0),
    default=DEFAULT_TOP,
    show_default=True,
    help="How many of the largest executions, payloads and names to list.",
)
@click.option("--json", "as_json", is_flag=True, help="The whole report as one JSON object.")
def sizes(target: str, threshold: int, top: int, as_json: bool) -> None:
    """History sizes against duroxide's limits (5 MiB of history per execution,
    3 MiB per payload): the largest executions and payloads, by orchestration and
    activity, and the orchestrations whose histories grow past --threshold and
    should continue as new. One pass over the store, in constant memory."""
    with (
        open_store(target, readonly=True) as store,
        progress_bar("sizes", store.count()) as advance,
    ):
        report = measure(
            store,
            threshold_bytes=threshold,
            top=top,
            on_undecodable=lambda m: err.print(Text(f"undecodable row at {m} (bytes counted)")),
            progress=advance,
        )
    if as_json:
        click.echo(json.dumps(report.as_json(), ensure_ascii=False))
        return
    _print_report(report)


def _print_report(report: SizeReport) -> None:
    out.print(
        Text(
            f"duroxide's limits: {human(MAX_HISTORY_BYTES)} of history per execution, "
            f"{human(MAX_PAYLOAD_BYTES)} per payload, {human(MAX_SMALL_VALUE_BYTES)} per "
            f"external event ({SOURCE})"
        )
    )
    out.print(
        Text(
            f"{report.executions} executions, {report.events} events, {human(report.bytes)}; "
            f"{report.executions_over_limit} over the history limit, "
            f"{report.executions_over_threshold} past {human(report.threshold_bytes)}; "
            f"{report.payloads} payloads, {report.payloads_over_limit} over their limit"
            + (f"; {report.undecodable} undecodable rows" if report.undecodable else "")
        )
    )
    if report.top:
        out.print(_executions_table(report))
        out.print(_payloads_table(report))
        out.print(_names_table(report))
    out.print(_orchestrations_table(report))


def _percent(size: int, limit: int) -> str:
    return f"{100.0 * size / limit:.1f}%"


def _executions_table(report: SizeReport) -> Table:
    table = Table(title="Largest executions", title_justify="left")
    for column in ("instance", "execution", "orchestration", "status", "events", "bytes"):
        table.add_column(column, justify="right" if column in ("events", "bytes") else "left")
    table.add_column(f"of {human(MAX_HISTORY_BYTES)}", justify="right")
    for e in report.largest_executions:
        table.add_row(
            Text(e.instance_id),
            str(e.execution_id),
            Text(e.orchestration or ""),
            e.status,
            str(e.events),
            human(e.bytes),
            _percent(e.bytes, MAX_HISTORY_BYTES),
        )
    return table


def _payloads_table(report: SizeReport) -> Table:
    table = Table(title="Largest payloads", title_justify="left")
    for column in ("kind", "name", "where", "field", "bytes", "of limit"):
        table.add_column(column, justify="right" if column in ("bytes", "of limit") else "left")
    for p in report.largest_payloads:
        where = f"{p.instance_id} #{p.execution_id}/{p.event_id}"
        table.add_row(
            p.kind, Text(p.name), Text(where), p.field, human(p.bytes), _percent(p.bytes, p.limit)
        )
    return table


def _names_table(report: SizeReport) -> Table:
    table = Table(title="Payloads by orchestration and activity", title_justify="left")
    for column in ("kind", "name", "payloads", "largest", "mean", "total"):
        table.add_column(column, justify="left" if column in ("kind", "name") else "right")
    for n in report.names_by_largest()[: report.top]:
        mean = n.total_bytes / n.payloads if n.payloads else 0
        table.add_row(
            n.kind,
            Text(n.name),
            str(n.payloads),
            human(n.max_bytes),
            human(mean),
            human(n.total_bytes),
        )
    return table


def _orchestrations_table(report: SizeReport) -> Table:
    table = Table(title="Orchestrations", title_justify="left")
    for column in ("orchestration", "executions", "largest history", "most events", "advice"):
        table.add_column(
            column, justify="right" if column not in ("orchestration", "advice") else "left"
        )
    for o in report.orchestrations_by_largest():
        table.add_row(
            Text(o.name),
            str(o.executions),
            human(o.max_bytes),
            str(o.max_events),
            Text(o.advice(report.threshold_bytes) or ""),
        )
    return table
