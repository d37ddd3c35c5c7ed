"""eventstore.pairing: which event ends which, the one rule the viewer's bars,
the trace spans and `eventstore show` are built from."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings

import eventstore
from eventstore import events as ev
from eventstore.cli.describe import pair_events
from eventstore.pairing import (
    ALREADY_ENDED,
    CLOCK_SKEW,
    NEVER_TAKEN,
    NO_SOURCE,
    NO_TIME,
    NO_WAIT,
    SCHEDULING_TYPES,
    WRONG_KIND,
    Pair,
    Pairer,
    Unpaired,
    pair_history,
)
from eventstore.testing.builder import HistoryBuilder
from eventstore.testing.tangled import tangled_histories
from eventstore.traces.spans import ExecutionSpans, TraceCounts
from eventstore.ui.timeline import build_bars

_EXTERNAL = frozenset(
    name for name in ev.EVENT_TYPES if name.startswith("External") and "Cancelled" not in name
)
_DELIVERIES = frozenset({"ExternalEvent", "ExternalEventPersistent"})


def _ends(history: list[ev.Event]) -> list[ev.Event]:
    return [
        e for e in history if e.event_type in ev.COMPLETION_SOURCES or e.event_type in _DELIVERIES
    ]


@settings(max_examples=150)
@given(tangled_histories())
def test_every_end_is_paired_once_or_reported_never_dropped(history: list[ev.Event]) -> None:
    found = pair_history(history)
    accounted: list[int] = []
    for pair in found.pairs:
        if pair.end is not None:
            accounted.append(pair.end.event_id)
        if pair.cancel_requested is not None:
            accounted.append(pair.cancel_requested.event_id)
    accounted += [u.event.event_id for u in found.unpaired]
    assert sorted(accounted) == [e.event_id for e in _ends(history)]
    scheduled = [p.scheduled.event_id for p in found.pairs]
    assert scheduled == [e.event_id for e in history if e.event_type in _SCHEDULING_NAMES]


_SCHEDULING_NAMES = frozenset(t.event_type for t in SCHEDULING_TYPES)


@settings(max_examples=150)
@given(tangled_histories())
def test_a_pair_by_source_names_an_earlier_event_of_a_kind_it_may_end(
    history: list[ev.Event],
) -> None:
    for pair in pair_history(history).pairs:
        for end in (pair.end, pair.cancel_requested):
            if end is None or end.event_type in _DELIVERIES:
                continue
            assert end.source_event_id == pair.scheduled.event_id < end.event_id
            assert pair.scheduled.event_type in ev.COMPLETION_SOURCES[end.event_type]
            assert not pair.by_name


@settings(max_examples=150)
@given(tangled_histories())
def test_unpaired_ends_say_truly_why(history: list[ev.Event]) -> None:
    by_id = {e.event_id: e for e in history}
    found = pair_history(history)
    ended_at = {p.scheduled.event_id: p.end.event_id for p in found.pairs if p.end is not None}
    for unpaired in found.unpaired:
        event, source = unpaired.event, unpaired.event.source_event_id
        if unpaired.reason == NO_SOURCE:
            assert source is None or source >= event.event_id
        elif unpaired.reason == WRONG_KIND:
            assert source is not None and source < event.event_id
            named = by_id[source].event_type
            assert unpaired.source_type == named
            assert named not in ev.COMPLETION_SOURCES[event.event_type]
        elif unpaired.reason == ALREADY_ENDED:
            assert source is not None
            assert unpaired.ended_by is not None and unpaired.ended_by < event.event_id
            cancel = event.event_type.endswith("CancelRequested")
            assert cancel or ended_at[source] == unpaired.ended_by
        elif unpaired.reason == NO_WAIT:
            assert event.event_type == "ExternalEvent"
            _assert_no_wait_open(found.pairs, event)
        else:
            assert unpaired.reason == NEVER_TAKEN and event.event_type == "ExternalEventPersistent"


def _assert_no_wait_open(pairs: tuple[Pair, ...], event: ev.Event) -> None:
    """No ExternalSubscribed of the event's name was open when it arrived."""
    assert isinstance(event, ev.ExternalEvent)
    for pair in pairs:
        wait = pair.scheduled
        if (
            isinstance(wait, ev.ExternalSubscribed)
            and wait.name == event.name
            and wait.event_id < event.event_id
        ):
            assert pair.end is not None and pair.end.event_id < event.event_id


