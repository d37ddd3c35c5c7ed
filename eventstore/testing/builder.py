"""HistoryBuilder: valid histories, fluently, with ids and source ids assigned."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final, Self

from .. import events as ev
from ..events import SYSTEM_CALL_PREFIX, ErrorDetails, Event

if TYPE_CHECKING:
    from ..store import AppendResult, HistoryStore

__all__ = ["DEFAULT_START_MS", "HistoryBuilder", "RawJson"]

DEFAULT_START_MS: Final = 1_795_000_000_000
"""The builder's clock starts here (a fixed instant: histories are reproducible)."""


class RawJson(str):
    """A payload given as JSON text, stored verbatim (other values are json.dumps'ed)."""

    __slots__ = ()


def payload(value: Any) -> str:
    """A payload as duroxide's Python SDK writes it: JSON text of the value."""
    return str(value) if isinstance(value, RawJson) else json.dumps(value)


def _details(error: str | ErrorDetails, kind: str) -> ErrorDetails:
    if isinstance(error, ErrorDetails):
        return error
    return ev.ApplicationError(kind=kind, message=error, retryable=False)


class HistoryBuilder:
    """Builds one execution's history, event by event.

    Every method appends one or more events and returns the builder, so calls
    chain. Event ids count up from 1 (OrchestrationStarted, added for you);
    completions name their scheduling event: the one given as `source`, else
    the oldest still-open one of that kind (and `name`, when given). Payloads
    are Python values, JSON-encoded as duroxide's Python SDK does (wrap text in
    RawJson to store it verbatim). After the terminal event nothing else can
    be added.

        events = (
            HistoryBuilder("order-1", "Hello", "w0")
            .activity("Work", "w0", result="hello")
            .timer(10)
            .completed("hello")
            .build()
        )
    """

    def __init__(
        self,
        instance_id: str = "test-instance",
        name: str = "Test",
        input: Any = None,  # noqa: A002 - duroxide's name for it
        *,
        version: str = "1.0.0",
        execution_id: int = 1,
        start_ms: int = DEFAULT_START_MS,
        step_ms: int = 1,
        duroxide_version: str = "0.1.32",
        parent_instance: str | None = None,
        parent_id: int | None = None,
        carry_forward_events: list[tuple[str, str]] | None = None,
        initial_custom_status: str | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.execution_id = execution_id
        self.duroxide_version = duroxide_version
        self.step_ms = step_ms
        self.now_ms = start_ms
        self.events: list[Event] = []
        self._open: list[tuple[int, str, str]] = []  # (event id, kind, name) awaiting completion
        self._terminal = False
        started: dict[str, Any] = {}
        if carry_forward_events is not None:
            started["carry_forward_events"] = tuple(tuple(p) for p in carry_forward_events)
        if initial_custom_status is not None:
            started["initial_custom_status"] = initial_custom_status
        self._add(
            ev.OrchestrationStarted,
            name=name,
            version=version,
            input=payload(input),
            parent_instance=parent_instance,
            parent_id=parent_id,
            **started,
        )

    # -- plumbing --------------------------------------------------------------

    @property
    def last_id(self) -> int:
        """The id of the last event added."""
        return self.events[-1].event_id

    @property
    def next_id(self) -> int:
        return self.last_id + 1 if self.events else 1

    def _add(self, cls: type[Any], *, source: int | None = None, **fields: Any) -> int:
        if self._terminal:
            raise ValueError("the history already ends with a terminal event")
        event_id = self.next_id
        self.events.append(
            cls(
                event_id=event_id,
                source_event_id=source,
                instance_id=self.instance_id,
                execution_id=self.execution_id,
                timestamp_ms=self.now_ms,
                duroxide_version=self.duroxide_version,
                **fields,
            )
        )
        self.now_ms += self.step_ms
        if cls.event_type in ev.TERMINAL_TYPES:
            self._terminal = True
        return event_id

    def _schedule(self, kind: str, label: str, cls: type[Any], /, **fields: Any) -> int:
        event_id = self._add(cls, **fields)
        self._open.append((event_id, kind, label))
        return event_id

    def _close(self, kind: str, source: int | None, name: str | None) -> int:
        for index, (event_id, open_kind, open_name) in enumerate(self._open):
            if open_kind != kind:
                continue
            if source is not None and event_id != source:
                continue
            if source is None and name is not None and open_name != name:
                continue
            del self._open[index]
            return event_id
        what = f"{kind} {name or ''}".strip() if source is None else f"{kind} event {source}"
        raise ValueError(f"no open {what} to complete")

    @property
    def open_operations(self) -> list[tuple[int, str, str]]:
        """(event id, kind, name) of scheduled operations without a completion yet.

        Kinds: activity, timer, external, queue, sub.
        """
        return list(self._open)

    def advance(self, ms: int) -> Self:
        """Move the builder's clock forward (timestamps of later events)."""
        self.now_ms += ms
        return self

    # -- activities --------------------------------------------------------------

    def activity_scheduled(
        self,
        name: str,
        input: Any = None,  # noqa: A002
        *,
        session_id: str | None = None,
        tag: str | None = None,
    ) -> Self:
        extra: dict[str, Any] = {}
        if session_id is not None:
            extra["session_id"] = session_id
        if tag is not None:
            extra["tag"] = tag
        self._schedule(
            "activity", name, ev.ActivityScheduled, name=name, input=payload(input), **extra
        )
        return self

    def activity_completed(
        self, result: Any = None, *, source: int | None = None, name: str | None = None
    ) -> Self:
        source_id = self._close("activity", source, name)
        self._add(ev.ActivityCompleted, source=source_id, result=payload(result))
        return self

    def activity_failed(
        self,
        error: str | ErrorDetails = "activity failed",
        *,
        source: int | None = None,
        name: str | None = None,
    ) -> Self:
        source_id = self._close("activity", source, name)
        self._add(ev.ActivityFailed, source=source_id, details=_details(error, "ActivityFailed"))
        return self

    def activity(
        self,
        name: str,
        input: Any = None,  # noqa: A002
        *,
        result: Any = None,
        error: str | ErrorDetails | None = None,
        session_id: str | None = None,
        tag: str | None = None,
    ) -> Self:
        """An activity scheduled then completed with `result` (or failed with `error`)."""
        self.activity_scheduled(name, input, session_id=session_id, tag=tag)
        source = self.last_id
        if error is not None:
            return self.activity_failed(error, source=source)
        return self.activity_completed(result, source=source)

    # -- system calls (V1: reserved activity names) --------------------------------

    def new_guid(self, value: str = "00000000-0000-4000-8000-000000000000") -> Self:
        self._schedule(
            "activity",
            SYSTEM_CALL_PREFIX + "new_guid",
            ev.ActivityScheduled,
            name=SYSTEM_CALL_PREFIX + "new_guid",
            input="",
        )
        return self.activity_completed(RawJson(value), source=self.last_id)

    def utc_now(self, value_ms: int | None = None) -> Self:
        self._schedule(
            "activity",
            SYSTEM_CALL_PREFIX + "utc_now_ms",
            ev.ActivityScheduled,
            name=SYSTEM_CALL_PREFIX + "utc_now_ms",
            input="",
        )
        value = self.now_ms if value_ms is None else value_ms
        return self.activity_completed(RawJson(str(value)), source=self.last_id)

    def system_call(self, op: str, value: str) -> Self:
        """A legacy (V0) SystemCall event: one event for a call and its result."""
        self._add(ev.SystemCall, op=op, value=value)
        return self

    # -- timers --------------------------------------------------------------------

    def timer_created(self, delay_ms: int = 0) -> Self:
        self._schedule("timer", "", ev.TimerCreated, fire_at_ms=self.now_ms + delay_ms)
        return self

    def timer_fired(self, *, source: int | None = None) -> Self:
        source_id = self._close("timer", source, None)
        created = next(e for e in self.events if e.event_id == source_id)
        assert isinstance(created, ev.TimerCreated)
        self.now_ms = max(self.now_ms, created.fire_at_ms)
        self._add(ev.TimerFired, source=source_id, fire_at_ms=created.fire_at_ms)
        return self

    def timer(self, delay_ms: int = 0) -> Self:
        """A timer created then fired."""
        self.timer_created(delay_ms)
        return self.timer_fired(source=self.last_id)

    # -- external events and queues ------------------------------------------------------

    def external_subscribed(self, name: str) -> Self:
        self._schedule("external", name, ev.ExternalSubscribed, name=name)
        return self

    def external_event(self, name: str, data: Any = None) -> Self:
        """An event raised by a client (matched to subscriptions by name)."""
        self._add(ev.ExternalEvent, name=name, data=payload(data))
        for index, (_, kind, open_name) in enumerate(self._open):
            if kind == "external" and open_name == name:
                del self._open[index]
                break
        return self

    def external_subscription_cancelled(
        self, *, source: int | None = None, name: str | None = None, reason: str = "dropped_future"
    ) -> Self:
        source_id = self._close("external", source, name)
        self._add(ev.ExternalSubscribedCancelled, source=source_id, reason=reason)
        return self

    def wait_event(self, name: str, data: Any = None) -> Self:
        """A subscription (`wait_for_event`) then the event it receives."""
        return self.external_subscribed(name).external_event(name, data)

    def queue_subscribed(self, name: str) -> Self:
        self._schedule("queue", name, ev.ExternalSubscribedPersistent, name=name)
        return self

    def queue_event(self, name: str, data: Any = None) -> Self:
        """A message enqueued by a client and delivered (FIFO by queue name)."""
        self._add(ev.ExternalEventPersistent, name=name, data=payload(data))
        for index, (_, kind, open_name) in enumerate(self._open):
            if kind == "queue" and open_name == name:
                del self._open[index]
                break
        return self

    def dequeue(self, name: str, data: Any = None) -> Self:
        """A queue subscription (`dequeue_event`) then the message it receives."""
        return self.queue_subscribed(name).queue_event(name, data)

    # -- sub-orchestrations and detached starts --------------------------------------

    def sub_orchestration_scheduled(
        self,
        name: str,
        input: Any = None,  # noqa: A002
        *,
        instance: str | None = None,
    ) -> Self:
        child = instance if instance is not None else f"sub::{self.next_id}"
        self._schedule(
            "sub",
            name,
            ev.SubOrchestrationScheduled,
            name=name,
            instance=child,
            input=payload(input),
        )
        return self

    def sub_orchestration_completed(
        self, result: Any = None, *, source: int | None = None, name: str | None = None
    ) -> Self:
        source_id = self._close("sub", source, name)
        self._add(ev.SubOrchestrationCompleted, source=source_id, result=payload(result))
        return self

    def sub_orchestration_failed(
        self,
        error: str | ErrorDetails = "sub-orchestration failed",
        *,
        source: int | None = None,
        name: str | None = None,
    ) -> Self:
        source_id = self._close("sub", source, name)
        details = _details(error, "OrchestrationFailed")
        self._add(ev.SubOrchestrationFailed, source=source_id, details=details)
        return self

    def sub_orchestration(
        self,
        name: str,
        input: Any = None,  # noqa: A002
        *,
        result: Any = None,
        error: str | ErrorDetails | None = None,
        instance: str | None = None,
    ) -> Self:
        self.sub_orchestration_scheduled(name, input, instance=instance)
        source = self.last_id
        if error is not None:
            return self.sub_orchestration_failed(error, source=source)
        return self.sub_orchestration_completed(result, source=source)

    def orchestration_chained(self, name: str, instance: str, input: Any = None) -> Self:  # noqa: A002
        """A detached orchestration started (`start_orchestration`)."""
        self._add(ev.OrchestrationChained, name=name, instance=instance, input=payload(input))
        return self

    # -- status and key-value store --------------------------------------------------

    def custom_status(self, status: str | None) -> Self:
        self._add(ev.CustomStatusUpdated, status=status)
        return self

    def kv_set(self, key: str, value: str) -> Self:
        self._add(ev.KeyValueSet, key=key, value=value, last_updated_at_ms=self.now_ms)
        return self

    def kv_cleared(self, key: str) -> Self:
        self._add(ev.KeyValueCleared, key=key)
        return self

    def kv_all_cleared(self) -> Self:
        self._add(ev.KeyValuesCleared)
        return self

    # -- the end ----------------------------------------------------------------------

    def cancel_requested(self, reason: str = "cancelled") -> Self:
        self._add(ev.OrchestrationCancelRequested, reason=reason)
        return self

    def completed(self, output: Any = None) -> Self:
        self._add(ev.OrchestrationCompleted, output=payload(output))
        return self

    def failed(self, error: str | ErrorDetails = "orchestration failed") -> Self:
        self._add(ev.OrchestrationFailed, details=_details(error, "OrchestrationFailed"))
        return self

    def cancelled(self, reason: str = "cancelled") -> Self:
        """A cancellation request and the failure that ends the execution."""
        self.cancel_requested(reason)
        details = ev.ApplicationError(kind=ev.Cancelled(reason=reason), message="", retryable=False)
        return self.failed(details)

    def continued_as_new(self, input: Any = None) -> Self:  # noqa: A002
        self._add(ev.OrchestrationContinuedAsNew, input=payload(input))
        return self

    @property
    def terminated(self) -> bool:
        return self._terminal

    def build(self) -> list[Event]:
        """The events so far (a copy)."""
        return list(self.events)

    def append_to(self, store: HistoryStore) -> AppendResult:
        """Append the whole history to `store` as a new execution."""
        return store.append(
            self.instance_id, self.execution_id, self.events, expected_last_event_id=0
        )
