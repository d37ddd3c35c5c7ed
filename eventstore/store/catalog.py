"""The execution catalog's one rule: what an execution's record says, from its events.

One row per execution (instance, execution): orchestration name and version,
status, start and end, last event id, event count, bytes and day shard. It is
derived state, like the stream metadata event stores keep beside their
streams (KurrentDB's stream metadata, Marten's streams table):

* an append moves its execution's row forward in its own transaction
  (`advance`, called from `_Appender.write_prepared`), so the catalog and the
  history commit together or not at all;
* whatever else writes rows (import, migrations, another program) has the
  executions it touched recomputed from the history (`refresh`,
  `record_from_summary`), and `catalog_ops` catches up after other programs
  from the global feed, rebuilds, and compares (verify).

Every record, whichever way it is made, comes from the functions here: the
status from the terminal event (`status_of`), the times from the events'
`timestamp_ms` (0 is "no time", never 1970), the shard from
`derive_shard_key` (store/shard_key.py, re-exported by eventstore.lifecycle).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec

from .. import events as ev
from ..error_details import ApplicationError, Cancelled
from ..errors import DecodeError
from ..events import Event
from .protocol import CatalogDelta, CatalogRow, CatalogWriter, ExecutionSummary, NewEvents
from .shard_key import derive_shard_key

if TYPE_CHECKING:
    from .history import HistoryStore

__all__ = [
    "STATUSES",
    "ExecutionRecord",
    "advance",
    "as_row",
    "catalog_text",
    "from_row",
    "record_from_summary",
    "refresh",
    "row_after",
    "status_of",
]

RUNNING: Final = "running"
STATUSES: Final = ("running", "completed", "failed", "continued_as_new", "cancelled")
"""Every status a record can have."""

_BY_TERMINAL: Final = {
    "OrchestrationCompleted": "completed",
    "OrchestrationFailed": "failed",
    "OrchestrationContinuedAsNew": "continued_as_new",
}


class ExecutionRecord(msgspec.Struct, frozen=True, gc=False):
    """One execution as the catalog lists it (`HistoryStore.catalog_executions`)."""

    instance_id: str
    execution_id: int
    name: str | None
    """The orchestration's name (None when the first row is no readable
    OrchestrationStarted: verify names that row; a NUL in it reads U+FFFD)."""
    version: str | None
    status: str
    """One of STATUSES: running, completed, failed, continued_as_new, cancelled
    (an OrchestrationFailed whose error is a cancellation)."""
    started_ms: int | None
    """The OrchestrationStarted timestamp; None when the event carries none
    (legacy rows read with timestamp_ms 0)."""
    ended_ms: int | None
    """The terminal event's timestamp; None while running or without one."""
    last_event_id: int
    event_count: int
    bytes: int
    """The sum of the stored event_data sizes, in bytes."""
    shard: str
    """The day shard (`derive_shard_key(started_ms)`, store/shard_key.py)."""

    @property
    def duration_ms(self) -> int | None:
        """ended_ms - started_ms, when both are known."""
        if self.started_ms is None or self.ended_ms is None:
            return None
        return self.ended_ms - self.started_ms


def status_of(event: Event | None) -> str:
    """The status an execution has when `event` is its last event."""
    if event is None:
        return RUNNING
    status = _BY_TERMINAL.get(event.event_type, RUNNING)
    if status == "failed":
        details = getattr(event, "details", None)
        if isinstance(details, ApplicationError) and isinstance(details.kind, Cancelled):
            return "cancelled"
    return status


