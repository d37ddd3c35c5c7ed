"""Which history events record which actions, and what completions deliver.

A scheduling event must record the action at the head of the queue: the same
kind with the same identifying fields (activities: name, input, session and
tag; timers: position only; external events and queues: name;
sub-orchestrations: name and input; detached starts: name, instance, input;
system calls: their reserved activity name, or the legacy SystemCall op).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from .. import events as ev
from ..events import Event
from ._actions import NEW_GUID, RECORD_KINDS, UTC_NOW, Action, Outcome
from ._display import display_message

__all__ = [
    "COMPLETION_KINDS",
    "SCHEDULING",
    "completion_outcome",
    "is_legacy",
    "matches",
    "skippable",
    "unrecorded",
]

SCHEDULING: Final = (
    ev.ActivityScheduled,
    ev.TimerCreated,
    ev.ExternalSubscribed,
    ev.ExternalSubscribedPersistent,
    ev.SubOrchestrationScheduled,
    ev.OrchestrationChained,
    ev.CustomStatusUpdated,
    ev.KeyValueSet,
    ev.KeyValueCleared,
    ev.KeyValuesCleared,
    ev.SystemCall,
)
"""Events that record an action the code took."""

COMPLETION_KINDS: Final[dict[type[Event], tuple[str, ...]]] = {
    ev.ActivityCompleted: ("activity", "new_guid", "utc_now"),
    ev.ActivityFailed: ("activity", "new_guid", "utc_now"),
    ev.TimerFired: ("timer",),
    ev.SubOrchestrationCompleted: ("sub_orchestration",),
    ev.SubOrchestrationFailed: ("sub_orchestration",),
}
"""Completion event type -> the action kinds its source event may record."""


def matches(action: Action, event: Event) -> bool:
    """Whether the scheduling `event` records `action`."""
    match = _MATCHERS.get(type(event))
    return match is not None and match(action, event)


def _activity_scheduled(action: Action, event: ev.ActivityScheduled) -> bool:
    k, name = action.kind, event.name
    if k == "new_guid":
        return name == NEW_GUID
    if k == "utc_now":
        return name == UTC_NOW
    session = event.session_id if isinstance(event.session_id, str) else None
    tag = event.tag if isinstance(event.tag, str) else None
    return (
        k == "activity"
        and action.name == name
        and action.input == event.input
        and action.session_id == session
        and action.tag == tag
    )


def _system_call(action: Action, event: ev.SystemCall) -> bool:
    k, op = action.kind, event.op
    return (k == "new_guid" and op == "new_guid") or (
        k == "utc_now" and op in ("utc_now_ms", "utc_now")
    )


def _chained(action: Action, event: ev.OrchestrationChained) -> bool:
    return (
        action.kind == "start_orchestration"
        and action.name == event.name
        and action.instance == event.instance
        and action.input == event.input
    )


_MATCHERS: Final[dict[type[Event], Callable[[Action, Any], bool]]] = {
    ev.ActivityScheduled: _activity_scheduled,
    ev.SystemCall: _system_call,
    ev.TimerCreated: lambda a, e: a.kind == "timer",
    ev.ExternalSubscribed: lambda a, e: a.kind == "wait_event" and a.name == e.name,
    ev.ExternalSubscribedPersistent: lambda a, e: a.kind == "dequeue_event" and a.name == e.name,
    ev.SubOrchestrationScheduled: lambda a, e: (
        a.kind == "sub_orchestration" and a.name == e.name and a.input == e.input
    ),
    ev.OrchestrationChained: _chained,
    ev.CustomStatusUpdated: lambda a, e: a.kind == "custom_status",
    ev.KeyValueSet: lambda a, e: a.kind == "kv_set" and a.name == e.key and a.value == e.value,
    ev.KeyValueCleared: lambda a, e: a.kind == "kv_clear" and a.name == e.key,
    ev.KeyValuesCleared: lambda a, e: a.kind == "kv_clear_all",
}
"""Scheduling event type -> whether it records a given action."""


def is_legacy(event: Event) -> bool:
    """V0 events carry no writer version; they could not record every action kind."""
    return event.duroxide_version == ""


def skippable(action: Action, event: Event) -> bool:
    """Whether `action` may be missing before `event` (V0 recorded no state changes)."""
    return action.kind in RECORD_KINDS and is_legacy(event)


def unrecorded(action: Action, event: Event) -> str:
    """What the code did, for a mismatch where `event` does not record `action`."""
    extra = ""
    if action.kind == "dequeue_event" and is_legacy(event):
        extra = " (legacy V0 histories cannot record queue subscriptions)"
    verb = "recorded" if action.kind in RECORD_KINDS else "scheduled"
    return f"{verb} {action.describe()}{extra}"


def completion_outcome(event: Event, action: Action) -> Outcome:
    """What a completion event delivers to the action it completes."""
    match event:
        case ev.ActivityCompleted(result=result):
            if action.kind == "new_guid":
                return Outcome(True, json.dumps(result))
            return Outcome(True, result)
        case ev.SubOrchestrationCompleted(result=result):
            return Outcome(True, result)
        case ev.ActivityFailed(details=d) | ev.SubOrchestrationFailed(details=d):
            return Outcome(False, display_message(d))
    return Outcome(True, "null")  # TimerFired
