"""An execution's timeline: the bars the viewer draws, built from its events.

A bar runs from a scheduling event to the event that ends it, as
`eventstore.pairing` pairs them (the one rule, shared with the trace spans and
`eventstore show`):

* an activity, from ActivityScheduled to the ActivityCompleted or
  ActivityFailed whose `source_event_id` names it (or, when the code let go of
  it and nothing ended it since, to the ActivityCancelRequested);
* a timer, from TimerCreated to its TimerFired; the part up to `fire_at_ms` is
  the wait asked for, the rest (if any) is how late it fired;
* a sub-orchestration, from SubOrchestrationScheduled to its completion; when
  the child's own history is in the store, the part until the child's
  OrchestrationStarted is the wait (queued) and the rest the child's run;
* an external wait, from ExternalSubscribed (or ...Persistent) to the event
  that answers it by name, oldest wait first (a queue subscription may take a
  message queued before it: the bar then ends where it starts), or to its
  cancellation, which names it by `source_event_id`.

A bar with no end is open: still waiting while the execution runs, never
awaited once it has ended. A bar whose ends lack a timestamp (legacy rows, read
with `timestamp_ms` 0) is listed without times, never placed at 1970.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from .. import events as ev
from ..pairing import pair_history

__all__ = ["Bar", "Segment", "build_bars"]

_KIND_BY_SCHEDULING: Final[dict[type[ev.EventBase], str]] = {
    ev.ActivityScheduled: "activity",
    ev.TimerCreated: "timer",
    ev.SubOrchestrationScheduled: "sub-orchestration",
    ev.ExternalSubscribed: "external",
    ev.ExternalSubscribedPersistent: "external",
}

_OUTCOME_BY_END: Final[dict[type[ev.EventBase], str]] = {
    ev.ActivityCompleted: "completed",
    ev.ActivityFailed: "failed",
    ev.ActivityCancelRequested: "cancelled",
    ev.TimerFired: "completed",
    ev.SubOrchestrationCompleted: "completed",
    ev.SubOrchestrationFailed: "failed",
    ev.SubOrchestrationCancelRequested: "cancelled",
    ev.ExternalEvent: "completed",
    ev.ExternalEventPersistent: "completed",
    ev.OrchestrationStarted: "completed",  # a queued message carried into this execution
    ev.ExternalSubscribedCancelled: "cancelled",
    ev.ExternalSubscribedPersistentCancelled: "cancelled",
}


@dataclass(slots=True)
class Segment:
    """A part of a bar: `wait` (waiting for something) or `run` (being worked on),
    or `late` (a timer firing after its time)."""

    what: str
    start_ms: int
    end_ms: int

    def as_dict(self) -> dict[str, Any]:
        return {"what": self.what, "start_ms": self.start_ms, "end_ms": self.end_ms}


@dataclass(slots=True)
class Bar:
    kind: str
    label: str
    start_event_id: int
    start_ms: int | None
    end_event_id: int | None = None
    end_ms: int | None = None
    outcome: str = "open"
    segments: list[Segment] = field(default_factory=list)
    child: tuple[str, int] | None = None
    """A sub-orchestration's child (instance, execution), for the link."""

    @property
    def timed(self) -> bool:
        return self.start_ms is not None and (self.end_event_id is None or self.end_ms is not None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "start_event_id": self.start_event_id,
            "end_event_id": self.end_event_id,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "outcome": self.outcome,
            "timed": self.timed,
            "segments": [s.as_dict() for s in self.segments],
            "child": None
            if self.child is None
            else {"instance": self.child[0], "execution": self.child[1]},
        }


def _time(event: ev.EventBase) -> int | None:
    return event.timestamp_ms if event.has_timestamp else None


def _label(event: ev.EventBase) -> str:
    if isinstance(event, ev.ActivityScheduled):
        if event.is_system_call:
            return f"system call {event.name[len(ev.SYSTEM_CALL_PREFIX) :]}"
        return event.name
    if isinstance(event, ev.TimerCreated):
        return "timer"
    if isinstance(event, ev.SubOrchestrationScheduled):
        return f"{event.name} ({event.instance})"
    return str(getattr(event, "name", event.event_type))


ChildStart = Callable[[str], int | None]
"""A child instance id -> the timestamp of its first execution's start, if stored."""


def build_bars(events: list[ev.Event], child_start: ChildStart | None = None) -> list[Bar]:
    """The bars of one execution's events (in event-id order), in the order scheduled.

    Which event ends which bar is `eventstore.pairing`'s rule; a bar the code
    let go of (a cancel request) and nothing ended since ends at the request.
    """
    bars = []
    for pair in pair_history(events).pairs:
        scheduled = pair.scheduled
        kind = _KIND_BY_SCHEDULING[type(scheduled)]
        bar = Bar(kind, _label(scheduled), scheduled.event_id, _time(scheduled))
        if isinstance(scheduled, ev.SubOrchestrationScheduled):
            bar.child = (scheduled.instance, 1)
        end = pair.end if pair.end is not None else pair.cancel_requested
        if end is not None:
            bar.end_event_id = end.event_id
            bar.end_ms = pair.end_ms if end is pair.end else _time(end)
            bar.outcome = _OUTCOME_BY_END.get(type(end), "completed")
        bar.segments = _segments(bar, scheduled, child_start)
        bars.append(bar)
    return bars


def _segments(bar: Bar, scheduled: ev.Event, child_start: ChildStart | None) -> list[Segment]:
    """Wait against run, where the events tell it; nothing when they do not."""
    start, end = bar.start_ms, bar.end_ms
    if start is None or end is None or end < start:
        return []
    if isinstance(scheduled, ev.TimerCreated) and scheduled.fire_at_ms:
        due = min(max(scheduled.fire_at_ms, start), end)
        parts = [Segment("wait", start, due)]
        if end > due:
            parts.append(Segment("late", due, end))
        return parts
    if bar.kind == "external":
        return [Segment("wait", start, end)]
    if isinstance(scheduled, ev.SubOrchestrationScheduled) and child_start is not None:
        began = child_start(scheduled.instance)
        if began is not None and start <= began <= end:
            return [Segment("wait", start, began), Segment("run", began, end)]
    return []