def catalog_text(value: str) -> str:
    """A name or version as the catalog keeps it: NUL as U+FFFD, because
    PostgreSQL's text cannot hold NUL and both backends must agree (the
    event itself keeps it, escaped in its JSON)."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _time(timestamp_ms: int) -> int | None:
    return timestamp_ms if timestamp_ms > 0 else None


def advance(
    store: HistoryStore, writer: CatalogWriter, written: NewEvents, filled: list[Event], last: int
) -> None:
    """Move the execution's catalog row past one append, in the append's transaction.

    `written` holds the rows as inserted (legacy bytes in a dual-write
    window); `last` is the id the append found stored. A new execution's row
    is built from the batch (its first event is the OrchestrationStarted the
    append contract demands); an existing row moves forward only when it
    still ends at `last`. When it does not, rows were written without the
    catalog (another program): the row is recomputed from the history in this
    same transaction, so it is exact either way.
    """
    row = row_after(written, filled, last)
    if not writer.catalog_advance(CatalogDelta(row, last)):
        refresh(store, writer, written.instance_id, written.execution_id)


def row_after(written: NewEvents, filled: list[Event], last: int) -> CatalogRow:
    """The catalog's change for one append after the stored `last` event: a
    new execution's whole row (`last` 0), else the fields that move (status,
    end, last id) and the increments (events, bytes), name, version, start
    and shard left None/empty. `advance` and the one-flight append
    (store/one_flight.py) both take it from here."""
    # Runs in every append's transaction: plain locals, no helper calls on
    # the common path (a continuing, running execution).
    final = filled[-1]
    status = _BY_TERMINAL.get(final.event_type)
    if status is None:
        status, ended = RUNNING, None
    else:
        if status == "failed":
            status = status_of(final)
        ended = final.timestamp_ms if final.timestamp_ms > 0 else None
    event_ids = written.event_ids
    name = version = started = None
    shard = ""
    if last == 0:
        first = filled[0]
        if type(first) is ev.OrchestrationStarted:
            name, version = catalog_text(first.name), catalog_text(first.version)
        started = _time(first.timestamp_ms)
        shard = written.shard or derive_shard_key(started)  # prepare derived it
    return (
        written.instance_id,
        written.execution_id,
        name,
        version,
        status,
        started,
        ended,
        event_ids[-1],
        len(event_ids),
        sum(map(len, written.event_data)),
        shard,
    )


def refresh(
    store: HistoryStore, writer: CatalogWriter, instance_id: str, execution_id: int
) -> None:
    """Recompute one execution's row from the history, in `writer`'s transaction
    (removed when the execution has no rows any more)."""
    summary = writer.execution_summary(instance_id, execution_id)
    if summary is None:
        writer.catalog_remove([(instance_id, execution_id)])
    else:
        writer.catalog_put([as_row(record_from_summary(store, summary))])


def _decoded(store: HistoryStore, summary: ExecutionSummary, which: int) -> Event | None:
    event_id, event_type, data = summary.first if which == 0 else summary.last
    try:
        return store._decode(
            (event_id, event_type, data, 0), summary.instance_id, summary.execution_id
        )
    except DecodeError:
        return None  # verify names the row; the record says what it can


def record_from_summary(store: HistoryStore, summary: ExecutionSummary) -> ExecutionRecord:
    """The record of an execution as the history holds it (rebuild, catch-up, verify)."""
    first = _decoded(store, summary, 0)
    last = first if summary.event_count == 1 else _decoded(store, summary, 1)
    name = version = None
    started: int | None = None
    if isinstance(first, ev.OrchestrationStarted):
        name, version = catalog_text(first.name), catalog_text(first.version)
        started = _time(first.timestamp_ms)
    ended = None
    if last is not None and last.event_type in ev.TERMINAL_TYPES:
        ended = _time(last.timestamp_ms)
    return ExecutionRecord(
        summary.instance_id,
        summary.execution_id,
        name,
        version,
        status_of(last),
        started,
        ended,
        summary.last_event_id,
        summary.event_count,
        summary.bytes,
        derive_shard_key(started),
    )


def as_row(record: ExecutionRecord) -> CatalogRow:
    row: CatalogRow = msgspec.structs.astuple(record)
    return row


def from_row(row: CatalogRow) -> ExecutionRecord:
    return ExecutionRecord(*row)
