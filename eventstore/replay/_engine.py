"""The replay engine: drive orchestration code against a stored history.

The model follows duroxide's replay engine. The code runs until it yields a
task; the task's actions (and the custom-status / key-value calls made before
it) wait in a queue. History events are then applied in event-id order:

* a scheduling event takes the action at the head of the queue, which must be
  of the same kind with the same identifying fields (activities: name, input,
  session and tag; timers: position only; external events and queues: name;
  sub-orchestrations: name and input; detached starts: name, instance, input;
  system calls: their reserved activity name, or the legacy SystemCall op);
* a completion delivers its result to the action it names by source_event_id;
* external events fill subscription slots by name and arrival order, queued
  (persistent) events are handed out first-in first-out;
* after every delivery the task the code waits on is polled, and when it is
  resolved the code resumes (with the decoded value, or with the failure
  raised as `Exception(message)`, as duroxide's Python driver does).

The first disagreement raises ReplayMismatchError (a NondeterminismError).
"""

from __future__ import annotations

import itertools
import json
import traceback
import types
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NoReturn

from .. import events as ev
from ..errors import InvalidHistoryError, Location, ReplayMismatchError
from ..events import SYSTEM_CALL_PREFIX, ErrorDetails, Event
from ._context import ReplayContext

__all__ = [
    "Action",
    "Engine",
    "InvalidHistoryError",
    "ReplayMismatchError",
    "ReplayResult",
    "ReplayStatus",
    "display_message",
    "replay",
]

ReplayStatus = Literal["completed", "failed", "continued_as_new", "pending"]
Orchestration = Callable[..., Any]

NEW_GUID: Final = SYSTEM_CALL_PREFIX + "new_guid"
UTC_NOW: Final = SYSTEM_CALL_PREFIX + "utc_now_ms"

_RECORD_KINDS: Final = frozenset({"custom_status", "kv_set", "kv_clear", "kv_clear_all"})
"""Actions that only record state: no result, nothing waits on them."""


# --------------------------------------------------------------------------
# Actions: what the code asked for
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    raw: str
    """The result as the runtime hands it to the driver: JSON text, or a message."""


@dataclass(eq=False, slots=True)
class Action:
    """One thing the code did that the history must record."""

    kind: str
    """activity, timer, wait_event, dequeue_event, sub_orchestration,
    start_orchestration, new_guid, utc_now, custom_status, kv_set, kv_clear,
    kv_clear_all."""
    where: str
    name: str = ""
    input: str = ""
    session_id: str | None = None
    tag: str | None = None
    instance: str | None = None
    version: str | None = None
    value: str | None = None
    delay_ms: int | None = None
    event_id: int | None = None
    """The history event that recorded it (None while unrecorded)."""
    outcome: Outcome | None = field(default=None, repr=False)
    seq: int = field(default=0, repr=False)
    cancelled: bool = field(default=False, repr=False)

    @property
    def recorded(self) -> bool:
        return self.event_id is not None

    def describe(self) -> str:
        k = self.kind
        if k == "activity":
            extra = ""
            if self.session_id is not None:
                extra += f", session={self.session_id!r}"
            if self.tag is not None:
                extra += f", tag={self.tag!r}"
            return f"activity {self.name!r} (input={self.input!r}{extra})"
        if k == "timer":
            return f"timer ({self.delay_ms} ms)" if self.delay_ms is not None else "timer"
        if k == "wait_event":
            return f"wait_for_event {self.name!r}"
        if k == "dequeue_event":
            return f"dequeue_event {self.name!r}"
        if k == "sub_orchestration":
            return f"sub-orchestration {self.name!r} (input={self.input!r})"
        if k == "start_orchestration":
            return f"start_orchestration {self.name!r} as {self.instance!r} (input={self.input!r})"
        if k == "new_guid":
            return "new_guid"
        if k == "utc_now":
            return "utc_now"
        if k == "custom_status":
            return f"set_custom_status({self.value!r})"
        if k == "kv_set":
            return f"set_kv_value({self.name!r}, {self.value!r})"
        if k == "kv_clear":
            return f"clear_kv_value({self.name!r})"
        if k == "kv_clear_all":
            return "clear_all_kv_values()"
        return k


