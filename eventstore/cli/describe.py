"""What the terminal says of events: one-line summaries, timelines, pairings.

Everything here is rendering, no command: `show`, `tail` and `demo` call it.
Stored data reaches the terminal only as rich `Text` (never as markup), so an
event carrying `[red]` or `[/]` is printed as written, not styled or eaten.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import events as ev
from ..codec import encode
from ..error_details import failure_summary
from ..pairing import ALREADY_ENDED, NO_SOURCE, NO_WAIT, WRONG_KIND, Pair, pair_history
from ..pairing import NO_TIME as _NO_TIME

__all__ = [
    "NO_TIME",
    "Pairing",
    "format_time",
    "pair_events",
    "summary",
    "timeline_json",
    "timeline_table",
]

NO_TIME: Final = _NO_TIME
"""What a legacy event without a timestamp shows where a time would be (never 1970)."""


def format_time(ms: int) -> str:
    """UTC time with milliseconds, or NO_TIME for an event without a timestamp."""
    if ms <= 0:
        return NO_TIME
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _offset(ms: int, start: int) -> str:
    if ms <= 0 or start <= 0:
        return ""
    return f"+{(ms - start) / 1000:.3f}s"


def _fire_at(ms: int) -> str:
    return f"fire at {format_time(ms) if ms > 0 else ms}"


# What the timeline says of each event type; types not listed show their
# `reason` if they have one.
_SUMMARIES: Final[dict[type, Callable[[Any], str]]] = {
    ev.OrchestrationStarted: lambda e: f"{e.name} v{e.version} input={e.input}",
    ev.ActivityScheduled: lambda e: f"{e.name}({e.input})",
    ev.SubOrchestrationScheduled: lambda e: f"{e.name} as {e.instance} ({e.input})",
    ev.ActivityCompleted: lambda e: f"-> {e.result}",
    ev.SubOrchestrationCompleted: lambda e: f"-> {e.result}",
    ev.OrchestrationCompleted: lambda e: f"output={e.output}",
    ev.ActivityFailed: lambda e: failure_summary(e.details),
    ev.OrchestrationFailed: lambda e: failure_summary(e.details),
    ev.SubOrchestrationFailed: lambda e: failure_summary(e.details),
    ev.TimerCreated: lambda e: _fire_at(e.fire_at_ms),
    ev.TimerFired: lambda e: _fire_at(e.fire_at_ms),
    ev.ExternalEvent: lambda e: f"{e.name}: {e.data}",
    ev.ExternalEventPersistent: lambda e: f"{e.name}: {e.data}",
    ev.ExternalSubscribed: lambda e: e.name,
    ev.ExternalSubscribedPersistent: lambda e: e.name,
    ev.CustomStatusUpdated: lambda e: repr(e.status),
    ev.KeyValueSet: lambda e: f"{e.key}={e.value}",
    ev.KeyValueCleared: lambda e: e.key,
    ev.SystemCall: lambda e: f"{e.op} -> {e.value}",
    ev.OrchestrationContinuedAsNew: lambda e: f"input={e.input}",
    ev.UnknownEvent: lambda e: "(unknown type, kept verbatim)",
}

_METADATA_NOTES: Final = (
    ("worker_id", "worker"),
    ("scheduled_by_worker_id", "worker"),
    ("completed_by_worker_id", "worker"),
    ("retry_count", "retry"),
    ("trace_id", "trace"),
)
"""Phase-2 metadata the timeline shows where an event carries it: (field, word)."""


def _metadata_note(event: ev.Event) -> str:
    notes = [
        f"{word} {value}"
        for field, word in _METADATA_NOTES
        if (value := getattr(event, field, msgspec.UNSET)) is not msgspec.UNSET
    ]
    return f"; {', '.join(notes)}" if notes else ""


def summary(event: ev.Event) -> str:
    """A short description of what an event says (plain text, never markup)."""
    describe = _SUMMARIES.get(type(event))
    if describe is not None:
        return describe(event) + _metadata_note(event)
    reason = getattr(event, "reason", None)
    return (str(reason) if reason is not None else "") + _metadata_note(event)


@dataclass(frozen=True, slots=True)
class Pairing:
    """What the "for" column says of an event that ends (or lets go of) an
    operation: the scheduling event `eventstore.pairing` pairs it with, and the
    time between them where both have one; or why it pairs with nothing."""

    scheduled_id: int | None
    """The event it answers (by source_event_id, or by name for an external event)."""
    scheduled_type: str | None
    """That event's type, None when the execution does not hold it."""
    duration_ms: int | None
    unavailable: str | None
    """Why there is no duration: 'no time' (an end without a timestamp), 'clock
    skew' (the end stamped before the start), or why it pairs with nothing
    ('no source', 'wrong kind', 'already ended', 'no wait', 'never taken')."""
    paired: bool
    ended_by: int | None = None

    def describe(self) -> str:
        of = f"of {self.scheduled_id}" if self.scheduled_id is not None else ""
        if self.paired:
            if self.duration_ms is None:
                return f"{of}, {self.unavailable}"
            return f"{of}, {self.duration_ms / 1000:.3f}s"
        reason = self.unavailable
        if reason == NO_SOURCE:
            return f"{of} (not in this execution)" if of else "(names no event)"
        if reason == WRONG_KIND:
            return f"{of} (a {self.scheduled_type}: not what it ends)"
        if reason == ALREADY_ENDED:
            return f"{of} (already ended by {self.ended_by})"
        if reason == NO_WAIT:
            return "(no wait open: dropped)"
        return f"({reason})"


