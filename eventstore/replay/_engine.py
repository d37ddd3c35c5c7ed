"""The replay engine: drive orchestration code against a stored history.

The model follows duroxide's replay engine. The code runs until it yields a
task; the task's actions (and the custom-status / key-value calls made before
it) wait in a queue. History events are then applied in event-id order:

* a scheduling event takes the action at the head of the queue, which must
  record it (see _matching);
* a completion delivers its result to the action it names by source_event_id;
* external events fill subscription slots by name and arrival order, queued
  (persistent) events are handed out first-in first-out (see _inbox);
* after every delivery the task the code waits on is polled, and when it is
  resolved the code resumes (with the decoded value, or with the failure
  raised as `Exception(message)`, as duroxide's Python driver does);
* the terminal event must record how the code ended (see _terminal).

The first disagreement raises ReplayMismatchError (a NondeterminismError).
"""

from __future__ import annotations

import itertools
import json
import traceback
import types
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

from .. import events as ev
from ..errors import InvalidHistoryError, Location, ReplayMismatchError
from ..events import ErrorDetails, Event
from ._actions import Action, Outcome, parse_raw
from ._context import ReplayContext
from ._descriptors import ContinueAsNew, NotATask, build_task
from ._display import describe_event, display_message, summary_line
from ._inbox import Inbox
from ._matching import (
    COMPLETION_KINDS,
    SCHEDULING,
    completion_outcome,
    matches,
    skippable,
    unrecorded,
)
from ._result import ReplayResult, ReplayStatus
from ._tasks import Task
from ._terminal import check_terminal

__all__ = ["Engine", "Orchestration", "replay"]

Orchestration = Callable[..., Any]


def _start_event(history: Sequence[Event]) -> ev.OrchestrationStarted:
    if not history or not isinstance(history[0], ev.OrchestrationStarted):
        first = history[0].event_type if history else "nothing"
        raise InvalidHistoryError(
            f"a history to replay starts with OrchestrationStarted, not {first}"
        )
    return history[0]


def _yield_location(gen: types.GeneratorType[Any, Any, Any]) -> str:
    """`file:line` of the innermost suspended frame (following `yield from`)."""
    inner: Any = gen
    while True:
        delegate = getattr(inner, "gi_yieldfrom", None)
        if delegate is None or getattr(delegate, "gi_frame", None) is None:
            break
        inner = delegate
    frame = getattr(inner, "gi_frame", None)
    if frame is None:
        return ""
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