def describe_event(event: Event) -> str:
    """A short description of a history event, for mismatch messages."""
    match event:
        case ev.ActivityScheduled(name=name, input=data):
            extra = ""
            if isinstance(event.session_id, str):
                extra += f", session={event.session_id!r}"
            if isinstance(event.tag, str):
                extra += f", tag={event.tag!r}"
            if name.startswith(SYSTEM_CALL_PREFIX):
                return f"ActivityScheduled system call {name[len(SYSTEM_CALL_PREFIX) :]!r}"
            return f"ActivityScheduled {name!r} (input={data!r}{extra})"
        case ev.SubOrchestrationScheduled(name=name, input=data, instance=instance):
            return f"SubOrchestrationScheduled {name!r} as {instance!r} (input={data!r})"
        case ev.OrchestrationChained(name=name, instance=instance, input=data):
            return f"OrchestrationChained {name!r} as {instance!r} (input={data!r})"
        case ev.ExternalSubscribed(name=name) | ev.ExternalSubscribedPersistent(name=name):
            return f"{event.event_type} {name!r}"
        case ev.TimerCreated(fire_at_ms=at):
            return f"TimerCreated (fire at {at})"
        case ev.SystemCall(op=op, value=value):
            return f"SystemCall {op!r} -> {value!r}"
        case ev.CustomStatusUpdated(status=status):
            return f"CustomStatusUpdated {status!r}"
        case ev.KeyValueSet(key=key, value=value):
            return f"KeyValueSet {key!r}={value!r}"
        case ev.KeyValueCleared(key=key):
            return f"KeyValueCleared {key!r}"
        case ev.OrchestrationCompleted(output=output):
            return f"OrchestrationCompleted (output={output!r})"
        case ev.OrchestrationContinuedAsNew(input=data):
            return f"OrchestrationContinuedAsNew (input={data!r})"
        case ev.OrchestrationFailed(details=details):
            return f"OrchestrationFailed ({_summary_line(display_message(details))!r})"
    return event.event_type


def display_message(details: ErrorDetails) -> str:
    """The message duroxide hands to code for a failure (its `display_message`)."""
    if isinstance(details, ev.ApplicationError):
        kind = details.kind
        if isinstance(kind, ev.Cancelled):
            return f"canceled: {kind.reason}"
        if kind == "Panicked":
            return f"orchestration panicked: {details.message}"
        return details.message
    if isinstance(details, ev.InfrastructureError):
        return f"infrastructure:{details.operation}: {details.message}"
    if isinstance(details, ev.ConfigurationError):
        if details.kind == "Nondeterminism":
            if details.message is not None:
                return f"nondeterministic: {details.message}"
            return f"nondeterministic in {details.resource}"
        return details.message if details.message is not None else f"{details.kind}"
    if isinstance(details, ev.PoisonError):
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
    if isinstance(details, ev.UnknownErrorDetails):
        return f"{details.name}: {details.value}"
    return repr(details)


def _summary_line(message: str) -> str:
    """The last non-blank line: the `Type: message` line of a Python traceback."""
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _parse(raw: str) -> Any:
    """As duroxide's driver: JSON when it parses, else the text itself."""
    try:
        return json.loads(raw)
    except (ValueError, TypeError):
        return raw


def _same_json(left: str, right: str) -> bool:
    if left == right:
        return True
    try:
        return bool(json.loads(left) == json.loads(right))
    except ValueError:
        return False


# --------------------------------------------------------------------------
# Tasks: what a yield waits for
# --------------------------------------------------------------------------


class _Task:
    where: str

    def start(self, engine: Engine) -> None:
        raise NotImplementedError

    def poll(self, engine: Engine) -> Outcome | None:
        raise NotImplementedError

    def actions(self) -> list[Action]:
        return []

    def describe(self) -> str:
        return ", ".join(a.describe() for a in self.actions()) or "nothing"

    def cancel(self, engine: Engine) -> None:
        for action in self.actions():
            if action.outcome is None:
                engine.cancel(action)


class _Primitive(_Task):
    def __init__(self, action: Action) -> None:
        self.action = action
        self.where = action.where

    def start(self, engine: Engine) -> None:
        engine.emit(self.action)

    def poll(self, engine: Engine) -> Outcome | None:
        return self.action.outcome

    def actions(self) -> list[Action]:
        return [self.action]


