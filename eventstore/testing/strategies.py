"""Hypothesis strategies for events, histories, legacy rows and hostile payloads.

Needs the `hypothesis` package (a test dependency; not needed by the rest of
eventstore).

* `hostile_strings()`, `json_values()`, `payloads()` (JSON text);
* `error_details()`: every ErrorDetails variant and kind;
* `events(types=None)`: one event of any (or the named) known types;
* `histories()`: whole valid V1 executions (OrchestrationStarted first, ids
  increasing, completions naming an earlier scheduling event, at most one
  terminal event, last);
* `legacy_histories()`: V0 executions as raw rows (dicts with the history
  table's columns; `event_data` is the V0 JSON text).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Final, Literal

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from .. import events as ev
from ..codec import error_details_to_wire
from ..events import SYSTEM_CALL_PREFIX, ErrorDetails, Event
from .builder import HistoryBuilder, RawJson

__all__ = [
    "HOSTILE_STRINGS",
    "error_details",
    "events",
    "histories",
    "hostile_strings",
    "instance_ids",
    "json_values",
    "legacy_histories",
    "payloads",
]

MAX_ID: Final = 2**63 - 1

HOSTILE_STRINGS: Final[tuple[str, ...]] = (
    "",
    " ",
    "\x00",
    "\x00\x01\x1f\x7f",
    "\u2028\u2029",
    '"',
    "\\",
    '\\"',
    "\\u0000",
    "\n\r\t",
    "null",
    "{}",
    '{"type":"OrchestrationStarted"}',
    '{"ActivityScheduled":{}}',
    "'; DROP TABLE history; --",
    "%s%n%x",
    "<script>alert(1)</script>",
    "é\u0301",
    "\u202eevil",
    "\ufeffbom",
    "🎉👩\u200d👩\u200d👧",
    "\U0010ffff",
    "a" * 5000,
)
"""Strings that break naive JSON, SQL, terminal or Unicode handling."""


def hostile_strings() -> SearchStrategy[str]:
    """Text that is valid Unicode (no lone surrogates) but hostile to handle."""
    return st.one_of(
        st.sampled_from(HOSTILE_STRINGS),
        st.text(),
        st.text(alphabet=st.characters(codec="utf-8", min_codepoint=0)),
    )


def instance_ids() -> SearchStrategy[str]:
    """Instance ids a store accepts: non-empty, no NUL (PostgreSQL TEXT cannot hold it)."""
    return hostile_strings().filter(lambda s: bool(s) and "\x00" not in s)


def json_values(max_leaves: int = 8) -> SearchStrategy[Any]:
    """JSON-representable values, strings hostile."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**53), max_value=2**53),
        st.floats(allow_nan=False, allow_infinity=False),
        hostile_strings(),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(hostile_strings(), children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def payloads() -> SearchStrategy[str]:
    """Payload fields (input, output, result, data) as duroxide stores them: JSON text."""
    return json_values().map(json.dumps)


_ids = st.integers(min_value=1, max_value=MAX_ID)
_u64 = st.integers(min_value=0, max_value=MAX_ID)
_small = st.integers(min_value=0, max_value=1000)
_names = st.one_of(
    st.sampled_from(["Work", "Flaky", "Child", "Approve", "inbox"]), hostile_strings()
)
_versions = st.sampled_from(["0.1.32", "0.1.29", "1.0.0", "0.2.0-beta.1"])
_timestamps = st.integers(min_value=1, max_value=2**53)


def error_details() -> SearchStrategy[ErrorDetails]:
    """Every ErrorDetails variant with every kind it may carry."""
    app_kinds: SearchStrategy[Any] = st.one_of(
        st.sampled_from(["ActivityFailed", "OrchestrationFailed", "Panicked"]),
        st.builds(ev.Cancelled, reason=hostile_strings()),
    )
    config_kinds: SearchStrategy[Any] = st.one_of(
        st.sampled_from(["Nondeterminism", "UnregisteredOrchestration", "UnregisteredActivity"]),
        st.builds(ev.MissingVersion, requested_version=_versions),
    )
    message_types: SearchStrategy[Any] = st.one_of(
        st.builds(ev.OrchestrationMessage, instance=hostile_strings(), execution_id=_u64),
        st.builds(
            ev.ActivityMessage,
            instance=hostile_strings(),
            execution_id=_u64,
            activity_name=_names,
            activity_id=_u64,
        ),
        st.builds(
            ev.FailedDeserializationMessage,
            instance=hostile_strings(),
            execution_id=_u64,
            error=hostile_strings(),
        ),
    )
    return st.one_of(
        st.builds(
            ev.ApplicationError, kind=app_kinds, message=hostile_strings(), retryable=st.booleans()
        ),
        st.builds(
            ev.InfrastructureError,
            operation=hostile_strings(),
            message=hostile_strings(),
            retryable=st.booleans(),
        ),
        st.builds(
            ev.ConfigurationError,
            kind=config_kinds,
            resource=hostile_strings(),
            message=st.none() | hostile_strings(),
        ),
        st.builds(
            ev.PoisonError,
            attempt_count=_small,
            max_attempts=_small,
            message_type=message_types,
            message=hostile_strings(),
        ),
    )


def _fields() -> dict[str, dict[str, SearchStrategy[Any]]]:
    text = hostile_strings()
    details = error_details()
    return {
        "OrchestrationStarted": {
            "name": _names,
            "version": _versions,
            "input": payloads(),
            "parent_instance": st.none() | text,
            "parent_id": st.none() | _ids,
        },
        "OrchestrationCompleted": {"output": payloads()},
        "OrchestrationFailed": {"details": details},
        "OrchestrationContinuedAsNew": {"input": payloads()},
        "OrchestrationCancelRequested": {"reason": text},
        "OrchestrationChained": {"name": _names, "instance": text, "input": payloads()},
        "ActivityScheduled": {"name": _names, "input": payloads()},
        "ActivityCompleted": {"result": payloads()},
        "ActivityFailed": {"details": details},
        "ActivityCancelRequested": {"reason": text},
        "TimerCreated": {"fire_at_ms": _u64},
        "TimerFired": {"fire_at_ms": _u64},
        "ExternalSubscribed": {"name": _names},
        "ExternalEvent": {"name": _names, "data": payloads()},
        "ExternalSubscribedCancelled": {"reason": text},
        "ExternalSubscribedPersistent": {"name": _names},
        "ExternalEventPersistent": {"name": _names, "data": payloads()},
        "ExternalSubscribedPersistentCancelled": {"reason": text},
        "SubOrchestrationScheduled": {"name": _names, "instance": text, "input": payloads()},
        "SubOrchestrationCompleted": {"result": payloads()},
        "SubOrchestrationFailed": {"details": details},
        "SubOrchestrationCancelRequested": {"reason": text},
        "CustomStatusUpdated": {"status": st.none() | text},
        "KeyValueSet": {"key": text, "value": text, "last_updated_at_ms": _u64},
        "KeyValueCleared": {"key": text},
        "KeyValuesCleared": {},
        "SystemCall": {"op": st.sampled_from(["new_guid", "utc_now_ms"]), "value": text},
    }


def events(types: Iterable[str] | None = None) -> SearchStrategy[Event]:
    """Single V1 events of the named types (default: every known type)."""
    table = _fields()
    names = sorted(table) if types is None else list(types)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"unknown event types: {unknown}")
    choices: list[SearchStrategy[Any]] = []
    for name in names:
        cls = ev.EVENT_TYPES[name]
        source = _ids if name in ev.COMPLETION_SOURCES else st.none()
        choices.append(
            st.builds(
                cls,
                event_id=_ids,
                source_event_id=source,
                instance_id=instance_ids(),
                execution_id=_ids,
                timestamp_ms=_timestamps,
                duroxide_version=_versions,
                **table[name],
            )
        )
    return st.one_of(choices)