class Engine:
    """Replays one execution. Use `replay()`; the engine is single-use."""

    def __init__(
        self,
        history: Sequence[Event],
        orchestration: Orchestration,
        *,
        input: Any = None,  # noqa: A002 - duroxide's name for it
        kv: dict[str, str] | None = None,
    ) -> None:
        self.history = list(history)
        started = self.started = _start_event(self.history)
        self.location = Location(
            instance_id=started.instance_id or None, execution_id=started.execution_id or None
        )
        self.orchestration = orchestration
        if input is not None:
            self.input_value = input
        else:
            self.input_value = parse_raw(started.input) if started.input else None
        self.kv: dict[str, str] = dict(kv or {})
        self.kv_updated: dict[str, int] = {}
        status = started.initial_custom_status
        self.custom_status: str | None = status if isinstance(status, str) else None

        self.queue: deque[Action] = deque()
        self.schedules: dict[int, Action] = {}
        carried = started.carry_forward_events
        self.inbox = Inbox(self._deliver, carried if isinstance(carried, tuple) else ())
        self._seq = itertools.count(1)

        self.gen: types.GeneratorType[Any, Any, Any] | None = None
        self.task: Task | None = None
        self.last_task: dict[str, Any] | None = None
        self.last_where = ""
        self.finished: ReplayStatus | None = None
        self.output: str | None = None
        self.error: ErrorDetails | None = None
        self.exception: BaseException | None = None

    # -- recording (called by the context and the tasks) -------------------------

    def emit(self, action: Action) -> None:
        self.queue.append(action)

    def record_custom_status(self, status: str | None, where: str) -> None:
        self.custom_status = status
        self.emit(Action("custom_status", where, value=status))

    def record_kv_set(self, key: str, value: str, where: str) -> None:
        self.kv[key] = value
        self.emit(Action("kv_set", where, name=key, value=value))

    def record_kv_clear(self, key: str, where: str) -> None:
        self.kv.pop(key, None)
        self.emit(Action("kv_clear", where, name=key))

    def record_kv_clear_all(self, where: str) -> None:
        self.kv.clear()
        self.emit(Action("kv_clear_all", where))

    def prune_kv(self, cutoff_ms: int, where: str) -> int:
        stale = [k for k in self.kv if self.kv_updated.get(k, cutoff_ms) < cutoff_ms]
        for key in stale:
            self.record_kv_clear(key, where)
        return len(stale)

    def cancel(self, action: Action) -> None:
        action.cancelled = True

    # -- errors ---------------------------------------------------------------

    def mismatch(self, event: Event | None, recorded: str, attempted: str, where: str) -> NoReturn:
        """Raise ReplayMismatchError at `event` (None: the end of the history)."""
        location = self.location
        if event is not None:
            location = Location(
                instance_id=location.instance_id,
                execution_id=location.execution_id,
                event_id=event.event_id,
            )
        raise ReplayMismatchError(
            event_id=None if event is None else event.event_id,
            recorded=recorded,
            attempted=attempted,
            where=where,
            location=location,
        )

    def code_state(self) -> tuple[str, str]:
        """What the code is doing now, and where, for a mismatch message."""
        if self.finished == "completed":
            return f"had already returned {self.output}", self.last_where
        if self.finished == "continued_as_new":
            return f"had already continued as new with input {self.output}", self.last_where
        if self.finished == "failed":
            what = summary_line(display_message(self.error)) if self.error else "failed"
            return f"had already failed ({what})", self.last_where
        if self.task is not None:
            return f"is waiting for {self.task.describe()}", self.task.where
        return "is not running", self.last_where

    # -- driving the code -------------------------------------------------------

    def _start(self) -> None:
        started = self.started
        ctx = ReplayContext(
            self,
            instance_id=started.instance_id,
            execution_id=started.execution_id,
            orchestration_name=started.name,
            orchestration_version=started.version,
        )
        try:
            produced = self.orchestration(ctx, self.input_value)
        except Exception as exc:
            self._fail(exc)
            return
        if not isinstance(produced, types.GeneratorType):
            self._complete(produced)
            return
        self.gen = produced
        self._resume(None, None)

    def _resume(self, value: Any, error: BaseException | None) -> None:
        gen = self.gen
        assert gen is not None
        try:
            descriptor = gen.throw(error) if error is not None else gen.send(value)
        except StopIteration as stop:
            self._complete(stop.value)
            return
        except Exception as exc:
            self._fail(exc)
            return
        where = _yield_location(gen)
        self.last_where = where
        self.last_task = descriptor if isinstance(descriptor, dict) else None
        task = self._build(descriptor, where)
        if task is None:
            return
        self.task = task
        task.start(self)

    def _build(self, descriptor: Any, where: str) -> Task | None:
        """A task for a yielded descriptor; None when it ends the code."""
        built = build_task(descriptor, where)
        if isinstance(built, NotATask):
            self._fail(built.error)
            return None
        if isinstance(built, ContinueAsNew):
            self.output = built.input
            self.last_where = where
            self._finish("continued_as_new")
            return None
        return built

    def _advance(self) -> None:
        """Resume the code for as long as the task it waits on is resolved."""
        while self.finished is None and self.task is not None:
            outcome = self.task.poll(self)
            if outcome is None:
                return
            self.task = None
            value = parse_raw(outcome.raw)
            if not outcome.ok:
                message = value if isinstance(value, str) else json.dumps(value)
                self._resume(None, Exception(message))
                continue
            self._resume(self._typed_all(value), None)

    def _typed_all(self, value: Any) -> Any:
        """The values alone of a join the code asked for as `all` of typed tasks."""
        last = self.last_task
        if last is None or value is None or not last.get("_typed_all"):
            return value
        if not isinstance(value, list):
            return value
        return [
            item.get("ok") if isinstance(item, dict) and "ok" in item else item for item in value
        ]

    def _complete(self, value: Any) -> None:
        try:
            output = json.dumps(value if value is not None else None)
        except (TypeError, ValueError) as exc:  # duroxide's driver fails the same way
            self._fail(exc)
            return
        self.output = output
        self._finish("completed")

    def _fail(self, exc: BaseException) -> None:
        self.exception = exc
        message = "".join(traceback.format_exception(exc))
        self.error = ev.ApplicationError(kind="OrchestrationFailed", message=message)
        self._finish("failed")

    def _finish(self, status: ReplayStatus) -> None:
        self.finished = status
        self.task = None
        gen, self.gen = self.gen, None
        if gen is not None:
            gen.close()

    # -- applying history -------------------------------------------------------

    def _deliver(self, action: Action, outcome: Outcome) -> None:
        if action.outcome is None:
            action.outcome = outcome
            action.seq = next(self._seq)

    def _apply(self, event: Event) -> None:
        if isinstance(event, SCHEDULING):
            self._apply_scheduling(event)
        elif type(event) in COMPLETION_KINDS:
            self._apply_completion(event)
        else:
            self._apply_other(event)

    def _take_action(self, event: Event) -> Action:
        """The queued action this scheduling event records (must match)."""
        while self.queue:
            action = self.queue[0]
            if matches(action, event):
                self.queue.popleft()
                return action
            if skippable(action, event):
                # V0 could not record custom status or key-value changes.
                self.queue.popleft()
                continue
            self.mismatch(event, describe_event(event), unrecorded(action, event), action.where)
        state, where = self.code_state()
        self.mismatch(event, describe_event(event), f"scheduled nothing more: it {state}", where)

    def _apply_scheduling(self, event: Event) -> None:
        action = self._take_action(event)
        action.event_id = event.event_id
        self.schedules[event.event_id] = action
        match event:
            case ev.SystemCall(value=value):
                raw = json.dumps(value) if action.kind == "new_guid" else value
                self._deliver(action, Outcome(True, raw))
            case ev.ExternalSubscribed(name=name):
                self.inbox.subscribe(name, action)
            case ev.ExternalSubscribedPersistent(name=name):
                self.inbox.subscribe_queue(name, action)
            case ev.KeyValueSet(key=key):
                self.kv_updated[key] = event.last_updated_at_ms or event.timestamp_ms

    def _apply_completion(self, event: Event) -> None:
        source = event.source_event_id
        target = self.schedules.get(source) if source is not None else None
        if target is None or target.kind not in COMPLETION_KINDS[type(event)]:
            state, where = self.code_state()
            named = (
                f"event {source}, which the code did not schedule"
                if target is None
                else f"event {source}, which the code scheduled as {target.describe()}"
            )
            self.mismatch(event, f"{event.event_type} for {named}", state, where)
        self._deliver(target, completion_outcome(event, target))

    def _apply_other(self, event: Event) -> None:
        match event:
            case ev.ExternalEvent(name=name, data=data):
                self.inbox.arrive(name, data)
            case ev.ExternalEventPersistent(name=name, data=data):
                self.inbox.enqueue(name, data)
            case (
                ev.ExternalSubscribedCancelled()
                | ev.ExternalSubscribedPersistentCancelled()
                | ev.ActivityCancelRequested()
                | ev.SubOrchestrationCancelRequested()
            ):
                self._mark_cancelled(event.source_event_id)
            case ev.OrchestrationCancelRequested(reason=reason):
                self._cancel_orchestration(reason)
            case ev.OrchestrationStarted():
                raise InvalidHistoryError(
                    f"a second OrchestrationStarted at event {event.event_id}",
                    location=self.location,
                )
            case _:
                pass  # unknown types and anything else carry nothing to replay

    def _mark_cancelled(self, source_event_id: int | None) -> None:
        cancelled = self.schedules.get(source_event_id) if source_event_id is not None else None
        if cancelled is not None:
            cancelled.cancelled = True

    def _cancel_orchestration(self, reason: str) -> None:
        if self.finished is None:
            # Cancellation ends the code where it stands: what it asked
            # for and the runtime did not record yet is dropped.
            self.queue.clear()
            self.error = ev.ApplicationError(
                kind=ev.Cancelled(reason=reason), message="", retryable=False
            )
            self._finish("failed")

    # -- the run ----------------------------------------------------------------

    def run(self) -> ReplayResult:
        self._start()
        self._advance()
        terminal: Event | None = None
        replayed = 1
        for event in self.history[1:]:
            if terminal is not None:
                raise InvalidHistoryError(
                    f"event {event.event_id} ({event.event_type}) follows the terminal event "
                    f"{terminal.event_id}",
                    location=self.location,
                )
            replayed += 1
            if event.event_type in ev.TERMINAL_TYPES:
                check_terminal(self, event)
                terminal = event
                continue
            self._apply(event)
            self._advance()
        return self._result(replayed, terminal)

    def _result(self, replayed: int, terminal: Event | None) -> ReplayResult:
        status: ReplayStatus = self.finished if self.finished is not None else "pending"
        pending: list[Action] = []
        if self.task is not None:
            pending.extend(a for a in self.task.actions() if a.outcome is None)
        pending.extend(a for a in self.queue if a not in pending)
        started = self.started
        return ReplayResult(
            status=status,
            instance_id=started.instance_id,
            execution_id=started.execution_id,
            name=started.name,
            version=started.version,
            output=self.output,
            error=self.error,
            exception=self.exception,
            pending_actions=tuple(pending),
            events_replayed=replayed,
            terminal_event=terminal,
            custom_status=self.custom_status,
            kv=dict(self.kv),
        )


def replay(
    history: Iterable[Event],
    orchestration: Orchestration,
    *,
    input: Any = None,  # noqa: A002 - duroxide's name for it
    kv: dict[str, str] | None = None,
) -> ReplayResult:
    """Replay `orchestration` (a duroxide-style generator function) against `history`.

    `history` is one execution's events in event-id order, starting with
    OrchestrationStarted. The code's input is the started event's (decoded
    from JSON) unless `input` is given. `kv` seeds the key-value store (the
    values left by earlier executions of the instance).

    Returns a ReplayResult; raises ReplayMismatchError (a NondeterminismError)
    at the first event where the code and the history disagree, including an
    output, failure or continue-as-new input other than the stored one.
    """
    engine = Engine(
        list(history),
        orchestration,
        input=input,
        kv=kv,
    )
    return engine.run()