class _Immediate(_Task):
    """Resolved as soon as yielded (a detached start), optionally with an action."""

    def __init__(self, where: str, outcome: Outcome, action: Action | None = None) -> None:
        self.where = where
        self.outcome = outcome
        self.action = action

    def start(self, engine: Engine) -> None:
        if self.action is not None:
            engine.emit(self.action)

    def poll(self, engine: Engine) -> Outcome | None:
        return self.outcome

    def actions(self) -> list[Action]:
        return [self.action] if self.action is not None else []


class _Join(_Task):
    def __init__(self, where: str, children: list[_Task]) -> None:
        self.where = where
        self.children = children

    def start(self, engine: Engine) -> None:
        for child in self.children:
            child.start(engine)

    def poll(self, engine: Engine) -> Outcome | None:
        outcomes = [child.poll(engine) for child in self.children]
        if any(o is None for o in outcomes):
            return None
        items = [{"ok" if o.ok else "err": _parse(o.raw)} for o in outcomes if o is not None]
        return Outcome(True, json.dumps(items))

    def actions(self) -> list[Action]:
        return [a for child in self.children for a in child.actions()]


class _Select(_Task):
    """select2: the first child to resolve, in history order, wins."""

    def __init__(self, where: str, children: list[_Task], *, wrap: bool = True) -> None:
        self.where = where
        self.children = children
        self.wrap = wrap
        self.winner: int | None = None

    def start(self, engine: Engine) -> None:
        for child in self.children:
            child.start(engine)

    @staticmethod
    def _seq(child: _Task) -> int:
        seqs = [a.seq for a in child.actions() if a.outcome is not None]
        return max(seqs) if seqs else 0

    def poll(self, engine: Engine) -> Outcome | None:
        best: tuple[int, int, Outcome] | None = None
        for index, child in enumerate(self.children):
            outcome = child.poll(engine)
            if outcome is None:
                continue
            key = (self._seq(child), index, outcome)
            if best is None or key[:2] < best[:2]:
                best = key
        if best is None:
            return None
        _, index, outcome = best
        self.winner = index
        for other, child in enumerate(self.children):
            if other != index:
                child.cancel(engine)
        if not self.wrap or not outcome.ok:
            # duroxide >= 0.2: a failed winner raises as the task alone would.
            return outcome
        return Outcome(True, json.dumps({"index": index, "value": _parse(outcome.raw)}))

    def actions(self) -> list[Action]:
        return [a for child in self.children for a in child.actions()]


class _Retry(_Task):
    """schedule_activity_with_retry: attempts, a timeout race, backoff timers."""

    def __init__(self, where: str, make_attempt: Callable[[], Action], retry: dict[str, Any]):
        self.where = where
        self.make_attempt = make_attempt
        self.max_attempts = max(1, int(retry.get("maxAttempts") or 3))
        timeout = retry.get("timeoutMs")
        self.timeout_ms = int(timeout) if timeout else None
        self.attempt = 0
        self.current: _Task | None = None
        self.backoff: Action | None = None
        self.last_error = ""
        self._all: list[Action] = []

    def _start_attempt(self, engine: Engine) -> None:
        self.attempt += 1
        activity = self.make_attempt()
        if self.timeout_ms is not None:
            timer = Action("timer", self.where, delay_ms=self.timeout_ms)
            self.current = _Select(
                self.where, [_Primitive(activity), _Primitive(timer)], wrap=False
            )
        else:
            self.current = _Primitive(activity)
        self._all.extend(self.current.actions())
        self.current.start(engine)

    def start(self, engine: Engine) -> None:
        self._start_attempt(engine)

    def poll(self, engine: Engine) -> Outcome | None:
        while True:
            if self.backoff is not None:
                if self.backoff.outcome is None:
                    return None
                self.backoff = None
                self._start_attempt(engine)
            assert self.current is not None
            outcome = self.current.poll(engine)
            if outcome is None:
                return None
            if isinstance(self.current, _Select) and self.current.winner == 1:
                return Outcome(False, "timeout: activity timed out")
            if outcome.ok:
                return outcome
            self.last_error = outcome.raw
            if self.attempt >= self.max_attempts:
                return Outcome(False, self.last_error)
            self.backoff = Action("timer", self.where)
            self._all.append(self.backoff)
            engine.emit(self.backoff)

    def actions(self) -> list[Action]:
        return list(self._all)


