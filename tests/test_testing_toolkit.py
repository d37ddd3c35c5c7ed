"""The test toolkit: HistoryBuilder, JSONL fixtures, Hypothesis strategies, fixtures."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventstore
from eventstore import events as ev
from eventstore.codec import Generation, decode, detect_version, encode
from eventstore.errors import DecodeError, RowMismatchError
from eventstore.store import HistoryStore
from eventstore.testing import (
    HistoryBuilder,
    RawJson,
    dump_history,
    load_history,
    parse_history,
    save_history,
)
from eventstore.testing.strategies import (
    HOSTILE_STRINGS,
    error_details,
    events,
    histories,
    hostile_strings,
    legacy_histories,
    payloads,
)
from tests.conftest import DUROXIDE_JSONL, V0A_JSONL

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------
# Shape of a valid history (what every generated history must satisfy)
# --------------------------------------------------------------------------


def assert_valid_history(history: list[ev.Event]) -> None:
    assert history, "empty history"
    assert isinstance(history[0], ev.OrchestrationStarted)
    ids = [e.event_id for e in history]
    assert ids == sorted(set(ids)), f"ids not increasing: {ids}"
    by_id = {e.event_id: e for e in history}
    for event in history:
        sources = ev.COMPLETION_SOURCES.get(event.event_type)
        if sources is None:
            continue
        source = event.source_event_id
        assert source is not None and source < event.event_id
        assert by_id[source].event_type in sources
    terminal = [i for i, e in enumerate(history) if e.event_type in ev.TERMINAL_TYPES]
    assert len(terminal) <= 1
    if terminal:
        assert terminal[0] == len(history) - 1
    assert len({(e.instance_id, e.execution_id) for e in history}) == 1


# --------------------------------------------------------------------------
# HistoryBuilder
# --------------------------------------------------------------------------


def test_builder_assigns_ids_sources_and_payloads() -> None:
    history = (
        HistoryBuilder("order-1", "Order", {"id": 7})
        .activity_scheduled("Reserve", 7)
        .activity_scheduled("Charge", 7)
        .activity_completed("charged", name="Charge")
        .activity_failed("out of stock")
        .timer(50)
        .completed({"ok": False})
        .build()
    )
    assert_valid_history(history)
    assert [e.event_type for e in history] == [
        "OrchestrationStarted",
        "ActivityScheduled",
        "ActivityScheduled",
        "ActivityCompleted",
        "ActivityFailed",
        "TimerCreated",
        "TimerFired",
        "OrchestrationCompleted",
    ]
    started, _, _, charged, failed, created, fired, done = history
    assert isinstance(started, ev.OrchestrationStarted) and started.input == '{"id": 7}'
    assert (charged.source_event_id, failed.source_event_id) == (3, 2)
    assert isinstance(failed, ev.ActivityFailed)
    assert failed.details == ev.ApplicationError(kind="ActivityFailed", message="out of stock")
    assert isinstance(created, ev.TimerCreated) and isinstance(fired, ev.TimerFired)
    assert fired.fire_at_ms == created.fire_at_ms == created.timestamp_ms + 50
    assert fired.source_event_id == created.event_id
    assert isinstance(done, ev.OrchestrationCompleted) and done.output == '{"ok": false}'
    stamps = [e.timestamp_ms for e in history]
    assert stamps == sorted(stamps) and all(s > 0 for s in stamps)
    assert {e.duroxide_version for e in history} == {"0.1.32"}


def test_builder_refuses_what_would_be_invalid() -> None:
    builder = HistoryBuilder().timer_created(5)
    with pytest.raises(ValueError, match="no open activity"):
        builder.activity_completed(1)
    with pytest.raises(ValueError, match="no open timer"):
        builder.timer_fired(source=1)
    builder.completed(None)
    assert builder.terminated
    with pytest.raises(ValueError, match="terminal"):
        builder.timer(1)


def test_raw_json_is_stored_verbatim() -> None:
    history = HistoryBuilder(input=RawJson('{"a":1}')).activity("A", RawJson("[ 1 ]")).build()
    assert isinstance(history[0], ev.OrchestrationStarted)
    assert history[0].input == '{"a":1}'
    assert isinstance(history[1], ev.ActivityScheduled)
    assert history[1].input == "[ 1 ]"


def test_builder_histories_append_to_a_store(store: HistoryStore) -> None:
    builder = (
        HistoryBuilder("b-1", "All")
        .activity("A", 1, result=2)
        .new_guid()
        .utc_now()
        .wait_event("Go", "now")
        .dequeue("q", "m")
        .sub_orchestration("Child", 1, error="bad")
        .orchestration_chained("Detached", "d-1", None)
        .custom_status("half")
        .kv_set("k", "v")
        .kv_cleared("k")
        .kv_all_cleared()
        .cancelled("stop")
    )
    result = builder.append_to(store)
    assert result.written
    assert store.read("b-1") == builder.build()


def test_history_fixtures_from_the_plugin(
    history_store: HistoryStore, history_builder: Callable[..., HistoryBuilder]
) -> None:
    first = history_builder("A", 1).completed(1)
    second = history_builder("B", 2, execution_id=2).continued_as_new(3)
    assert first.instance_id != second.instance_id
    assert history_store.count() == 0
    first.append_to(history_store)
    second.append_to(history_store)
    assert sorted(history_store.instances()) == sorted([first.instance_id, second.instance_id])
    assert history_store.executions(second.instance_id) == [2]


# --------------------------------------------------------------------------
# JSONL fixtures
# --------------------------------------------------------------------------


def test_jsonl_round_trip(tmp_path: Path) -> None:
    history = (
        HistoryBuilder("x", "T", HOSTILE_STRINGS).activity("A", "\u2028").completed("é").build()
    )
    path = save_history(tmp_path / "h.jsonl", history)
    text = path.read_text(encoding="utf-8")
    assert text.count("\n") == len(history)
    assert [json.loads(line)["event_id"] for line in text.splitlines()] == [1, 2, 3, 4]
    assert text.splitlines()[1] == encode(history[1]).decode()
    assert load_history(path) == history


def test_export_rows_load_like_the_store_reads_them(duroxide_db: Path) -> None:
    loaded = load_history(DUROXIDE_JSONL)
    with eventstore.open(str(duroxide_db), readonly=True) as store:
        stored = [
            e for i in store.instances() for x in store.executions(i) for e in store.read(i, x)
        ]
    key = lambda e: (e.instance_id, e.execution_id, e.event_id)  # noqa: E731
    assert sorted(loaded, key=key) == sorted(stored, key=key)


def test_legacy_lines_take_the_given_instance() -> None:
    line = '{"ActivityScheduled":{"event_id":2,"name":"Greet","input":"\\"w0\\"","execution_id":1}}'
    (event,) = parse_history(line + "\n\n", instance_id="i-1", execution_id=1)
    assert isinstance(event, ev.ActivityScheduled)
    assert (event.instance_id, event.execution_id, event.name) == ("i-1", 1, "Greet")
    legacy = load_history(V0A_JSONL)
    assert all(e.duroxide_version == "" and e.instance_id for e in legacy)


def test_exported_rows_are_checked_against_their_columns_as_a_read_does() -> None:
    data = '{"type":"ActivityScheduled","event_id":2,"name":"W","input":"1"}'
    row = {"instance_id": "i1", "execution_id": 3, "event_id": 2,
           "event_type": "ActivityScheduled", "event_data": data}  # fmt: skip
    (event,) = parse_history(json.dumps(row))
    assert (event.instance_id, event.execution_id) == ("i1", 3)  # completed from the row
    for column, value in (("event_id", 7), ("event_type", "TimerFired"), ("instance_id", "x")):
        other = dict(row, **{column: value}, event_data=data.replace(
            '"event_id":2', '"event_id":2,"instance_id":"i1","execution_id":3'))  # fmt: skip
        with pytest.raises(RowMismatchError) as caught:
            parse_history("\n" + json.dumps(other))
        assert caught.value.location is not None and caught.value.location.line == 2


def test_a_bad_line_names_its_number() -> None:
    good = dump_history(HistoryBuilder().build())
    with pytest.raises(DecodeError) as caught:
        parse_history(good + "{not json\n")
    assert caught.value.location is not None
    assert caught.value.location.line == 2


# --------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------


@PROPERTY
@given(histories())
def test_generated_histories_are_valid_and_store_unchanged(history: list[ev.Event]) -> None:
    assert_valid_history(history)
    started = history[0]
    with eventstore.open(":memory:") as store:
        store.append(started.instance_id, started.execution_id, history)
        assert store.read(started.instance_id, started.execution_id) == history


@PROPERTY
@given(histories(terminal=None, max_steps=4))
def test_histories_without_a_terminal_event(history: list[ev.Event]) -> None:
    assert_valid_history(history)
    assert history[-1].event_type not in ev.TERMINAL_TYPES


@pytest.mark.parametrize("event_type", sorted(ev.EVENT_TYPES))
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_single_events_of_every_type_round_trip(event_type: str, data: st.DataObject) -> None:
    event = data.draw(events(types=[event_type]))
    assert event.event_type == event_type
    assert decode(encode(event)) == event


def test_events_refuses_unknown_type_names() -> None:
    with pytest.raises(ValueError, match="Nope"):
        events(types=["Nope"])


@PROPERTY
@given(legacy_histories())
def test_legacy_rows_import_and_read_as_v0(rows: list[dict[str, Any]]) -> None:
    assert rows[0]["event_type"] == "OrchestrationStarted"
    ids = [r["event_id"] for r in rows]
    assert ids == sorted(set(ids))
    for row in rows:
        body = json.loads(row["event_data"])
        assert list(body) == [row["event_type"]]
        assert detect_version(row["event_data"]) in (Generation.V0, Generation.V0A, Generation.V0B)
    with eventstore.open(":memory:") as store:
        report = store.import_rows(rows)
        assert report.inserted == len(rows)
        read = store.read(rows[0]["instance_id"], rows[0]["execution_id"])
    assert [e.event_type for e in read] == [r["event_type"] for r in rows]
    assert all(e.duroxide_version == "" for e in read)
    failures = [e for e in read if isinstance(e, ev.ActivityFailed | ev.OrchestrationFailed)]
    assert all(
        isinstance(f.details, ev.ApplicationError | ev.InfrastructureError | ev.ConfigurationError)
        for f in failures
    )


@PROPERTY
@given(legacy_histories(generation="V0a"))
def test_v0a_rows_carry_error_strings(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        if row["event_type"].endswith("Failed"):
            assert "error" in json.loads(row["event_data"])[row["event_type"]]
            assert detect_version(row["event_data"]) == Generation.V0A


@PROPERTY
@given(payloads())
def test_payloads_are_json_text(text: str) -> None:
    json.loads(text)


@PROPERTY
@given(hostile_strings())
def test_hostile_strings_survive_a_payload_round_trip(text: str) -> None:
    history = HistoryBuilder("h", "T", text).completed(text).build()
    started = history[0]
    assert isinstance(started, ev.OrchestrationStarted)
    assert json.loads(started.input) == text
    assert parse_history(dump_history(history)) == history


@PROPERTY
@given(error_details())
def test_error_details_survive_an_event_round_trip(details: ev.ErrorDetails) -> None:
    event = ev.OrchestrationFailed(
        event_id=2,
        instance_id="i",
        execution_id=1,
        timestamp_ms=1,
        duroxide_version="0.1.32",
        details=details,
    )
    assert decode(encode(event)) == event
