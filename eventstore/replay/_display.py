"""How history events and failures read in mismatch messages and to replayed code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from .. import events as ev
from ..events import SYSTEM_CALL_PREFIX, ErrorDetails, Event

__all__ = ["describe_event", "display_message", "summary_line"]


def describe_event(event: Event) -> str:
    """A short description of a history event, for mismatch messages."""
    describe = _EVENT_DESCRIPTIONS.get(type(event))
    return describe(event) if describe is not None else event.event_type


def _activity_scheduled(event: ev.ActivityScheduled) -> str:
    name = event.name
    if name.startswith(SYSTEM_CALL_PREFIX):
        return f"ActivityScheduled system call {name[len(SYSTEM_CALL_PREFIX) :]!r}"
    extra = ""
    if isinstance(event.session_id, str):
        extra += f", session={event.session_id!r}"
    if isinstance(event.tag, str):
        extra += f", tag={event.tag!r}"
    return f"ActivityScheduled {name!r} (input={event.input!r}{extra})"


def _subscribed(event: ev.ExternalSubscribed | ev.ExternalSubscribedPersistent) -> str:
    return f"{event.event_type} {event.name!r}"


def _failed(event: ev.OrchestrationFailed) -> str:
    return f"OrchestrationFailed ({summary_line(display_message(event.details))!r})"


_EVENT_DESCRIPTIONS: Final[dict[type[Event], Callable[[Any], str]]] = {
    ev.ActivityScheduled: _activity_scheduled,
    ev.SubOrchestrationScheduled: lambda e: (
        f"SubOrchestrationScheduled {e.name!r} as {e.instance!r} (input={e.input!r})"
    ),
    ev.OrchestrationChained: lambda e: (
        f"OrchestrationChained {e.name!r} as {e.instance!r} (input={e.input!r})"
    ),
    ev.ExternalSubscribed: _subscribed,
    ev.ExternalSubscribedPersistent: _subscribed,
    ev.TimerCreated: lambda e: f"TimerCreated (fire at {e.fire_at_ms})",
    ev.SystemCall: lambda e: f"SystemCall {e.op!r} -> {e.value!r}",
    ev.CustomStatusUpdated: lambda e: f"CustomStatusUpdated {e.status!r}",
    ev.KeyValueSet: lambda e: f"KeyValueSet {e.key!r}={e.value!r}",
    ev.KeyValueCleared: lambda e: f"KeyValueCleared {e.key!r}",
    ev.OrchestrationCompleted: lambda e: f"OrchestrationCompleted (output={e.output!r})",
    ev.OrchestrationContinuedAsNew: lambda e: f"OrchestrationContinuedAsNew (input={e.input!r})",
    ev.OrchestrationFailed: _failed,
}
"""Event type -> its description; other types are described by their name."""


def display_message(details: ErrorDetails) -> str:
    """The message duroxide hands to code for a failure (its `display_message`)."""
    for variant, display in _DISPLAY:
        if isinstance(details, variant):
            return display(details)
    return repr(details)


def _application(details: ev.ApplicationError) -> str:
    kind = details.kind
    if isinstance(kind, ev.Cancelled):
        return f"canceled: {kind.reason}"
    if kind == "Panicked":
        return f"orchestration panicked: {details.message}"
    return details.message


def _configuration(details: ev.ConfigurationError) -> str:
    if details.kind == "Nondeterminism":
        if details.message is not None:
            return f"nondeterministic: {details.message}"
        return f"nondeterministic in {details.resource}"
    return details.message if details.message is not None else f"{details.kind}"


def _poison(details: ev.PoisonError) -> str:
    mt = details.message_type
    head = f"exceeded {details.attempt_count} attempts (max {details.max_attempts})"
    if isinstance(mt, ev.OrchestrationMessage):
        return f"poison: orchestration {mt.instance} {head}"
    if isinstance(mt, ev.ActivityMessage):
        return f"poison: activity {mt.activity_name}#{mt.activity_id} {head}"
    if isinstance(mt, ev.FailedDeserializationMessage):
        return (
            f"poison: orchestration {mt.instance} history deserialization failed after "
            f"{details.attempt_count} attempts (max {details.max_attempts}): {mt.error}"
        )
    return f"poison: {details.message}"


_DISPLAY: Final[tuple[tuple[type[ErrorDetails], Callable[[Any], str]], ...]] = (
    (ev.ApplicationError, _application),
    (ev.InfrastructureError, lambda d: f"infrastructure:{d.operation}: {d.message}"),
    (ev.ConfigurationError, _configuration),
    (ev.PoisonError, _poison),
    (ev.UnknownErrorDetails, lambda d: f"{d.name}: {d.value}"),
)
"""ErrorDetails variant -> the message duroxide shows for it."""


def summary_line(message: str) -> str:
    """The last non-blank line: the `Type: message` line of a Python traceback."""
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
