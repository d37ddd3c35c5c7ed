"""Histories in any tangle of operations, ends and external events, for code
that reads a history's shape (`eventstore.pairing`); beside the valid histories
of `eventstore.testing.strategies`."""

from __future__ import annotations

from typing import Any, Final, cast

from hypothesis import strategies as st

from .. import events as ev
from ..events import Event

__all__ = ["tangled_histories"]


_TANGLED_TYPES: Final = (
    "ActivityScheduled",
    "TimerCreated",
    "SubOrchestrationScheduled",
    "ExternalSubscribed",
    "ExternalSubscribedPersistent",
    "ActivityCompleted",
    "ActivityFailed",
    "ActivityCancelRequested",
    "TimerFired",
    "SubOrchestrationCompleted",
    "SubOrchestrationFailed",
    "SubOrchestrationCancelRequested",
    "ExternalEvent",
    "ExternalEventPersistent",
    "ExternalSubscribedCancelled",
    "ExternalSubscribedPersistentCancelled",
    "CustomStatusUpdated",
)
_TANGLED_FIELDS: Final[dict[str, dict[str, Any]]] = {
    "ActivityScheduled": {"input": '"in"'},
    "TimerCreated": {"fire_at_ms": 0},
    "TimerFired": {"fire_at_ms": 0},
    "SubOrchestrationScheduled": {"instance": "child", "input": '"in"'},
    "ActivityCompleted": {"result": '"out"'},
    "SubOrchestrationCompleted": {"result": '"out"'},
    "ActivityFailed": {"details": ev.ApplicationError(kind="ActivityFailed", message="boom")},
    "SubOrchestrationFailed": {"details": ev.ApplicationError(kind="ActivityFailed", message="x")},
    "ExternalEvent": {"data": '"d"'},
    "ExternalEventPersistent": {"data": '"d"'},
    "CustomStatusUpdated": {"status": None},
}
_SCHEDULING_TYPE_NAMES: Final = frozenset(_TANGLED_TYPES[:5])
_NAMED: Final = frozenset(
    {
        "ActivityScheduled",
        "SubOrchestrationScheduled",
        "ExternalSubscribed",
        "ExternalSubscribedPersistent",
        "ExternalEvent",
        "ExternalEventPersistent",
    }
)


@st.composite
def tangled_histories(
    draw: st.DrawFn, *, max_events: int = 40, names: tuple[str, ...] = ("a", "b")
) -> list[Event]:
    """One execution's events, ids 1..n, of operations, their ends and external
    events in any mix: each end's source_event_id drawn anywhere (an earlier
    event of any kind, itself, a later one, none), external names from `names`
    (few, so waits and arrivals meet), timestamps missing, in order or stamped
    before what they end. Valid or not, as stored data may be: for code that
    reads a history's shape (`eventstore.pairing`). Cheap to draw: payloads
    are fixed."""
    count = draw(st.integers(min_value=1, max_value=max_events))
    history: list[Event] = []
    scheduled: list[int] = []
    for event_id in range(1, count + 1):
        type_name = draw(st.sampled_from(_TANGLED_TYPES))
        fields = dict(_TANGLED_FIELDS.get(type_name, {}))
        if type_name in _NAMED:
            fields["name"] = draw(st.sampled_from(names))
        if type_name.endswith(("CancelRequested", "Cancelled")):
            fields["reason"] = "cancelled"
        if type_name in ev.COMPLETION_SOURCES:
            # Mostly an operation begun earlier (so ends meet, twice at times),
            # else anything at all.
            anything = st.none() | st.integers(1, count + 1)
            begun = st.sampled_from(scheduled) if scheduled else anything
            fields["source_event_id"] = draw(st.one_of(begun, begun, anything))
        if type_name in _SCHEDULING_TYPE_NAMES:
            scheduled.append(event_id)
        stamp = draw(st.sampled_from((0, 1_000 + 10 * event_id, 500)))
        event = ev.EVENT_TYPES[type_name](event_id=event_id, timestamp_ms=stamp, **fields)
        history.append(cast(Event, event))
    return history