@settings(max_examples=150)
@given(tangled_histories())
def test_external_events_answer_waits_of_their_name_oldest_first(
    history: list[ev.Event],
) -> None:
    found = pair_history(history)
    for persistent in (False, True):
        for name in ("a", "b"):
            by_name = [
                p
                for p in found.pairs
                if p.by_name
                and getattr(p.scheduled, "name", None) == name
                and isinstance(p.scheduled, ev.ExternalSubscribedPersistent) == persistent
            ]
            waits = [p.scheduled.event_id for p in by_name]
            answers = [p.end.event_id for p in by_name if p.end is not None]
            # First in, first out: waits answered in the order they began, each
            # by a later arrival than the wait before it.
            assert waits == sorted(waits) and answers == sorted(answers)
            for pair in by_name:
                assert pair.end is not None and pair.end.event_type in _DELIVERIES
                assert getattr(pair.end, "name", None) == name
                if not persistent:
                    assert pair.end.event_id > pair.scheduled.event_id


@settings(max_examples=100)
@given(tangled_histories())
def test_streaming_and_whole_history_pairing_agree(history: list[ev.Event]) -> None:
    pairer = Pairer()
    closed = {}
    for event in history:
        step = pairer.add(event)
        if isinstance(step, Pair) and step.end is not None:
            closed[step.scheduled.event_id] = step.end.event_id
    found = pair_history(history)
    assert closed == {p.scheduled.event_id: p.end.event_id for p in found.pairs if p.end}
    still_open = [p.scheduled.event_id for p in pairer.open_pairs()]
    assert still_open == [p.scheduled.event_id for p in found.pairs if p.end is None]


@settings(max_examples=100)
@given(tangled_histories())
def test_bars_spans_and_the_show_column_follow_the_one_rule(history: list[ev.Event]) -> None:
    found = pair_history(history)
    ends = {p.scheduled.event_id: p.end.event_id for p in found.pairs if p.end is not None}
    for bar in build_bars(history):
        if bar.outcome != "cancelled" or bar.start_event_id in ends:
            assert ends.get(bar.start_event_id) == bar.end_event_id
    spans = ExecutionSpans("i", 1, TraceCounts())
    for event in history:
        spans.add(event)
    for span in spans.finish():
        attributes = dict(span.attributes)
        if "duroxide.end_event_id" in attributes:
            assert ends[int(attributes["duroxide.event_id"])] == attributes["duroxide.end_event_id"]
    column = pair_events(history)
    for pair in found.pairs:
        if pair.end is not None:
            assert column[pair.end.event_id].scheduled_id == pair.scheduled.event_id
    for unpaired in found.unpaired:
        assert column[unpaired.event.event_id].unavailable == unpaired.reason


def _external(history: list[ev.Event]) -> list[tuple[int, int | None]]:
    return [
        (p.scheduled.event_id, p.end.event_id if p.end is not None else None)
        for p in pair_history(history).pairs
    ]


def test_a_queue_subscription_takes_a_message_queued_before_it() -> None:
    history = (
        HistoryBuilder("i", "O", "")
        .queue_event("q", 1)  # 2: queued, nobody listening yet
        .queue_subscribed("q")  # 3: takes it at once
        .queue_subscribed("q")  # 4: waits
        .queue_event("q", 2)  # 5: answers 4
        .external_event("w", 3)  # 6: no wait of that name: dropped
        .build()
    )
    assert _external(history) == [(3, 2), (4, 5)]
    found = pair_history(history)
    assert [(u.event.event_id, u.reason) for u in found.unpaired] == [(6, NO_WAIT)]
    taken_early = found.pairs[0]
    assert taken_early.by_name and taken_early.duration_ms == 0
    (bar, _) = build_bars(history)
    assert (bar.end_event_id, bar.end_ms) == (2, bar.start_ms)