# --------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What replaying one execution found."""

    status: ReplayStatus
    instance_id: str
    execution_id: int
    name: str
    version: str
    output: str | None = None
    """completed: the output as JSON text; continued_as_new: the new input."""
    error: ErrorDetails | None = None
    """failed: the failure as duroxide would record it."""
    exception: BaseException | None = None
    """failed: the exception the code raised (None for a cancellation)."""
    pending_actions: tuple[Action, ...] = ()
    """Actions the code awaits: unrecorded ones (what the runtime would do next)
    and recorded ones whose completion the history does not hold yet."""
    events_replayed: int = 0
    terminal_event: Event | None = None
    custom_status: str | None = None
    kv: dict[str, str] = field(default_factory=dict)

    @property
    def value(self) -> Any:
        """The output (or continue-as-new input) decoded from JSON."""
        return None if self.output is None else _parse(self.output)

    @property
    def finished(self) -> bool:
        return self.status != "pending"


# --------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------

_SCHEDULING: Final = (
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

_COMPLETION_KIND: Final[dict[type[Event], tuple[str, ...]]] = {
    ev.ActivityCompleted: ("activity", "new_guid", "utc_now"),
    ev.ActivityFailed: ("activity", "new_guid", "utc_now"),
    ev.TimerFired: ("timer",),
    ev.SubOrchestrationCompleted: ("sub_orchestration",),
    ev.SubOrchestrationFailed: ("sub_orchestration",),
}


def _matches(action: Action, event: Event) -> bool:
    k = action.kind
    match event:
        case ev.ActivityScheduled(name=name, input=data):
            if k == "new_guid":
                return name == NEW_GUID
            if k == "utc_now":
                return name == UTC_NOW
            session = event.session_id if isinstance(event.session_id, str) else None
            tag = event.tag if isinstance(event.tag, str) else None
            return (
                k == "activity"
                and action.name == name
                and action.input == data
                and action.session_id == session
                and action.tag == tag
            )
        case ev.SystemCall(op=op):
            return (k == "new_guid" and op == "new_guid") or (
                k == "utc_now" and op in ("utc_now_ms", "utc_now")
            )
        case ev.TimerCreated():
            return k == "timer"
        case ev.ExternalSubscribed(name=name):
            return k == "wait_event" and action.name == name
        case ev.ExternalSubscribedPersistent(name=name):
            return k == "dequeue_event" and action.name == name
        case ev.SubOrchestrationScheduled(name=name, input=data):
            return k == "sub_orchestration" and action.name == name and action.input == data
        case ev.OrchestrationChained(name=name, instance=instance, input=data):
            return (
                k == "start_orchestration"
                and action.name == name
                and action.instance == instance
                and action.input == data
            )
        case ev.CustomStatusUpdated():
            return k == "custom_status"
        case ev.KeyValueSet(key=key, value=value):
            return k == "kv_set" and action.name == key and action.value == value
        case ev.KeyValueCleared(key=key):
            return k == "kv_clear" and action.name == key
        case ev.KeyValuesCleared():
            return k == "kv_clear_all"
    return False


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


def _is_legacy(event: Event) -> bool:
    """V0 events carry no writer version; they could not record every action kind."""
    return event.duroxide_version == ""


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
        if not self.history or not isinstance(self.history[0], ev.OrchestrationStarted):
            first = self.history[0].event_type if self.history else "nothing"
            raise InvalidHistoryError(
                f"a history to replay starts with OrchestrationStarted, not {first}"
            )
        started: ev.OrchestrationStarted = self.history[0]
        self.started = started
        self.location = Location(
            instance_id=started.instance_id or None, execution_id=started.execution_id or None
        )
        self.orchestration = orchestration
        if input is not None:
            self.input_value = input
        else:
            self.input_value = _parse(started.input) if started.input else None
        self.kv: dict[str, str] = dict(kv or {})
        self.kv_updated: dict[str, int] = {}
        status = started.initial_custom_status
        self.custom_status: str | None = status if isinstance(status, str) else None

        self.queue: deque[Action] = deque()
        self.schedules: dict[int, Action] = {}
        self.ext_subs: dict[str, list[Action]] = {}
        self.ext_arrivals: dict[str, list[str]] = {}
        self.queue_subs: list[Action] = []
        self.queue_msgs: dict[str, deque[str]] = {}
        carried = started.carry_forward_events
        if isinstance(carried, tuple):
            for name, data in carried:
                self.queue_msgs.setdefault(name, deque()).append(data)
        self._seq = itertools.count(1)

        self.gen: types.GeneratorType[Any, Any, Any] | None = None
        self.task: _Task | None = None
        self.last_task: dict[str, Any] | None = None
        self.last_where = ""
        self.finished: ReplayStatus | None = None
        self.output: str | None = None
        self.error: ErrorDetails | None = None
        self.exception: BaseException | None = None

    # -- recording (called by the context) --------------------------------------

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

    def _mismatch(self, event: Event | None, recorded: str, attempted: str, where: str) -> NoReturn:
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

    def _code_state(self) -> tuple[str, str]:
        """What the code is doing now, and where, for a mismatch message."""
        if self.finished == "completed":
            return f"had already returned {self.output}", self.last_where
        if self.finished == "continued_as_new":
            return f"had already continued as new with input {self.output}", self.last_where
        if self.finished == "failed":
            what = _summary_line(display_message(self.error)) if self.error else "failed"
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
        task = self._build(descriptor, where, top=True)
        if task is None:
            return
        self.task = task
        task.start(self)

    def _advance(self) -> None:
        """Resume the code for as long as the task it waits on is resolved."""
        while self.finished is None and self.task is not None:
            outcome = self.task.poll(self)
            if outcome is None:
                return
            self.task = None
            value = _parse(outcome.raw)
            if not outcome.ok:
                message = value if isinstance(value, str) else json.dumps(value)
                self._resume(None, Exception(message))
                continue
            last = self.last_task
            if (
                last is not None
                and value is not None
                and last.get("_typed_all")
                and isinstance(value, list)
            ):
                value = [
                    item.get("ok") if isinstance(item, dict) and "ok" in item else item
                    for item in value
                ]
            self._resume(value, None)

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

    def _build(self, descriptor: Any, where: str, *, top: bool = False) -> _Task | None:
        """A task for a yielded descriptor; None when it ends the code (continue-as-new)."""
        if not isinstance(descriptor, dict) or not isinstance(descriptor.get("type"), str):
            exc = TypeError(
                f"orchestration yielded {descriptor!r}, not a task from the context (at {where})"
            )
            if top:
                self._fail(exc)
                return None
            raise exc
        d: dict[str, Any] = descriptor
        kind = d["type"]
        tag = d.get("tag")
        if kind in ("activity", "activityWithSession"):
            return _Primitive(
                Action(
                    "activity",
                    where,
                    name=str(d["name"]),
                    input=str(d["input"]),
                    session_id=d.get("sessionId"),
                    tag=tag,
                )
            )
        if kind in ("activityWithRetry", "activityWithRetryOnSession"):
            name, data, session = str(d["name"]), str(d["input"]), d.get("sessionId")

            def attempt() -> Action:
                return Action("activity", where, name=name, input=data, session_id=session, tag=tag)

            return _Retry(where, attempt, dict(d.get("retry") or {}))
        if kind == "timer":
            return _Primitive(Action("timer", where, delay_ms=int(d.get("delayMs") or 0)))
        if kind == "waitEvent":
            return _Primitive(Action("wait_event", where, name=str(d["name"])))
        if kind == "dequeueEvent":
            return _Primitive(Action("dequeue_event", where, name=str(d["queueName"])))
        if kind in (
            "subOrchestration",
            "subOrchestrationWithId",
            "subOrchestrationVersioned",
            "subOrchestrationVersionedWithId",
        ):
            return _Primitive(
                Action(
                    "sub_orchestration",
                    where,
                    name=str(d["name"]),
                    input=str(d["input"]),
                    instance=d.get("instanceId"),
                    version=d.get("version"),
                )
            )
        if kind in ("orchestration", "orchestrationVersioned"):
            action = Action(
                "start_orchestration",
                where,
                name=str(d["name"]),
                input=str(d["input"]),
                instance=str(d["instanceId"]),
                version=d.get("version"),
            )
            return _Immediate(where, Outcome(True, "null"), action)
        if kind == "newGuid":
            return _Primitive(Action("new_guid", where))
        if kind == "utcNow":
            return _Primitive(Action("utc_now", where))
        if kind in ("continueAsNew", "continueAsNewVersioned"):
            if not top:
                return _Immediate(where, Outcome(False, "unsupported task"))
            self.output = str(d["input"])
            self.last_where = where
            self._finish("continued_as_new")
            return None
        if kind == "join":
            subs = list(d.get("tasks") or [])
            if any(isinstance(s, dict) and s.get("type") in ("join", "select") for s in subs):
                return _Immediate(
                    where, Outcome(False, "nested join/select inside join is not supported")
                )
            return _Join(where, [self._child(s, where, "join") for s in subs])
        if kind == "select":
            subs = list(d.get("tasks") or [])
            if len(subs) != 2:
                return _Immediate(
                    where, Outcome(False, "select currently supports exactly 2 tasks")
                )
            if any(isinstance(s, dict) and s.get("type") in ("join", "select") for s in subs):
                return _Immediate(
                    where, Outcome(False, "nested join/select inside select is not supported")
                )
            return _Select(where, [self._child(s, where, "select") for s in subs])
        unknown = ValueError(f"unknown task type {kind!r} (at {where})")
        if top:
            self._fail(unknown)
            return None
        raise unknown

    def _child(self, descriptor: Any, where: str, parent: str) -> _Task:
        supported = (
            "activity",
            "activityWithSession",
            "activityWithRetry",
            "activityWithRetryOnSession",
            "timer",
            "waitEvent",
            "dequeueEvent",
            "subOrchestration",
            "subOrchestrationWithId",
            "subOrchestrationVersioned",
            "subOrchestrationVersionedWithId",
        )
        if isinstance(descriptor, dict) and descriptor.get("type") in supported:
            task = self._build(descriptor, where)
            assert task is not None
            return task
        message = f"unsupported task in {parent}"
        # duroxide resolves an unsupported join member as an error entry and an
        # unsupported select member as a value, without scheduling anything.
        return _Immediate(where, Outcome(parent != "join", json.dumps(message)))

    # -- applying history -------------------------------------------------------

    def _deliver(self, action: Action, outcome: Outcome) -> None:
        if action.outcome is None:
            action.outcome = outcome
            action.seq = next(self._seq)

    def _take_action(self, event: Event) -> Action:
        """The queued action this scheduling event records (must match)."""
        while self.queue:
            action = self.queue[0]
            if _matches(action, event):
                self.queue.popleft()
                return action
            if action.kind in _RECORD_KINDS and _is_legacy(event):
                # V0 could not record custom status or key-value changes.
                self.queue.popleft()
                continue
            extra = ""
            if action.kind == "dequeue_event" and _is_legacy(event):
                extra = " (legacy V0 histories cannot record queue subscriptions)"
            self._mismatch(
                event,
                describe_event(event),
                f"{'recorded' if action.kind in _RECORD_KINDS else 'scheduled'} "
                f"{action.describe()}{extra}",
                action.where,
            )
        state, where = self._code_state()
        self._mismatch(event, describe_event(event), f"scheduled nothing more: it {state}", where)

    def _apply(self, event: Event) -> None:
        if isinstance(event, _SCHEDULING):
            action = self._take_action(event)
            action.event_id = event.event_id
            self.schedules[event.event_id] = action
            if isinstance(event, ev.SystemCall):
                raw = json.dumps(event.value) if action.kind == "new_guid" else event.value
                self._deliver(action, Outcome(True, raw))
            elif isinstance(event, ev.ExternalSubscribed):
                self.ext_subs.setdefault(event.name, []).append(action)
                self._fill_slots(event.name)
            elif isinstance(event, ev.ExternalSubscribedPersistent):
                self.queue_subs.append(action)
                self._pump(event.name)
            elif isinstance(event, ev.KeyValueSet):
                self.kv_updated[event.key] = event.last_updated_at_ms or event.timestamp_ms
            return
        kinds = _COMPLETION_KIND.get(type(event))
        if kinds is not None:
            source = event.source_event_id
            target = self.schedules.get(source) if source is not None else None
            if target is None or target.kind not in kinds:
                state, where = self._code_state()
                named = (
                    f"event {source}, which the code did not schedule"
                    if target is None
                    else f"event {source}, which the code scheduled as {target.describe()}"
                )
                self._mismatch(event, f"{event.event_type} for {named}", state, where)
            self._deliver(target, self._completion_outcome(event, target))
            return
        match event:
            case ev.ExternalEvent(name=name, data=data):
                active = [s for s in self.ext_subs.get(name, []) if not s.cancelled]
                arrivals = self.ext_arrivals.setdefault(name, [])
                if len(active) > len(arrivals):
                    arrivals.append(data)
                    self._fill_slots(name)
            case ev.ExternalEventPersistent(name=name, data=data):
                self.queue_msgs.setdefault(name, deque()).append(data)
                self._pump(name)
            case (
                ev.ExternalSubscribedCancelled()
                | ev.ExternalSubscribedPersistentCancelled()
                | ev.ActivityCancelRequested()
                | ev.SubOrchestrationCancelRequested()
            ):
                if event.source_event_id is not None:
                    cancelled = self.schedules.get(event.source_event_id)
                    if cancelled is not None:
                        cancelled.cancelled = True
            case ev.OrchestrationCancelRequested(reason=reason):
                if self.finished is None:
                    # Cancellation ends the code where it stands: what it asked
                    # for and the runtime did not record yet is dropped.
                    self.queue.clear()
                    self.error = ev.ApplicationError(
                        kind=ev.Cancelled(reason=reason), message="", retryable=False
                    )
                    self._finish("failed")
            case ev.OrchestrationStarted():
                raise InvalidHistoryError(
                    f"a second OrchestrationStarted at event {event.event_id}",
                    location=self.location,
                )
            case _:
                pass  # unknown types and anything else carry nothing to replay

    def _completion_outcome(self, event: Event, action: Action) -> Outcome:
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

    def _fill_slots(self, name: str) -> None:
        active = [s for s in self.ext_subs.get(name, []) if not s.cancelled]
        arrivals = self.ext_arrivals.get(name, [])
        for index, sub in enumerate(active):
            if sub.outcome is None and index < len(arrivals):
                self._deliver(sub, Outcome(True, arrivals[index]))

    def _pump(self, name: str) -> None:
        messages = self.queue_msgs.get(name)
        if not messages:
            return
        for sub in self.queue_subs:
            if not messages:
                return
            if sub.name == name and not sub.cancelled and sub.outcome is None:
                self._deliver(sub, Outcome(True, messages.popleft()))

    # -- the terminal event -----------------------------------------------------

    def _check_terminal(self, event: Event) -> None:
        # Recorded-only actions still queued: V1 must hold them before the end.
        while self.queue:
            action = self.queue[0]
            if action.kind in _RECORD_KINDS and _is_legacy(event):
                self.queue.popleft()
                continue
            extra = ""
            if action.kind == "dequeue_event" and _is_legacy(event):
                extra = " (legacy V0 histories cannot record queue subscriptions)"
            verb = "recorded" if action.kind in _RECORD_KINDS else "scheduled"
            self._mismatch(
                event, describe_event(event), f"{verb} {action.describe()}{extra}", action.where
            )
        if self.finished is None:
            state, where = self._code_state()
            self._mismatch(event, describe_event(event), state, where)
        expected = {
            "completed": ev.OrchestrationCompleted,
            "failed": ev.OrchestrationFailed,
            "continued_as_new": ev.OrchestrationContinuedAsNew,
        }[self.finished or "completed"]
        state, where = self._code_state()
        if type(event) is not expected:
            self._mismatch(event, describe_event(event), state, where)
        match event:
            case ev.OrchestrationCompleted(output=output):
                assert self.output is not None
                if not _same_json(output, self.output):
                    self._mismatch(event, describe_event(event), f"returned {self.output}", where)
            case ev.OrchestrationContinuedAsNew(input=data):
                assert self.output is not None
                if not _same_json(data, self.output):
                    self._mismatch(
                        event, describe_event(event), f"continued as new with {self.output}", where
                    )
            case ev.OrchestrationFailed(details=details):
                assert self.error is not None
                stored = _summary_line(display_message(details))
                mine = _summary_line(display_message(self.error))
                if stored != mine:
                    self._mismatch(event, describe_event(event), f"failed with {mine!r}", where)

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
                self._check_terminal(event)
                terminal = event
                continue
            self._apply(event)
            self._advance()
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
