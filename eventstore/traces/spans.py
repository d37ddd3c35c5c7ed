"""One execution's events -> its spans.

An execution is a span (OrchestrationStarted to its terminal event; a
running one ends at its last stamped event and keeps status unset). Beneath
it, a span per

* activity: ActivityScheduled to the ActivityCompleted / ActivityFailed whose
  source_event_id names it (system calls, duroxide's reserved activities,
  are bookkeeping and get none, as in the metrics);
* timer: TimerCreated to its TimerFired;
* external wait: ExternalSubscribed to the ExternalEvent that answers it by
  name, or to the subscription's cancellation; the persistent (queue) kinds
  alike;
* sub-orchestration: SubOrchestrationScheduled to its Completed / Failed,
  linked to the child's execution span in the child's own trace.

A child instance's execution span links back to the parent's
sub-orchestration span when its start names the parent execution.

Which event ends which span is `eventstore.pairing`'s rule, shared with the
viewer and `eventstore show`.

Only where both ends carry a timestamp: events without one produce no span
(`TraceCounts` counts them, and the spans they cost). Status comes from
ErrorDetails: a failure is ERROR with its message, a completion OK.
Events arrive one at a time; what is kept is the execution's open starts
(and the pairing's open scheduling events and event types) and its finished
spans, never the whole history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from msgspec import UNSET

from .. import events as ev
from ..metrics.durations import activity_outcome
from ..pairing import Pair, Pairer
from .ids import EXECUTION_EVENT_ID, child_instance_id, span_id, trace_id

__all__ = [
    "STATUS_ERROR",
    "STATUS_OK",
    "STATUS_UNSET",
    "ExecutionSpans",
    "Link",
    "Span",
    "TraceCounts",
]

AttributeValue: TypeAlias = str | int | bool
Attributes: TypeAlias = list[tuple[str, AttributeValue]]

STATUS_UNSET: Final = 0
STATUS_OK: Final = 1
STATUS_ERROR: Final = 2
_MS: Final = 1_000_000
"""Nanoseconds in a millisecond."""


@dataclass(frozen=True, slots=True)
class Link:
    trace_id: bytes
    span_id: bytes
    attributes: tuple[tuple[str, AttributeValue], ...] = ()


@dataclass(slots=True)
class Span:
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes | None
    name: str
    start_ns: int
    end_ns: int
    attributes: Attributes
    status: int = STATUS_UNSET
    status_message: str = ""
    links: list[Link] = field(default_factory=list)


@dataclass(slots=True)
class TraceCounts:
    """What an export wrote, and what it could not."""

    instances: int = 0
    executions: int = 0
    events: int = 0
    spans: int = 0
    events_without_timestamp: int = 0
    """Events without a timestamp (legacy rows): never a span's start or end."""
    spans_without_timestamp: int = 0
    """Spans not written because their start or end event has no timestamp."""
    spans_clock_skew: int = 0
    """Spans not written because the end is stamped before the start."""
    unfinished: int = 0
    """Activities, timers, waits and sub-orchestrations not ended in the history."""
    undecodable: int = 0
    """Rows that did not decode (named on the way, skipped)."""

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class _Open:
    """Something begun and not yet ended: the span it will become."""

    name: str
    started_ms: int
    event_id: int
    """The event that began it (0: the execution itself), which its span id names."""
    attributes: Attributes
    links: list[Link] = field(default_factory=list)


def _metadata(event: ev.Event, *fields: tuple[str, str]) -> Attributes:
    """Phase-2 metadata the event carries, as attributes (field, attribute name)."""
    found: Attributes = []
    for name, attribute in fields:
        value = getattr(event, name, UNSET)
        if value is not UNSET and value is not None:
            found.append((attribute, value))
    return found


def failure(details: ev.ErrorDetails) -> tuple[str, Attributes]:
    """A failure's status message and attributes, from its ErrorDetails."""
    attributes: Attributes = [("duroxide.outcome", activity_outcome(details))]
    if isinstance(details, ev.UnknownErrorDetails):
        return details.name, [("error.type", details.name), *attributes]
    attributes.insert(0, ("error.type", details.variant))
    kind = getattr(details, "kind", None)
    if isinstance(kind, str):
        attributes.append(("duroxide.error.kind", kind))
    retryable = getattr(details, "retryable", None)
    if isinstance(retryable, bool):
        attributes.append(("duroxide.error.retryable", retryable))
    if isinstance(kind, ev.Cancelled):
        return f"cancelled: {kind.reason}", attributes
    if isinstance(details, ev.InfrastructureError):
        return f"{details.operation}: {details.message}", attributes
    if isinstance(details, ev.ConfigurationError):
        label = kind if isinstance(kind, str) else type(kind).__name__
        return f"{label} {details.resource}: {details.message or ''}".strip(), attributes
    return str(getattr(details, "message", "")), attributes