def test_messages_carried_into_a_continued_execution_start_the_queue() -> None:
    history = (
        HistoryBuilder("i", "O", "", carry_forward_events=[("q", '"x"'), ("r", '"y"')])
        .queue_subscribed("q")
        .build()
    )
    found = pair_history(history)
    assert _external(history) == [(2, 1)]
    assert [(u.event.event_id, u.reason) for u in found.unpaired] == [(1, NEVER_TAKEN)]
    assert found.by_end() == {}  # OrchestrationStarted is no "end" row
    assert pair_events(history) == {}


def test_a_cancel_request_is_kept_and_the_late_completion_still_ends_it() -> None:
    history: list[ev.Event] = [
        ev.OrchestrationStarted(event_id=1, name="O", version="1", input=""),
        ev.ActivityScheduled(event_id=2, name="charge", input=""),
        ev.ActivityCancelRequested(event_id=3, source_event_id=2, reason="select lost"),
        ev.ActivityCancelRequested(event_id=4, source_event_id=2, reason="again"),
        ev.ActivityCompleted(event_id=5, source_event_id=2, result='"ok"'),
        ev.ActivityCompleted(event_id=6, source_event_id=2, result='"twice"'),
    ]
    found = pair_history(history)
    (pair,) = found.pairs
    assert pair.cancel_requested is not None and pair.cancel_requested.event_id == 3
    assert pair.end is not None and pair.end.event_id == 5
    assert [(u.event.event_id, u.reason, u.ended_by) for u in found.unpaired] == [
        (4, ALREADY_ENDED, 3),
        (6, ALREADY_ENDED, 5),
    ]
    column = pair_events(history)
    assert column[6].describe() == "of 2 (already ended by 5)"
    assert column[3].paired and column[3].scheduled_id == 2


def test_durations_need_both_stamps_in_order() -> None:
    def pair(start: int, end: int) -> Pair:
        return Pair(
            ev.TimerCreated(event_id=2, fire_at_ms=0, timestamp_ms=start),
            ev.TimerFired(event_id=3, source_event_id=2, fire_at_ms=0, timestamp_ms=end),
        )

    assert (pair(1_000, 1_250).duration_ms, pair(1_000, 1_250).no_duration) == (250, None)
    assert (pair(0, 1_250).duration_ms, pair(0, 1_250).no_duration) == (None, NO_TIME)
    assert (pair(1_000, 0).duration_ms, pair(1_000, 0).no_duration) == (None, NO_TIME)
    assert (pair(1_000, 900).duration_ms, pair(1_000, 900).no_duration) == (None, CLOCK_SKEW)


def test_the_real_duroxide_histories_pair_completely(duroxide_db: Path) -> None:
    histories: dict[tuple[str, int], list[ev.Event]] = {}
    with eventstore.open(str(duroxide_db), readonly=True) as store:
        for record in store.read_all():
            key = (record.instance_id, record.execution_id)
            histories.setdefault(key, []).append(record.event)
    assert histories
    paired = 0
    for history in histories.values():
        found = pair_history(sorted(history, key=lambda e: e.event_id))
        assert found.unpaired == (), found.unpaired
        paired += sum(1 for p in found.pairs if p.end is not None)
    assert paired > 10


def test_an_unpaired_end_is_data_not_an_error() -> None:
    found = Pairer().add(ev.TimerFired(event_id=1, source_event_id=9, fire_at_ms=0))
    assert isinstance(found, Unpaired) and found.reason == NO_SOURCE