Terminal = Literal["completed", "failed", "continued_as_new", "cancelled"]
_TERMINALS: Final[tuple[Terminal, ...]] = ("completed", "failed", "continued_as_new", "cancelled")


@st.composite
def histories(
    draw: st.DrawFn,
    *,
    max_steps: int = 12,
    terminal: Terminal | Literal["any"] | None = "any",
    instance_id: str | None = None,
    open_operations: bool = True,
) -> list[Event]:
    """A whole valid V1 execution, built with HistoryBuilder.

    `terminal`: the end to give it ("any" draws one, or none: still running).
    `open_operations`: whether activities and timers may be left without (or
    completed long after) their completion; without them every operation
    completes right after it is scheduled, as sequential code does.
    """
    builder = HistoryBuilder(
        instance_id if instance_id is not None else draw(instance_ids()),
        draw(_names),
        RawJson(draw(payloads())),
        execution_id=draw(st.integers(min_value=1, max_value=1000)),
        start_ms=draw(st.integers(min_value=1, max_value=2**50)),
    )
    value = st.builds(RawJson, payloads())
    failure = st.one_of(hostile_strings(), error_details())
    steps = _history_steps(draw, builder, value, failure)
    if not open_operations:
        del steps["open_activity"], steps["open_timer"]
    for step in draw(st.lists(st.sampled_from(sorted(steps)), max_size=max_steps)):
        steps[step]()
    _complete_some_open(draw, builder, value)
    end = draw(st.sampled_from((*_TERMINALS, None))) if terminal == "any" else terminal
    ends: dict[object, Callable[[], object]] = {
        "completed": lambda: builder.completed(draw(value)),
        "failed": lambda: builder.failed(draw(failure)),
        "continued_as_new": lambda: builder.continued_as_new(draw(value)),
        "cancelled": lambda: builder.cancelled(draw(hostile_strings())),
    }
    ends.get(end, lambda: None)()
    return builder.build()


