"""Which event ends which: the one pairing rule for reading a history's shape.

An operation begins with a scheduling event (ActivityScheduled, TimerCreated,
SubOrchestrationScheduled, ExternalSubscribed, ExternalSubscribedPersistent)
and something later says how it went. Two ways name the beginning:

* **by source_event_id**: completions, failures, fired timers and a
  subscription's cancellation name the scheduling event; `events.COMPLETION_SOURCES`
  says which types each may name (an ActivityCompleted naming a TimerCreated
  pairs with nothing);
* **by name**, for external events (the wire format: "matched by name, not by
  source id"): an ExternalEvent answers the oldest still-open ExternalSubscribed
  of its name, and one that arrives with no wait open is dropped, as duroxide
  drops it. A queued message (ExternalEventPersistent) answers the oldest open
  queue subscription of its name, or waits in the queue until the next one
  subscribes; messages carried into a continued execution
  (OrchestrationStarted's `carry_forward_events`) start the queue. This is
  the rule replay's inbox follows (`replay/_inbox.py`).

Each scheduling event is ended at most once: by the first event that ends it;
a later one naming it is reported (`Unpaired`, `ALREADY_ENDED`), never dropped
and never paired twice. A cancel request (ActivityCancelRequested,
SubOrchestrationCancelRequested) is duroxide's breadcrumb that the code let go
of the operation (a select's loser); the work may still finish and its
completion is still recorded, so the request is kept on the pair
(`Pair.cancel_requested`) and does not end it.

`Pairer` takes events one at a time (traces stream an execution), what it
keeps is the open operations and each event id's type; `pair_history` pairs a
whole execution. The viewer's bars, the trace spans and the terminal's "for"
column are all built from these pairs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Final

import msgspec

from . import events as ev

__all__ = [
    "ALREADY_ENDED",
    "CLOCK_SKEW",
    "NEVER_TAKEN",
    "NO_SOURCE",
    "NO_TIME",
    "NO_WAIT",
    "OPEN",
    "SCHEDULING_TYPES",
    "WRONG_KIND",
    "HistoryPairs",
    "Pair",
    "Pairer",
    "Unpaired",
    "pair_history",
]

# Why an event that ends something ends nothing (`Unpaired.reason`).
NO_SOURCE: Final = "no source"
"""Its source_event_id names no earlier event of this execution."""
WRONG_KIND: Final = "wrong kind"
"""Its source_event_id names an event it cannot end (a TimerFired naming an activity)."""
ALREADY_ENDED: Final = "already ended"
"""What it names was ended (or, for a cancel request, let go of) by an earlier event."""
NO_WAIT: Final = "no wait"
"""An external event that arrived with no wait of its name open: dropped, as duroxide drops it."""
NEVER_TAKEN: Final = "never taken"
"""A queued message no queue subscription took (by the end of what was paired)."""

# Why a pair has no duration (`Pair.no_duration`).
NO_TIME: Final = "no time"
"""An end without a timestamp (legacy rows read with timestamp_ms 0)."""
CLOCK_SKEW: Final = "clock skew"
"""The end stamped before the start."""
OPEN: Final = "open"
"""Nothing ended it (yet)."""

SCHEDULING_TYPES: Final[frozenset[type[ev.EventBase]]] = frozenset(
    {
        ev.ActivityScheduled,
        ev.TimerCreated,
        ev.SubOrchestrationScheduled,
        ev.ExternalSubscribed,
        ev.ExternalSubscribedPersistent,
    }
)
"""The events that begin an operation something later ends."""

_DELIVERY_OF: Final[dict[type[ev.EventBase], type[ev.EventBase]]] = {
    ev.ExternalEvent: ev.ExternalSubscribed,
    ev.ExternalEventPersistent: ev.ExternalSubscribedPersistent,
}
"""An external event type -> the subscription type it answers (by name)."""

_SUBSCRIPTIONS: Final = frozenset(_DELIVERY_OF.values())

_CANCEL_REQUESTS: Final = frozenset({"ActivityCancelRequested", "SubOrchestrationCancelRequested"})


class Pair(msgspec.Struct, frozen=True, gc=False):
    """A scheduling event and the event that ended it (None: still open)."""

    scheduled: ev.Event
    end: ev.Event | None = None
    by_name: bool = False
    """Matched as an external wait, by name in order, rather than by source_event_id."""
    cancel_requested: ev.Event | None = None
    """The cancel request naming it, if the code let go of it."""

    @property
    def end_ms(self) -> int | None:
        """When it ended: None while open or when the end has no timestamp.

        A queued message taken by a later subscription ended the wait as it
        began (the end event comes first): the subscription's own time.
        """
        end = self.end
        if end is None or not end.has_timestamp:
            return None
        if end.event_id < self.scheduled.event_id:
            return self.scheduled.timestamp_ms if self.scheduled.has_timestamp else None
        return end.timestamp_ms

    @property
    def duration_ms(self) -> int | None:
        """Milliseconds from start to end where both ends are stamped and in order."""
        end_ms = self.end_ms
        if end_ms is None or not self.scheduled.has_timestamp:
            return None
        duration = end_ms - self.scheduled.timestamp_ms
        return duration if duration >= 0 else None

    @property
    def no_duration(self) -> str | None:
        """Why `duration_ms` is None (OPEN, NO_TIME, CLOCK_SKEW), or None when it is not."""
        if self.end is None:
            return OPEN
        end_ms = self.end_ms
        if end_ms is None or not self.scheduled.has_timestamp:
            return NO_TIME
        return CLOCK_SKEW if end_ms < self.scheduled.timestamp_ms else None


class Unpaired(msgspec.Struct, frozen=True, gc=False):
    """An event that ends something, and ends nothing: reported, never dropped."""

    event: ev.Event
    reason: str
    """NO_SOURCE, WRONG_KIND, ALREADY_ENDED, NO_WAIT or NEVER_TAKEN."""
    source_type: str | None = None
    """The type of the event its source_event_id names, where this execution holds it."""
    ended_by: int | None = None
    """ALREADY_ENDED: the event id that ended (or let go of) what it names."""


class Pairer:
    """One execution's events in event-id order, one at a time (`add`)."""

    __slots__ = ("_ended_by", "_open", "_queued", "_types", "_waits")

    def __init__(self) -> None:
        self._types: dict[int, str] = {}
        """Every event id seen -> its type: what a source_event_id may name."""
        self._open: dict[int, Pair] = {}
        """Scheduling event id -> its pair, while nothing has ended it."""
        self._ended_by: dict[int, int] = {}
        self._waits: dict[tuple[type[ev.EventBase], str], deque[int]] = {}
        """(subscription type, name) -> open subscriptions, oldest first (some may
        have been cancelled since: skipped when reached)."""
        self._queued: dict[str, deque[ev.Event]] = {}
        """Queue name -> messages no subscription has taken yet, oldest first."""

    def add(self, event: ev.Event) -> Pair | Unpaired | None:
        """Take the next event: its pair (opened, noted or ended by it, or ended
        at once by a queued message), what it failed to end, or None."""
        route = _ROUTES.get(type(event))
        found = route(self, event) if route is not None else None
        self._types.setdefault(event.event_id, event.event_type)
        return found

    def _started(self, event: ev.Event) -> None:
        assert isinstance(event, ev.OrchestrationStarted)
        if event.carry_forward_events:
            for name, _data in event.carry_forward_events:
                self._queued.setdefault(name, deque()).append(event)

    def open_pairs(self) -> list[Pair]:
        """What nothing has ended, in the order scheduled."""
        return list(self._open.values())

    def never_taken(self) -> list[Unpaired]:
        """Queued messages no subscription took (carried ones name their OrchestrationStarted)."""
        return [
            Unpaired(message, NEVER_TAKEN) for queue in self._queued.values() for message in queue
        ]

    def _schedule(self, event: ev.Event) -> Pair:
        pair = Pair(event)
        if event.event_id in self._types:
            return pair  # a repeated event id (damaged data): the first one keeps it
        self._open[event.event_id] = pair
        if type(event) in _SUBSCRIPTIONS:
            assert isinstance(event, ev.ExternalSubscribed | ev.ExternalSubscribedPersistent)
            queued = self._queued.get(event.name)
            if queued and isinstance(event, ev.ExternalSubscribedPersistent):
                return self._close(pair, queued.popleft(), by_name=True)
            self._waits.setdefault((type(event), event.name), deque()).append(event.event_id)
        return pair

    def _deliver(self, event: ev.Event) -> Pair | Unpaired | None:
        assert isinstance(event, ev.ExternalEvent | ev.ExternalEventPersistent)
        waiting = self._waits.get((_DELIVERY_OF[type(event)], event.name))
        while waiting:
            pair = self._open.get(waiting.popleft())
            if pair is not None:  # else cancelled meanwhile
                return self._close(pair, event, by_name=True)
        if isinstance(event, ev.ExternalEventPersistent):
            self._queued.setdefault(event.name, deque()).append(event)
            return None
        return Unpaired(event, NO_WAIT)

    def _end_by_source(self, event: ev.Event) -> Pair | Unpaired:
        source = event.source_event_id
        source_type = self._types.get(source) if source is not None else None
        if source is None or source_type is None:
            return Unpaired(event, NO_SOURCE)
        if source_type not in ev.COMPLETION_SOURCES[event.event_type]:
            return Unpaired(event, WRONG_KIND, source_type)
        pair = self._open.get(source)
        if pair is None:
            return Unpaired(event, ALREADY_ENDED, source_type, self._ended_by.get(source))
        if event.event_type in _CANCEL_REQUESTS:
            if pair.cancel_requested is not None:
                return Unpaired(event, ALREADY_ENDED, source_type, pair.cancel_requested.event_id)
            pair = self._open[source] = Pair(pair.scheduled, None, False, event)
            return pair
        return self._close(pair, event, by_name=False)

    def _close(self, pair: Pair, end: ev.Event, *, by_name: bool) -> Pair:
        scheduled_id = pair.scheduled.event_id
        del self._open[scheduled_id]
        self._ended_by[scheduled_id] = end.event_id
        return Pair(pair.scheduled, end, by_name, pair.cancel_requested)