class ExecutionSpans:
    """Feed one execution's events in order (`add`), then take its spans (`finish`)."""

    def __init__(self, instance_id: str, execution_id: int, counts: TraceCounts) -> None:
        self.instance_id = instance_id
        self.execution_id = execution_id
        self.key = (instance_id, execution_id)
        self.counts = counts
        self.trace_id = trace_id(instance_id)
        self.span_id = span_id(instance_id, execution_id)
        self.spans: list[Span] = []
        self._open: dict[int, _Open | None] = {}
        self._pairs = Pairer()
        self._start: _Open | None = None
        self._last_ms = 0
        self._end: ev.Event | None = None

    # -- events ------------------------------------------------------------------

    def add(self, event: ev.Event) -> None:
        self.counts.events += 1
        if event.has_timestamp:
            self._last_ms = max(self._last_ms, event.timestamp_ms)
        else:
            self.counts.events_without_timestamp += 1
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)
        found = self._pairs.add(event)
        if isinstance(found, Pair) and found.end is not None:
            self._ended(found)

    def _started(self, event: Any) -> None:
        attributes: Attributes = [
            ("duroxide.instance_id", self.instance_id),
            ("duroxide.execution_id", self.execution_id),
            ("duroxide.orchestration.name", event.name),
            ("duroxide.orchestration.version", event.version),
            *_metadata(
                event,
                ("worker_id", "duroxide.worker_id"),
                ("trace_id", "duroxide.trace_id"),
                ("correlation_id", "duroxide.correlation_id"),
            ),
        ]
        links = []
        parent_execution = event.parent_execution_id
        if event.parent_instance is not None and isinstance(parent_execution, int):
            links.append(self._parent_link(event.parent_instance, parent_execution, event))
        self._start = _Open(
            f"orchestration {event.name}", event.timestamp_ms, EXECUTION_EVENT_ID, attributes, links
        )

    @staticmethod
    def _parent_link(instance: str, execution: int, event: Any) -> Link:
        source = event.parent_id if event.parent_id is not None else 0
        return Link(
            trace_id(instance),
            span_id(instance, execution, source),
            (("duroxide.link", "parent"), ("duroxide.instance_id", instance)),
        )

    def _begin(self, event: ev.Event, name: str, attributes: Attributes) -> None:
        attributes = [("duroxide.event_id", event.event_id), *attributes]
        self._open[event.event_id] = _Open(name, event.timestamp_ms, event.event_id, attributes)

    def _activity_scheduled(self, event: Any) -> None:
        if event.is_system_call:
            self._open[event.event_id] = None  # bookkeeping: no span, and not unfinished
            return
        attributes: Attributes = [("duroxide.activity.name", event.name)]
        if isinstance(event.tag, str):
            attributes.append(("duroxide.activity.tag", event.tag))
        attributes += _metadata(
            event,
            ("retry_count", "duroxide.retry_count"),
            ("scheduled_by_worker_id", "duroxide.scheduled_by_worker_id"),
        )
        self._begin(event, f"activity {event.name}", attributes)

    def _timer_created(self, event: Any) -> None:
        self._begin(event, "timer", [("duroxide.timer.fire_at_ms", event.fire_at_ms)])

    def _suborchestration_scheduled(self, event: Any) -> None:
        attributes: Attributes = [
            ("duroxide.suborchestration.name", event.name),
            (
                "duroxide.suborchestration.instance_id",
                child_instance_id(self.instance_id, event.instance),
            ),
            *_metadata(event, ("scheduled_by_worker_id", "duroxide.scheduled_by_worker_id")),
        ]
        self._begin(event, f"suborchestration {event.name}", attributes)
        instance = child_instance_id(self.instance_id, event.instance)
        child = Link(
            trace_id(instance),
            span_id(instance, 1),
            (("duroxide.link", "child"), ("duroxide.instance_id", instance)),
        )
        opened = self._open[event.event_id]
        assert opened is not None
        opened.links.append(child)

    def _subscribed(self, event: Any) -> None:
        persistent = isinstance(event, ev.ExternalSubscribedPersistent)
        self._begin(
            event,
            f"external {event.name}",
            [("duroxide.external.name", event.name), ("duroxide.external.persistent", persistent)],
        )

    def _ended(self, pair: Pair) -> None:
        opened = self._open.pop(pair.scheduled.event_id, None)
        end = pair.end
        if opened is None or end is None:
            return  # a system call: bookkeeping, no span
        details = getattr(end, "details", None)
        if pair.by_name:
            self._emit(opened, pair, STATUS_OK, "", [])
        elif isinstance(
            end, ev.ExternalSubscribedCancelled | ev.ExternalSubscribedPersistentCancelled
        ):
            self._emit(opened, pair, STATUS_UNSET, "", [("duroxide.cancelled", True)])
        elif isinstance(details, ev.ErrorDetails):
            message, attributes = failure(details)
            self._emit(opened, pair, STATUS_ERROR, message, attributes)
        else:
            self._emit(opened, pair, STATUS_OK, "", [("duroxide.outcome", "success")])

    def _terminal(self, event: ev.Event) -> None:
        self._end = event

    # -- spans -------------------------------------------------------------------

    def _emit(
        self, opened: _Open, pair: Pair, status: int, message: str, attributes: Attributes
    ) -> None:
        assert pair.end is not None
        end_ms = pair.end_ms or 0  # 0: the end has no timestamp, `_span` counts it
        span = self._span(opened, end_ms, self.span_id, status, message)
        if span is not None:
            span.attributes += [("duroxide.end_event_id", pair.end.event_id), *attributes]
            self.spans.append(span)

    def _span(
        self, opened: _Open, end_ms: int, parent: bytes | None, status: int, message: str
    ) -> Span | None:
        if opened.started_ms <= 0 or end_ms <= 0:
            self.counts.spans_without_timestamp += 1
            return None
        if end_ms < opened.started_ms:
            self.counts.spans_clock_skew += 1
            return None
        return Span(
            trace_id=self.trace_id,
            span_id=span_id(self.instance_id, self.execution_id, opened.event_id),
            parent_span_id=parent,
            name=opened.name,
            start_ns=opened.started_ms * _MS,
            end_ns=end_ms * _MS,
            attributes=list(opened.attributes),
            status=status,
            status_message=message if status == STATUS_ERROR else "",
            links=list(opened.links),
        )

    def finish(self) -> list[Span]:
        """Every span of the execution: its own first, then the rest in end order."""
        self.counts.executions += 1
        self.counts.unfinished += sum(1 for o in self._open.values() if o is not None)
        spans = self.spans
        execution = self._execution_span()
        if execution is not None:
            spans.insert(0, execution)
        self.counts.spans += len(spans)
        return spans

    def _execution_span(self) -> Span | None:
        start = self._start
        if start is None:
            return None  # no OrchestrationStarted in this execution (nothing to span)
        end = self._end
        if end is None:
            status, message, outcome = STATUS_UNSET, "", "Running"
            end_ms = self._last_ms
        else:
            end_ms = end.timestamp_ms
            details = getattr(end, "details", None)
            if isinstance(details, ev.ErrorDetails):
                message, attributes = failure(details)
                status, outcome = STATUS_ERROR, "Failed"
                start.attributes += [a for a in attributes if a[0] != "duroxide.outcome"]
            else:
                status, message = STATUS_OK, ""
                outcome = _OUTCOMES[type(end)]
        span = self._span(start, end_ms, None, status, message)
        if span is not None:
            span.attributes.append(("duroxide.orchestration.status", outcome))
        return span


_OUTCOMES: Final[dict[type, str]] = {
    ev.OrchestrationCompleted: "Completed",
    ev.OrchestrationContinuedAsNew: "ContinuedAsNew",
}

_HANDLERS: Final[dict[type, Callable[[ExecutionSpans, Any], None]]] = {
    ev.OrchestrationStarted: ExecutionSpans._started,
    ev.ActivityScheduled: ExecutionSpans._activity_scheduled,
    ev.TimerCreated: ExecutionSpans._timer_created,
    ev.SubOrchestrationScheduled: ExecutionSpans._suborchestration_scheduled,
    ev.ExternalSubscribed: ExecutionSpans._subscribed,
    ev.ExternalSubscribedPersistent: ExecutionSpans._subscribed,
    ev.OrchestrationCompleted: ExecutionSpans._terminal,
    ev.OrchestrationFailed: ExecutionSpans._terminal,
    ev.OrchestrationContinuedAsNew: ExecutionSpans._terminal,
}