def _history_steps(
    draw: st.DrawFn,
    builder: HistoryBuilder,
    value: SearchStrategy[RawJson],
    failure: SearchStrategy[str | ErrorDetails],
) -> dict[str, Callable[[], object]]:
    """Step name -> a call adding that step (drawing its fields) to `builder`."""
    return {
        "activity": lambda: builder.activity(
            draw(_names), draw(value), result=draw(value), error=draw(st.none() | failure)
        ),
        "open_activity": lambda: builder.activity_scheduled(
            draw(_names),
            draw(value),
            session_id=draw(st.none() | hostile_strings()),
            tag=draw(st.none() | hostile_strings()),
        ),
        "timer": lambda: builder.timer(draw(_small)),
        "open_timer": lambda: builder.timer_created(draw(_small)),
        "wait_event": lambda: builder.wait_event(draw(_names), draw(value)),
        "dequeue": lambda: builder.dequeue(draw(_names), draw(value)),
        "sub_orchestration": lambda: builder.sub_orchestration(
            draw(_names), draw(value), result=draw(value), error=draw(st.none() | failure)
        ),
        "chained": lambda: builder.orchestration_chained(
            draw(_names), draw(hostile_strings()), draw(value)
        ),
        "custom_status": lambda: builder.custom_status(draw(st.none() | hostile_strings())),
        "kv_set": lambda: builder.kv_set(draw(hostile_strings()), draw(hostile_strings())),
        "kv_cleared": lambda: builder.kv_cleared(draw(hostile_strings())),
        "kv_all_cleared": builder.kv_all_cleared,
        "new_guid": lambda: builder.new_guid(draw(st.uuids()).hex),
        "utc_now": lambda: builder.utc_now(),
    }


def _complete_some_open(
    draw: st.DrawFn, builder: HistoryBuilder, value: SearchStrategy[RawJson]
) -> None:
    """Complete some of the operations left open, in any order."""
    while True:
        still_open = builder.open_operations
        if not still_open or not draw(st.booleans()):
            break
        event_id, kind, _ = still_open[draw(st.integers(0, len(still_open) - 1))]
        if kind == "activity":
            builder.activity_completed(draw(value), source=event_id)
        elif kind == "timer":
            builder.timer_fired(source=event_id)
        else:
            break


class _LegacyRows:
    """The V0 events of one legacy execution, drawn one by one."""

    def __init__(self, draw: st.DrawFn, generation: str, execution: int) -> None:
        self.draw = draw
        self.generation = generation
        self.execution = execution
        self.bodies: list[tuple[str, dict[str, Any]]] = []
        self._ids = iter(range(1, 10_000))
        self._last = 0

    def add(self, type_name: str, body: dict[str, Any]) -> int:
        """Append an event with the next id (increasing, sometimes with a gap); its id."""
        candidate = next(self._ids) + self.draw(st.sampled_from([0, 0, 0, 1]))
        self._last = max(self._last + 1, candidate)
        self.bodies.append((type_name, {"event_id": self._last, **body}))
        return self._last

    def failure(self) -> dict[str, Any]:
        """A failure's fields: `error` text (V0a) or structured `details` (V0b)."""
        if self.generation == "V0a":
            return {"error": self.draw(hostile_strings())}
        details = self.draw(
            error_details().filter(
                lambda d: isinstance(
                    d, ev.ApplicationError | ev.InfrastructureError | ev.ConfigurationError
                )
            )
        )
        return {"details": error_details_to_wire(details)}

    def rows(self, instance: str) -> list[dict[str, Any]]:
        """The events as rows of the history table."""
        return [
            {
                "instance_id": instance,
                "execution_id": self.execution,
                "event_id": body["event_id"],
                "event_type": type_name,
                "event_data": json.dumps(
                    {type_name: body}, ensure_ascii=False, separators=(",", ":")
                ),
                "created_at": None,
            }
            for type_name, body in self.bodies
        ]