_Route = Callable[[Pairer, ev.Event], "Pair | Unpaired | None"]

_ROUTES: Final[dict[type[ev.EventBase], _Route]] = {
    **dict.fromkeys(SCHEDULING_TYPES, Pairer._schedule),
    **dict.fromkeys(_DELIVERY_OF, Pairer._deliver),
    **{ev.EVENT_TYPES[name]: Pairer._end_by_source for name in ev.COMPLETION_SOURCES},
    ev.OrchestrationStarted: Pairer._started,
}
"""Event type -> what it does to the pairing (types not listed do nothing)."""


class HistoryPairs(msgspec.Struct, frozen=True):
    """One execution's pairs: every scheduling event with what ended it, and
    every event that ends something and ended nothing."""

    pairs: tuple[Pair, ...]
    """In the order scheduled; an open one has `end` None."""
    unpaired: tuple[Unpaired, ...]
    """In event order; queued messages never taken last."""

    def by_end(self) -> dict[int, Pair]:
        """End (or cancel request) event id -> the pair it belongs to."""
        found: dict[int, Pair] = {}
        for pair in self.pairs:
            if pair.cancel_requested is not None:
                found[pair.cancel_requested.event_id] = pair
            end = pair.end
            if end is not None and not isinstance(end, ev.OrchestrationStarted):
                found.setdefault(end.event_id, pair)  # not a message carried in at the start
        return found


def pair_history(events: Iterable[ev.Event]) -> HistoryPairs:
    """Pair one execution's events (in event-id order)."""
    pairer = Pairer()
    pairs: dict[int, Pair] = {}
    unpaired: list[Unpaired] = []
    add = pairer.add
    for event in events:
        found = add(event)
        if found is None:
            continue
        if isinstance(found, Pair):
            known = pairs.get(found.scheduled.event_id)
            if known is None or known.scheduled is found.scheduled:  # not a repeated id
                pairs[found.scheduled.event_id] = found
        else:
            unpaired.append(found)
    unpaired += pairer.never_taken()
    return HistoryPairs(tuple(pairs.values()), tuple(unpaired))
