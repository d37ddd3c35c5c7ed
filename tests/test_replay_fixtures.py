"""Replay the real duroxide histories (and their legacy copies) against our own code."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

import eventstore
from eventstore import events as ev
from eventstore.errors import NondeterminismError
from eventstore.replay import (
    ReplayMismatchError,
    read_jsonl_executions,
    replay,
    replay_all,
)
from eventstore.store import HistoryStore
from tests.conftest import DUROXIDE_JSONL, V0A_JSONL, V0B_JSONL
from tests.orchestrations.corpus import ORCHESTRATIONS

THIS_FILE = Path(__file__).name


def _keys(path: Path) -> list[tuple[str, int]]:
    keys = set()
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            keys.add((row["instance_id"], row["execution_id"]))
    return sorted(keys)


KEYS = _keys(DUROXIDE_JSONL)
STATUS_OF = {
    "OrchestrationCompleted": "completed",
    "OrchestrationFailed": "failed",
    "OrchestrationContinuedAsNew": "continued_as_new",
}


@pytest.fixture
def duroxide_store(duroxide_db: Path) -> Iterator[HistoryStore]:
    with eventstore.open(str(duroxide_db), readonly=True) as store:
        yield store


def _check_against_terminal(events: list[ev.Event], result: Any) -> None:
    terminal = events[-1]
    assert result.terminal_event == terminal
    assert result.status == STATUS_OF[terminal.event_type]
    if isinstance(terminal, ev.OrchestrationCompleted):
        assert result.output == terminal.output
    elif isinstance(terminal, ev.OrchestrationContinuedAsNew):
        assert result.output == terminal.input
    else:
        assert isinstance(terminal, ev.OrchestrationFailed)
        assert result.error is not None
    assert result.pending_actions == ()
    assert result.events_replayed == len(events)


def test_the_fixture_database_has_every_pattern() -> None:
    names = {key[0].split("-")[0] for key in KEYS}
    assert names == {
        "hello",
        "fanout",
        "parent",
        "waiter",
        "looper",
        "failing",
        "kv",
        "mailbox",
        "sleeper",
    }
    assert len(KEYS) == 26


@pytest.mark.parametrize(("instance_id", "execution_id"), KEYS)
def test_every_real_execution_replays_to_its_stored_end(
    duroxide_store: HistoryStore, instance_id: str, execution_id: int
) -> None:
    events = duroxide_store.read(instance_id, execution_id)
    started = events[0]
    assert isinstance(started, ev.OrchestrationStarted)
    result = replay(events, ORCHESTRATIONS[started.name])
    _check_against_terminal(events, result)
    assert result.instance_id == instance_id
    assert result.execution_id == execution_id


def test_replay_all_over_the_real_database(duroxide_store: HistoryStore) -> None:
    report = replay_all(duroxide_store, ORCHESTRATIONS)
    assert report.ok, [e.message for e in report.failures]
    assert len(report.executions) == 26
    assert {e.outcome for e in report.executions} == {"ok"}
    statuses = [e.result.status for e in report.executions if e.result]
    assert statuses.count("continued_as_new") == 6
    assert statuses.count("failed") == 4


def test_replay_all_over_the_export_file_agrees_with_the_database(
    duroxide_store: HistoryStore,
) -> None:
    from_db = replay_all(duroxide_store, ORCHESTRATIONS)
    from_file = replay_all(DUROXIDE_JSONL, ORCHESTRATIONS)
    assert [
        (e.instance_id, e.execution_id, e.result and e.result.output) for e in from_db.executions
    ] == [
        (e.instance_id, e.execution_id, e.result and e.result.output) for e in from_file.executions
    ]


def test_unregistered_orchestrations_fail_unless_skipped() -> None:
    partial = {k: v for k, v in ORCHESTRATIONS.items() if k != "Child"}
    report = replay_all(DUROXIDE_JSONL, partial)
    assert not report.ok
    assert {e.instance_id for e in report.failures} == {"parent-7-0::sub::2", "parent-7-1::sub::2"}
    assert all(e.outcome == "unregistered" for e in report.failures)
    assert replay_all(DUROXIDE_JSONL, partial, skip_unregistered=True).ok


# --------------------------------------------------------------------------
# Values the code sees
# --------------------------------------------------------------------------


def _history(
    instance_id: str, execution_id: int = 1, path: Path = DUROXIDE_JSONL
) -> list[ev.Event]:
    return read_jsonl_executions(path)[(instance_id, execution_id)]


def test_yields_return_decoded_values_and_failures_raise_like_duroxide() -> None:
    seen: dict[str, Any] = {}

    def hello(ctx: Any, name: Any) -> Generator[Any, Any, Any]:
        seen["input"] = name
        seen["work"] = yield ctx.schedule_activity("Work", name)
        seen["timer"] = yield ctx.schedule_timer(1)
        try:
            yield ctx.schedule_activity("Flaky", "x")
        except Exception as exc:
            seen["error"] = exc
            ctx.set_custom_status("recovered")
        seen["status"] = ctx.get_custom_status()
        return seen["work"]

    result = replay(_history("hello-7-0"), hello)
    assert seen["input"] == "w0"
    assert seen["work"] == {"echo": "w0", "uni": "héllo ✓ \u2028"}
    assert seen["timer"] is None
    assert type(seen["error"]) is Exception
    assert str(seen["error"]) == "Activity 'Flaky' call failed: ValueError: bad input 'x'"
    assert seen["status"] == "recovered"
    assert result.custom_status == "recovered"
    assert result.value == {"echo": "w0", "uni": "héllo ✓ \u2028"}


@pytest.mark.parametrize("path", [DUROXIDE_JSONL, V0A_JSONL, V0B_JSONL])
def test_system_calls_return_the_recorded_guid_and_time(path: Path) -> None:
    seen: dict[str, Any] = {}

    def parent(ctx: Any, value: Any) -> Generator[Any, Any, Any]:
        result = yield ctx.schedule_sub_orchestration("Child", value)
        seen["guid"] = yield ctx.new_guid()
        seen["now"] = yield ctx.utc_now()
        return {"child": result, "guid_len": len(str(seen["guid"]))}

    replay(_history("parent-7-0", path=path), parent)
    assert seen == {"guid": "5304f0ae-afb6-49aa-a4f5-420b9ed4238c", "now": 1795235265533}


def test_race_and_events_return_what_the_runtime_returned() -> None:
    seen: dict[str, Any] = {}

    def waiter(ctx: Any, _input: Any) -> Generator[Any, Any, Any]:
        seen["approval"] = yield ctx.wait_for_event("Approve")
        seen["race"] = yield ctx.race(ctx.schedule_timer(20), ctx.wait_for_event("Never"))
        return {"approved": seen["approval"], "race": seen["race"]}

    replay(_history("waiter-7-1"), waiter)
    assert seen == {"approval": {"by": "ops"}, "race": {"index": 0, "value": None}}


def test_looper_continues_as_new_with_the_stored_input() -> None:
    executions = read_jsonl_executions(DUROXIDE_JSONL)
    outputs = [
        replay(executions[("looper-7-0", n)], ORCHESTRATIONS["Looper"]) for n in (1, 2, 3, 4)
    ]
    assert [(r.status, r.output) for r in outputs] == [
        ("continued_as_new", "1"),
        ("continued_as_new", "2"),
        ("continued_as_new", "3"),
        ("completed", "3"),
    ]


def test_failure_is_reported_with_the_exception() -> None:
    result = replay(_history("failing-7-1"), ORCHESTRATIONS["Failing"])
    assert result.status == "failed"
    assert isinstance(result.exception, RuntimeError)
    assert isinstance(result.error, ev.ApplicationError)
    assert result.error.kind == "OrchestrationFailed"
    assert result.error.message.strip().endswith("RuntimeError: orchestration gave up")


def test_cancellation_is_a_cancelled_failure() -> None:
    result = replay(_history("sleeper-7-0"), ORCHESTRATIONS["Sleeper"])
    assert result.status == "failed"
    assert result.exception is None
    assert result.error == ev.ApplicationError(
        kind=ev.Cancelled(reason="operator cancelled"), message="", retryable=False
    )


def test_a_history_that_ends_early_is_pending_with_the_next_actions() -> None:
    events = _history("hello-7-0")
    scheduled_only = replay(events[:2], ORCHESTRATIONS["Hello"])
    assert scheduled_only.status == "pending"
    assert [(a.kind, a.name, a.recorded) for a in scheduled_only.pending_actions] == [
        ("activity", "Work", True)
    ]
    after_work = replay(events[:3], ORCHESTRATIONS["Hello"])
    assert after_work.status == "pending"
    assert [(a.kind, a.recorded) for a in after_work.pending_actions] == [("timer", False)]
    assert after_work.terminal_event is None
    assert after_work.output is None


# --------------------------------------------------------------------------
# Changed code fails at the right event
# --------------------------------------------------------------------------


def _hello_renamed(ctx: Any, name: Any) -> Generator[Any, Any, Any]:
    greeting = yield ctx.schedule_activity("Work2", name)
    return greeting


def _hello_other_input(ctx: Any, name: Any) -> Generator[Any, Any, Any]:
    greeting = yield ctx.schedule_activity("Work", f"{name}!")
    return greeting


def _hello_reordered(ctx: Any, name: Any) -> Generator[Any, Any, Any]:
    yield ctx.schedule_timer(10)
    greeting = yield ctx.schedule_activity("Work", name)
    return greeting


def _hello_flaky_input(ctx: Any, name: Any) -> Generator[Any, Any, Any]:
    greeting = yield ctx.schedule_activity("Work", name)
    yield ctx.schedule_timer(10)
    try:
        yield ctx.schedule_activity("Flaky", "y")
    except Exception:
        ctx.set_custom_status("recovered")
    return greeting


def _hello_no_status(ctx: Any, name: Any) -> Generator[Any, Any, Any]:
    greeting = yield ctx.schedule_activity("Work", name)
    yield ctx.schedule_timer(10)
    with contextlib.suppress(Exception):
        yield ctx.schedule_activity("Flaky", "x")
    return greeting


def _hello_other_output(ctx: Any, name: Any) -> Generator[Any, Any, Any]:
    greeting = yield ctx.schedule_activity("Work", name)
    yield ctx.schedule_timer(10)
    try:
        yield ctx.schedule_activity("Flaky", "x")
    except Exception:
        ctx.set_custom_status("recovered")
    return {"wrapped": greeting}


def _hello_delegating(ctx: Any, name: Any) -> Generator[Any, Any, Any]:
    greeting = yield from _hello_renamed(ctx, name)
    return greeting


def _parent_swapped(ctx: Any, value: Any) -> Generator[Any, Any, Any]:
    result = yield ctx.schedule_sub_orchestration("Child", value)
    yield ctx.utc_now()
    guid = yield ctx.new_guid()
    return {"child": result, "guid_len": len(str(guid))}


def _parent_other_child(ctx: Any, value: Any) -> Generator[Any, Any, Any]:
    result = yield ctx.schedule_sub_orchestration("Kid", value)
    return result


def _fanout_reversed(ctx: Any, count: Any) -> Generator[Any, Any, Any]:
    results = yield ctx.all([ctx.schedule_activity("Work", n) for n in reversed(range(count))])
    return len(results)


def _waiter_other_event(ctx: Any, _input: Any) -> Generator[Any, Any, Any]:
    approval = yield ctx.wait_for_event("Approved")
    return approval


def _kv_other_value(ctx: Any, value: Any) -> Generator[Any, Any, Any]:
    ctx.set_kv_value("k", f"{value}-changed")
    ctx.set_custom_status("half")
    yield ctx.schedule_timer(5)
    ctx.clear_kv_value("k")
    return "ok"


def _looper_other_output(ctx: Any, counter: Any) -> Generator[Any, Any, Any]:
    n = int(counter)
    yield ctx.schedule_activity("Work", n)
    if n < 3:
        yield ctx.continue_as_new(n + 2)
    return n


def _failing_other_error(ctx: Any, value: Any) -> Generator[Any, Any, Any]:
    yield ctx.schedule_activity("Work", value)
    raise ValueError("a different failure")


def _mailbox_other_queue(ctx: Any, _input: Any) -> Generator[Any, Any, Any]:
    first = yield ctx.dequeue_event("outbox")
    return first


MUTATIONS: list[tuple[str, int, Callable[..., Any], int, str]] = [
    # instance, execution, changed code, event id where it must fail, text in the message
    ("hello-7-0", 1, _hello_renamed, 2, "'Work2'"),
    ("hello-7-1", 1, _hello_other_input, 2, "'\"w1!\"'"),
    ("hello-7-0", 1, _hello_reordered, 2, "timer"),
    ("hello-7-1", 1, _hello_flaky_input, 6, "'\"y\"'"),
    ("hello-7-0", 1, _hello_no_status, 8, "CustomStatusUpdated"),
    ("hello-7-0", 1, _hello_other_output, 9, "wrapped"),
    ("parent-7-0", 1, _parent_swapped, 4, "utc_now"),
    ("parent-7-1", 1, _parent_other_child, 2, "'Kid'"),
    ("fanout-7-0", 1, _fanout_reversed, 2, "'3'"),
    ("waiter-7-0", 1, _waiter_other_event, 2, "'Approved'"),
    ("kv-7-1", 1, _kv_other_value, 2, "1-changed"),
    ("looper-7-1", 2, _looper_other_output, 4, "continued as new with 3"),
    ("failing-7-0", 1, _failing_other_error, 4, "ValueError: a different failure"),
    ("mailbox-7-0", 1, _mailbox_other_queue, 2, "'outbox'"),
]


@pytest.mark.parametrize(
    ("instance_id", "execution_id", "code", "event_id", "text"),
    MUTATIONS,
    ids=[f"{m[0]}-{m[2].__name__}" for m in MUTATIONS],
)
def test_changed_code_fails_at_the_right_event(
    duroxide_store: HistoryStore,
    instance_id: str,
    execution_id: int,
    code: Callable[..., Any],
    event_id: int,
    text: str,
) -> None:
    events = duroxide_store.read(instance_id, execution_id)
    with pytest.raises(ReplayMismatchError) as caught:
        replay(events, code)
    error = caught.value
    assert isinstance(error, NondeterminismError)
    assert error.event_id == event_id
    assert error.location is not None
    assert error.location.event_id == event_id
    assert error.location.instance_id == instance_id
    assert text in str(error)
    assert f"event {event_id}" in str(error)
    assert THIS_FILE in error.where


def test_the_message_names_both_sides_and_the_yield_line() -> None:
    with pytest.raises(ReplayMismatchError) as caught:
        replay(_history("hello-7-0"), _hello_renamed)
    error = caught.value
    line = _hello_renamed.__code__.co_firstlineno + 1
    assert error.where.endswith(f"{THIS_FILE}:{line}")
    assert error.recorded == "ActivityScheduled 'Work' (input='\"w0\"')"
    assert error.attempted == "scheduled activity 'Work2' (input='\"w0\"')"
    assert "instance 'hello-7-0', execution 1, event 2" in str(error)


def test_the_location_follows_yield_from_into_helpers() -> None:
    with pytest.raises(ReplayMismatchError) as caught:
        replay(_history("hello-7-0"), _hello_delegating)
    line = _hello_renamed.__code__.co_firstlineno + 1
    assert caught.value.where.endswith(f"{THIS_FILE}:{line}")


# --------------------------------------------------------------------------
# Legacy copies
# --------------------------------------------------------------------------

LEGACY_KEYS = [
    (path, key)
    for path in (V0A_JSONL, V0B_JSONL)
    for key in _keys(path)
    if not key[0].startswith("mailbox-")
]


@pytest.mark.parametrize(
    ("path", "key"), LEGACY_KEYS, ids=[f"{p.stem}-{k[0]}-{k[1]}" for p, k in LEGACY_KEYS]
)
def test_every_legacy_execution_replays_to_its_stored_end(path: Path, key: tuple[str, int]) -> None:
    events = read_jsonl_executions(path)[key]
    assert all(e.duroxide_version == "" for e in events)  # really V0
    started = events[0]
    assert isinstance(started, ev.OrchestrationStarted)
    result = replay(events, ORCHESTRATIONS[started.name])
    _check_against_terminal(events, result)


@pytest.mark.parametrize("path", [V0A_JSONL, V0B_JSONL])
def test_legacy_replay_all_fails_only_the_queue_orchestrations(path: Path) -> None:
    report = replay_all(path, ORCHESTRATIONS)
    assert {e.instance_id for e in report.failures} == {"mailbox-7-0", "mailbox-7-1"}
    for failure in report.failures:
        assert failure.outcome == "nondeterministic"
        assert "legacy V0 histories cannot record queue subscriptions" in failure.message
    assert sum(e.ok for e in report.executions) == 24


@pytest.mark.parametrize("path", [V0A_JSONL, V0B_JSONL])
@pytest.mark.parametrize(
    ("instance_id", "code", "event_id"),
    [
        ("hello-7-0", _hello_renamed, 2),
        ("hello-7-1", _hello_flaky_input, 6),
        ("parent-7-0", _parent_swapped, 5),  # the legacy SystemCall new_guid
        ("fanout-7-1", _fanout_reversed, 2),
        ("failing-7-1", _failing_other_error, 4),
    ],
)
def test_changed_code_fails_on_legacy_histories_too(
    path: Path, instance_id: str, code: Callable[..., Any], event_id: int
) -> None:
    with pytest.raises(ReplayMismatchError) as caught:
        replay(_history(instance_id, path=path), code)
    assert caught.value.event_id == event_id


@pytest.mark.parametrize("path", [V0A_JSONL, V0B_JSONL])
def test_legacy_failures_reach_code_as_application_errors(path: Path) -> None:
    events = _history("hello-7-0", path=path)
    failed = [e for e in events if isinstance(e, ev.ActivityFailed)]
    assert len(failed) == 1 and isinstance(failed[0].details, ev.ApplicationError)
    messages: list[str] = []

    def hello(ctx: Any, name: Any) -> Generator[Any, Any, Any]:
        greeting = yield ctx.schedule_activity("Work", name)
        yield ctx.schedule_timer(10)
        try:
            yield ctx.schedule_activity("Flaky", "x")
        except Exception as exc:
            messages.append(str(exc))
        return greeting

    replay(events, hello)
    assert messages == ["Activity 'Flaky' call failed: ValueError: bad input 'x'"]


MIXED_JSONL = V0A_JSONL.parent / "mixed-history.jsonl"


@pytest.mark.skipif(not MIXED_JSONL.exists(), reason="no mixed-generation fixture")
def test_mixed_generation_histories_replay() -> None:
    report = replay_all(MIXED_JSONL, ORCHESTRATIONS)
    # mailbox-7-0's first turn is V0, which could not record its queue
    # subscription; every other execution replays to its stored end.
    assert [(e.instance_id, e.outcome) for e in report.failures] == [
        ("mailbox-7-0", "nondeterministic")
    ]
    assert report.failures[0].error is not None
    assert "dequeue_event 'inbox'" in report.failures[0].message
    assert sum(e.ok for e in report.executions) == 25
