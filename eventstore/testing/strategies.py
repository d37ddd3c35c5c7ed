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
    steps: dict[str, Callable[[], object]] = {
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
    if not open_operations:
        del steps["open_activity"], steps["open_timer"]
    for step in draw(st.lists(st.sampled_from(sorted(steps)), max_size=max_steps)):
        steps[step]()
    # Complete some of the operations left open, in any order.
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
    end = draw(st.sampled_from((*_TERMINALS, None))) if terminal == "any" else terminal
    if end == "completed":
        builder.completed(draw(value))
    elif end == "failed":
        builder.failed(draw(failure))
    elif end == "continued_as_new":
        builder.continued_as_new(draw(value))
    elif end == "cancelled":
        builder.cancelled(draw(hostile_strings()))
    return builder.build()


def _v0_failure(draw: st.DrawFn, generation: str) -> dict[str, Any]:
    if generation == "V0a":
        return {"error": draw(hostile_strings())}
    details = draw(
        error_details().filter(
            lambda d: isinstance(
                d, ev.ApplicationError | ev.InfrastructureError | ev.ConfigurationError
            )
        )
    )
    return {"details": error_details_to_wire(details)}


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
    bodies: list[tuple[str, dict[str, Any]]] = []
    ids = iter(range(1, 10_000))
    last = 0

    def next_id() -> int:
        return next(ids) + draw(st.sampled_from([0, 0, 0, 1]))

    def add(type_name: str, body: dict[str, Any]) -> int:
        nonlocal last
        last = max(last + 1, next_id())
        bodies.append((type_name, {"event_id": last, **body}))
        return last

    add(
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
        if step == "activity":
            source = add(
                "ActivityScheduled",
                {"name": draw(_names), "input": draw(payloads()), "execution_id": execution},
            )
            if draw(st.booleans()):
                add("ActivityCompleted", {"source_event_id": source, "result": draw(payloads())})
            else:
                add("ActivityFailed", {"source_event_id": source, **_v0_failure(draw, gen)})
        elif step == "timer":
            at = draw(_u64)
            source = add("TimerCreated", {"fire_at_ms": at, "execution_id": execution})
            add("TimerFired", {"source_event_id": source, "fire_at_ms": at})
        elif step == "event":
            name = draw(_names)
            add("ExternalSubscribed", {"name": name})
            add("ExternalEvent", {"name": name, "data": draw(payloads())})
        elif step == "sub":
            source = add(
                "SubOrchestrationScheduled",
                {
                    "name": draw(_names),
                    "instance": draw(hostile_strings()),
                    "input": draw(payloads()),
                    "execution_id": execution,
                },
            )
            if draw(st.booleans()):
                add(
                    "SubOrchestrationCompleted",
                    {"source_event_id": source, "result": draw(payloads())},
                )
            else:
                add("SubOrchestrationFailed", {"source_event_id": source, **_v0_failure(draw, gen)})
        elif step == "system_call":
            op = draw(st.sampled_from(["new_guid", "utc_now_ms"]))
            value = draw(st.uuids()).hex if op == "new_guid" else str(draw(_timestamps))
            add("SystemCall", {"op": op, "value": value, "execution_id": execution})
        else:
            add(
                "OrchestrationChained",
                {
                    "name": draw(_names),
                    "instance": draw(hostile_strings()),
                    "input": draw(payloads()),
                },
            )
    end = draw(st.sampled_from(["completed", "failed", "continued", "cancelled", None]))
    if end == "completed":
        add("OrchestrationCompleted", {"output": draw(payloads())})
    elif end == "failed":
        add("OrchestrationFailed", _v0_failure(draw, gen))
    elif end == "continued":
        add("OrchestrationContinuedAsNew", {"input": draw(payloads())})
    elif end == "cancelled":
        add("OrchestrationCancelRequested", {"reason": draw(hostile_strings())})
    return [
        {
            "instance_id": instance,
            "execution_id": execution,
            "event_id": body["event_id"],
            "event_type": type_name,
            "event_data": json.dumps({type_name: body}, ensure_ascii=False, separators=(",", ":")),
            "created_at": None,
        }
        for type_name, body in bodies
    ]


# Exposed for tests that want the reserved names.
SYSTEM_CALLS: Final = (SYSTEM_CALL_PREFIX + "new_guid", SYSTEM_CALL_PREFIX + "utc_now_ms")
