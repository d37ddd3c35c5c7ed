"""What the viewer's pages are built from: bars, event rows and list queries (no browser)."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventstore
from eventstore import events as ev
from eventstore.errors import ValidationError
from eventstore.store.catalog import status_of
from eventstore.testing import HistoryBuilder
from eventstore.testing.builder import DEFAULT_START_MS as T
from eventstore.testing.strategies import events as any_event
from eventstore.testing.strategies import histories
from eventstore.ui.event_view import LARGE_CHARS, event_view
from eventstore.ui.listing import list_executions, parse_list_query
from eventstore.ui.timeline import build_bars


def _bars(events: list[ev.Event]) -> dict[int, tuple[int | None, str, list[tuple[str, int, int]]]]:
    return {
        b.start_event_id: (
            b.end_event_id,
            b.outcome,
            [(s.what, s.start_ms - T, s.end_ms - T) for s in b.segments],
        )
        for b in build_bars(events)
    }


def test_external_events_end_the_oldest_open_wait_of_their_name() -> None:
    b = HistoryBuilder("i", start_ms=T, step_ms=10)
    b.external_subscribed("Approve").external_subscribed("Approve").external_subscribed("Other")
    b.external_subscription_cancelled(source=2)  # the first Approve wait, by source id
    b.external_event("Approve", 1).queue_subscribed("jobs").queue_event("jobs", 2)
    bars = _bars(b.build())
    assert bars[2][:2] == (5, "cancelled")
    assert bars[3][:2] == (6, "completed")  # not the cancelled one
    assert bars[3][2] == [("wait", 20, 50)]
    assert bars[4][:2] == (None, "open")
    assert bars[7][:2] == (8, "completed")


def test_a_timer_on_time_only_waits_and_a_late_one_says_how_late() -> None:
    b = HistoryBuilder("i", start_ms=T, step_ms=0)
    b.timer(100).timer_created(50).advance(80).timer_fired()
    bars = _bars(b.build())
    assert bars[2][2] == [("wait", 0, 100)]
    assert bars[4][2] == [("wait", 100, 150), ("late", 150, 180)]


def test_a_sub_orchestration_splits_only_when_its_child_started_inside_it() -> None:
    b = HistoryBuilder("i", start_ms=T, step_ms=0)
    events = (
        b.sub_orchestration_scheduled("C", instance="c")
        .advance(100)
        .sub_orchestration_completed()
        .build()
    )
    starts = {"c": T + 40}
    (bar,) = build_bars(events, starts.get)
    assert [(s.what, s.start_ms - T, s.end_ms - T) for s in bar.segments] == [
        ("wait", 0, 40),
        ("run", 40, 100),
    ]
    starts["c"] = T + 400  # a clock that disagrees: no split rather than a wrong one
    assert build_bars(events, starts.get)[0].segments == []
    assert build_bars(events)[0].segments == []
    assert build_bars(events)[0].child == ("c", 1)


def test_bars_without_timestamps_are_listed_untimed() -> None:
    b = HistoryBuilder("i", start_ms=T, step_ms=5)
    events = b.activity("A", result=1).build()
    events[2] = msgspec.structs.replace(events[2], timestamp_ms=0)
    (bar,) = build_bars(events)
    assert (bar.timed, bar.end_ms, bar.outcome, bar.segments) == (False, None, "completed", [])
    assert bar.as_dict()["timed"] is False


def test_the_page_status_is_the_catalogs_and_tells_cancelled_from_failed() -> None:
    def status(b: HistoryBuilder) -> str:
        return status_of(b.build()[-1])

    assert status(HistoryBuilder("i").cancelled("stop")) == "cancelled"
    assert status(HistoryBuilder("i").failed("boom")) == "failed"
    assert status(HistoryBuilder("i").continued_as_new(1)) == "continued_as_new"
    assert status(HistoryBuilder("i").activity_scheduled("A")) == "running"


def test_event_rows_format_payloads_and_collapse_large_ones() -> None:
    big = {f"k{i}": "v" * 20 for i in range(40)}
    events = HistoryBuilder("i", "N", big, start_ms=T).activity("A", "not json?").build()
    started = event_view(events[0], T, None)
    (payload,) = [f for f in started["fields"] if f["name"] == "input"]
    assert payload["json"] and payload["large"] and len(payload["text"]) > LARGE_CHARS
    assert json.loads(payload["text"]) == big and payload["text"].startswith('{\n  "k0"')
    assert {f["name"] for f in started["fields"]} == {"name", "version", "input"}  # nulls left out
    scheduled = event_view(events[1], T, None)
    assert [f["text"] for f in scheduled["fields"] if f["name"] == "input"] == ['"not json?"']
    untimed = event_view(msgspec.structs.replace(events[1], timestamp_ms=0), T, None)
    assert untimed["timestamp_ms"] is None and untimed["offset_ms"] is None


def test_searching_by_id_takes_the_text_literally() -> None:
    with eventstore.open(":memory:") as store:
        for instance in ("a_b", "axb", "a%b", "c\\d"):
            events = HistoryBuilder(instance, start_ms=T).build()
            store.append(instance, 1, events, expected_last_event_id=0)

        def found(text: str) -> list[str]:
            rows = list_executions(store, parse_list_query({"q": text}))["rows"]
            return sorted(r["instance_id"] for r in rows)

        assert found("_") == ["a_b"]
        assert found("%") == ["a%b"]
        assert found("\\") == ["c\\d"]
        assert found("b") == ["a%b", "a_b", "axb"]
        page = list_executions(store, parse_list_query({"size": "3"}))
        assert len(page["rows"]) == 3 and page["has_next"]


def test_list_queries_are_checked() -> None:
    query = parse_list_query({"status": "failed", "since": "2026-12-07", "until": "1800000000000"})
    assert query.status == "failed" and query.until_ms == 1_800_000_000_000
    assert query.since_ms == 1_796_601_600_000  # midnight UTC
    assert parse_list_query({"since": "2026-12-07T01:00+01:00"}).since_ms == 1_796_601_600_000
    for bad, named in (
        ({"status": "Done"}, "status"),
        ({"until": "soon"}, "until"),
        ({"page": "-1"}, "page"),
        ({"size": "100000"}, "size"),
    ):
        with pytest.raises(ValidationError, match=named):
            parse_list_query(bad)


@settings(max_examples=100, deadline=None)
@given(histories())
def test_every_completion_ends_at_most_one_bar_and_no_bar_ends_before_it_starts(
    events: list[ev.Event],
) -> None:
    bars = build_bars(events)
    ends = [b.end_event_id for b in bars if b.end_event_id is not None]
    assert len(ends) == len(set(ends))
    by_id = {e.event_id: e for e in events}
    for bar in bars:
        if bar.end_event_id is not None:
            assert bar.end_event_id > bar.start_event_id
            source = by_id[bar.end_event_id].source_event_id
            assert source in (None, bar.start_event_id)
        for segment in bar.segments:
            assert bar.start_ms is not None and bar.end_ms is not None
            assert bar.start_ms <= segment.start_ms <= segment.end_ms <= bar.end_ms


@settings(max_examples=100, deadline=None)
@given(st.lists(any_event(), max_size=6))
def test_any_events_make_rows_whose_text_is_plain_strings(events: list[ev.Event]) -> None:
    for event in events:
        row = event_view(event, T, None)
        assert json.loads(json.dumps(row)) == row
        assert all(isinstance(f["text"], str) for f in row["fields"])