def pair_events(events: Iterable[ev.Event]) -> dict[int, Pairing]:
    """Event id -> its pairing, for every event that ends (or lets go of) an
    operation; the rule is `eventstore.pairing`'s.

    Durations only where both ends carry a timestamp: a legacy event says
    'no time', never a duration measured from 1970.
    """
    found = pair_history(events)
    pairings: dict[int, Pairing] = {}
    for event_id, pair in found.by_end().items():
        request = pair.cancel_requested
        timed = (
            pair
            if request is None or request.event_id != event_id
            else Pair(pair.scheduled, request)
        )
        scheduled = pair.scheduled
        pairings[event_id] = Pairing(
            scheduled.event_id, scheduled.event_type, timed.duration_ms, timed.no_duration, True
        )
    for unpaired in found.unpaired:
        event = unpaired.event
        if event.event_type == "OrchestrationStarted":
            continue  # a carried message nobody took: nothing this row ends
        pairings[event.event_id] = Pairing(
            event.source_event_id,
            unpaired.source_type,
            None,
            unpaired.reason,
            False,
            unpaired.ended_by,
        )
    return pairings


def _start_ms(events: Sequence[ev.Event]) -> int:
    return next((e.timestamp_ms for e in events if e.has_timestamp), 0)


def timeline_row(
    event: ev.Event, start_ms: int, pairing: Pairing | None
) -> tuple[Text, Text, Text, Text, Text, Text]:
    """One table row, every cell plain Text (stored data is never read as markup)."""
    return (
        Text(str(event.event_id)),
        Text(event.event_type),
        Text(format_time(event.timestamp_ms), style="dim" if not event.has_timestamp else ""),
        Text(_offset(event.timestamp_ms, start_ms)),
        Text(pairing.describe() if pairing is not None else ""),
        Text(summary(event)),
    )


def timeline_table(
    title: str, events: Sequence[ev.Event], *, start_ms: int | None = None, header: bool = True
) -> Table:
    """The timeline of one execution: id, type, time, offset, pairing, details."""
    start = _start_ms(events) if start_ms is None else start_ms
    table = Table(title=Text(title), title_justify="left", show_header=header)
    table.add_column("id", justify="right")
    table.add_column("type")
    table.add_column("time (UTC)")
    table.add_column("offset", justify="right")
    table.add_column("for")
    table.add_column("details", overflow="fold", max_width=60)
    pairings = pair_events(events)
    for event in events:
        table.add_row(*timeline_row(event, start, pairings.get(event.event_id)))
    return table


def print_timeline(
    console: Console, instance_id: str, execution_id: int, events: Sequence[ev.Event]
) -> None:
    console.print(timeline_table(f"{instance_id} execution {execution_id}", events))


def event_json(event: ev.Event, start_ms: int, pairing: Pairing | None) -> dict[str, Any]:
    """One timeline entry as JSON: what the table says, and the event itself."""
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "timestamp_ms": event.timestamp_ms,
        "time": format_time(event.timestamp_ms) if event.has_timestamp else None,
        "offset_ms": (event.timestamp_ms - start_ms) if event.has_timestamp and start_ms else None,
        "source_event_id": event.source_event_id,
        "pairs_with": pairing.scheduled_id if pairing and pairing.paired else None,
        "source_event_type": pairing.scheduled_type if pairing else None,
        "duration_ms": pairing.duration_ms if pairing else None,
        "duration_unavailable": pairing.unavailable if pairing else None,
        "summary": summary(event),
        "event": msgspec.json.decode(encode(event)),
    }


def timeline_json(events: Sequence[ev.Event]) -> list[dict[str, Any]]:
    start = _start_ms(events)
    pairings = pair_events(events)
    return [event_json(e, start, pairings.get(e.event_id)) for e in events]
