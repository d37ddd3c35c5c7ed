"""The append's shortcut (`rules.batch_clears`) never clears a batch that the
rules themselves (`ExecutionRules`) refuse, and clears the common batches.

The batches are drawn from small alphabets of ids, types and sources so that
Hypothesis meets every rule broken and kept: gaps, a late or second start,
events after a terminal one, sources before, at and after their event,
pointing at the wrong kind, at a stored event or at nothing.
"""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore import events as ev
from eventstore.store.rules import ExecutionRules, batch_clears

TYPES = [
    "OrchestrationStarted",
    "ActivityScheduled",
    "ActivityCompleted",
    "ActivityFailed",
    "TimerCreated",
    "TimerFired",
    "ExternalEvent",
    "OrchestrationCompleted",
    "OrchestrationContinuedAsNew",
    "CustomStatusUpdated",
]


def _event(event_type: str, event_id: int, source: int | None) -> ev.Event:
    cls = ev.EVENT_TYPES[event_type]
    fields = {f.name: f for f in msgspec.structs.fields(cls)}
    values: dict[str, object] = {"event_id": event_id}
    if "source_event_id" in fields:
        values["source_event_id"] = source
    for name, info in fields.items():
        if name in values or info.required is False:
            continue
        values[name] = 0 if info.type in (int,) else ""
    return cls(**values)  # type: ignore[no-any-return]


@st.composite
def situations(draw: st.DrawFn) -> tuple[int, dict[int, str], list[ev.Event]]:
    stored = draw(st.lists(st.sampled_from(TYPES), max_size=4))
    last = len(stored)
    start = last + 1 + draw(st.sampled_from([0, 0, 0, 1, -1]))
    count = draw(st.integers(1, 5))
    events = []
    event_id = max(start, 1)
    for _ in range(count):
        event_type = draw(st.sampled_from(TYPES))
        source = draw(st.one_of(st.none(), st.integers(0, event_id + 1)))
        events.append(_event(event_type, event_id, source))
        event_id += draw(st.sampled_from([1, 1, 1, 2]))
    return last, dict(enumerate(stored, start=1)), events


def _walk_refuses(last: int, stored: dict[int, str], events: list[ev.Event]) -> bool:
    rules = ExecutionRules(last_event_id=last, started=last > 0, lookup=stored.get)
    if stored.get(last) in ev.TERMINAL_TYPES:
        rules.terminal = last
    return any(rules.check(event) for event in events)


def _clears(
    last: int, last_type: str, events: list[ev.Event], stored: dict[int, str] | None = None
) -> bool:
    types = [e.event_type for e in events]
    lookup = None if stored is None else stored.get
    return batch_clears([e.event_id for e in events], types, events, last, last_type, lookup)


@settings(max_examples=3000, deadline=None)
@given(situations(), st.booleans())
def test_the_shortcut_never_clears_what_the_rules_refuse(
    situation: tuple[int, dict[int, str], list[ev.Event]], with_stored_types: bool
) -> None:
    """Also when it answers sources before the stored last event from the
    stored types (the append's second try, after reading them)."""
    last, stored, events = situation
    if _clears(last, stored.get(last, ""), events, stored if with_stored_types else None):
        assert not _walk_refuses(last, stored, events)


def test_the_shortcut_clears_the_common_batches() -> None:
    first = [
        _event("OrchestrationStarted", 1, None),
        _event("ActivityScheduled", 2, None),
        _event("TimerCreated", 3, None),
        _event("TimerFired", 4, 3),
    ]
    assert _clears(0, "", first)
    # A completion of the stored last event, and one of an event in the batch.
    later = [
        _event("ActivityCompleted", 5, 4),
        _event("ActivityScheduled", 6, None),
        _event("ActivityFailed", 7, 6),
        _event("OrchestrationCompleted", 8, None),
    ]
    assert _clears(4, "ActivityScheduled", later)


def test_the_shortcut_sends_the_rest_to_the_walk() -> None:
    completion = [_event("ActivityCompleted", 4, 2), _event("OrchestrationCompleted", 5, None)]
    # The source (2) is stored but not the last event: the walk looks it up,
    # unless the stored types are given, and then only when they fit.
    assert not _clears(3, "ActivityScheduled", completion)
    stored = {1: "OrchestrationStarted", 2: "ActivityScheduled", 3: "ActivityScheduled"}
    assert _clears(3, "ActivityScheduled", completion, stored)
    assert not _clears(3, "ActivityScheduled", completion, {**stored, 2: "TimerCreated"})
    assert not _clears(3, "ActivityScheduled", completion, {1: "OrchestrationStarted"})
    orphan = [_event("ActivityCompleted", 4, 0)]
    assert not _clears(3, "ActivityScheduled", orphan, {0: "ActivityScheduled", **stored})
    assert not _clears(3, "OrchestrationCompleted", [_event("ActivityScheduled", 4, None)])
    assert not _clears(3, "TimerCreated", [_event("ActivityCompleted", 4, 3)])
    assert not _clears(3, "ActivityScheduled", [_event("ActivityCompleted", 4, None)])
    assert not _clears(3, "ActivityScheduled", [_event("ActivityCompleted", 4, 4)])
    assert not _clears(0, "", [_event("ActivityScheduled", 1, None)])
    assert not _clears(3, "ActivityScheduled", [_event("ActivityScheduled", 5, None)])