def _legacy_activity(r: _LegacyRows) -> None:
    draw = r.draw
    source = r.add(
        "ActivityScheduled",
        {"name": draw(_names), "input": draw(payloads()), "execution_id": r.execution},
    )
    if draw(st.booleans()):
        r.add("ActivityCompleted", {"source_event_id": source, "result": draw(payloads())})
    else:
        r.add("ActivityFailed", {"source_event_id": source, **r.failure()})


def _legacy_timer(r: _LegacyRows) -> None:
    at = r.draw(_u64)
    source = r.add("TimerCreated", {"fire_at_ms": at, "execution_id": r.execution})
    r.add("TimerFired", {"source_event_id": source, "fire_at_ms": at})


def _legacy_event(r: _LegacyRows) -> None:
    name = r.draw(_names)
    r.add("ExternalSubscribed", {"name": name})
    r.add("ExternalEvent", {"name": name, "data": r.draw(payloads())})


def _legacy_sub(r: _LegacyRows) -> None:
    draw = r.draw
    source = r.add(
        "SubOrchestrationScheduled",
        {
            "name": draw(_names),
            "instance": draw(hostile_strings()),
            "input": draw(payloads()),
            "execution_id": r.execution,
        },
    )
    if draw(st.booleans()):
        r.add("SubOrchestrationCompleted", {"source_event_id": source, "result": draw(payloads())})
    else:
        r.add("SubOrchestrationFailed", {"source_event_id": source, **r.failure()})


def _legacy_system_call(r: _LegacyRows) -> None:
    op = r.draw(st.sampled_from(["new_guid", "utc_now_ms"]))
    value = r.draw(st.uuids()).hex if op == "new_guid" else str(r.draw(_timestamps))
    r.add("SystemCall", {"op": op, "value": value, "execution_id": r.execution})


def _legacy_chained(r: _LegacyRows) -> None:
    draw = r.draw
    r.add(
        "OrchestrationChained",
        {"name": draw(_names), "instance": draw(hostile_strings()), "input": draw(payloads())},
    )


_LEGACY_STEPS: Final[dict[str, Callable[[_LegacyRows], None]]] = {
    "activity": _legacy_activity,
    "timer": _legacy_timer,
    "event": _legacy_event,
    "sub": _legacy_sub,
    "system_call": _legacy_system_call,
    "chained": _legacy_chained,
}
"""Legacy step -> the events it adds (drawing their fields)."""

_LEGACY_ENDS: Final[dict[str, Callable[[_LegacyRows], object]]] = {
    "completed": lambda r: r.add("OrchestrationCompleted", {"output": r.draw(payloads())}),
    "failed": lambda r: r.add("OrchestrationFailed", r.failure()),
    "continued": lambda r: r.add("OrchestrationContinuedAsNew", {"input": r.draw(payloads())}),
    "cancelled": lambda r: r.add(
        "OrchestrationCancelRequested", {"reason": r.draw(hostile_strings())}
    ),
}
"""Legacy terminal -> the event it adds."""


@st.composite
def legacy_histories(
    draw: st.DrawFn,
    *,
    generation: Literal["V0a", "V0b"] | None = None,
    max_steps: int = 10,
    instance_id: str | None = None,
) -> list[dict[str, Any]]:
    """A legacy V0 execution as raw history rows (what a V0 writer stored).

    Each row is a dict of the table's columns; `event_data` is the V0 JSON
    (`{"TypeName": {...}}`, no instance, timestamp or version). Failures carry
    `error` (V0a) or `details` (V0b); the generation is drawn unless given.
    Ids are increasing and may have gaps, as in real legacy data.
    """
    gen: str = generation or draw(st.sampled_from(["V0a", "V0b"]))
    instance = instance_id if instance_id is not None else draw(instance_ids())
    execution = draw(st.integers(min_value=1, max_value=1000))
    rows = _LegacyRows(draw, gen, execution)
    rows.add(
        "OrchestrationStarted",
        {
            "name": draw(_names),
            "version": draw(_versions),
            "input": draw(payloads()),
            "parent_instance": None,
            "parent_id": None,
        },
    )
    kinds = ["activity", "timer", "event", "sub", "system_call", "chained"]
    for step in draw(st.lists(st.sampled_from(kinds), max_size=max_steps)):
        _LEGACY_STEPS[step](rows)
    end = draw(st.sampled_from(["completed", "failed", "continued", "cancelled", None]))
    if end is not None:
        _LEGACY_ENDS[end](rows)
    return rows.rows(instance)


# Exposed for tests that want the reserved names.
SYSTEM_CALLS: Final = (SYSTEM_CALL_PREFIX + "new_guid", SYSTEM_CALL_PREFIX + "utc_now_ms")
