"""Replay semantics, one rule at a time, on histories built with HistoryBuilder."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from eventstore import events as ev
from eventstore.replay import (
    InvalidHistoryError,
    ReplayMismatchError,
    display_message,
    replay,
)
from eventstore.testing import HistoryBuilder, RawJson

Orch = Generator[Any, Any, Any]


def builder(name: str = "T", data: Any = None) -> HistoryBuilder:
    return HistoryBuilder("inst", name, data)


# -- values ---------------------------------------------------------------------


def test_input_is_decoded_and_can_be_overridden() -> None:
    seen: list[Any] = []

    def orch(ctx: Any, value: Any) -> Orch:
        seen.append(value)
        yield ctx.schedule_timer(1)
        return value

    events = builder(data={"a": [1, 2]}).timer(1).completed({"a": [1, 2]}).build()
    assert replay(events, orch).value == {"a": [1, 2]}
    with pytest.raises(ReplayMismatchError):
        replay(events, orch, input={"a": [3]})  # the output differs now
    assert seen == [{"a": [1, 2]}, {"a": [3]}]


def test_context_knows_the_execution() -> None:
    seen: dict[str, Any] = {}

    def orch(ctx: Any, _value: Any) -> Orch:
        seen.update(
            instance=ctx.instance_id,
            execution=ctx.execution_id,
            name=ctx.orchestration_name,
            version=ctx.orchestration_version,
        )
        return None
        yield

    events = HistoryBuilder("i-9", "Named", execution_id=3).completed(None).build()
    assert replay(events, orch).output == "null"
    assert seen == {"instance": "i-9", "execution": 3, "name": "Named", "version": "1.0.0"}


def test_a_plain_function_completes_at_once() -> None:
    def plain(ctx: Any, value: Any) -> Any:
        return value * 2

    result = replay(builder(data=21).completed(42).build(), plain)
    assert (result.status, result.output) == ("completed", "42")


def test_non_json_results_reach_the_code_as_text() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        value = yield ctx.schedule_activity("A", None)
        return value

    events = builder().activity("A", None, result=RawJson("not json")).completed("not json")
    assert replay(events.build(), orch).value == "not json"


def test_join_returns_ok_and_err_entries_in_task_order() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        results = yield ctx.all(
            [ctx.schedule_activity("A", 1), ctx.schedule_activity("B", 2), ctx.schedule_timer(5)]
        )
        return results

    b = (
        builder()
        .activity_scheduled("A", 1)
        .activity_scheduled("B", 2)
        .timer_created(5)
        .activity_failed("B broke", name="B")
        .timer_fired()
        .activity_completed({"x": 1}, name="A")
    )
    expected = [{"ok": {"x": 1}}, {"err": "B broke"}, {"ok": None}]
    assert replay(b.completed(expected).build(), orch).value == expected


def test_all_typed_unwraps_ok_values() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        results = yield ctx.all_typed(
            [ctx.schedule_activity("A", 1), ctx.schedule_activity("A", 2)]
        )
        return results

    b = builder().activity_scheduled("A", 1).activity_scheduled("A", 2)
    b.activity_completed(20, source=3).activity_completed(10, source=2)
    assert replay(b.completed([10, 20]).build(), orch).value == [10, 20]


def test_race_is_won_by_the_first_completion_in_history_order() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        won = yield ctx.race(ctx.schedule_timer(1000), ctx.wait_for_event("Go"))
        return won

    b = builder().timer_created(1000).external_subscribed("Go").external_event("Go", {"n": 1})
    b.timer_fired()  # too late: the event won
    assert replay(b.completed({"index": 1, "value": {"n": 1}}).build(), orch).status == "completed"


def test_a_failed_race_winner_raises() -> None:
    caught: list[str] = []

    def orch(ctx: Any, _value: Any) -> Orch:
        try:
            yield ctx.race(ctx.schedule_activity("A", 1), ctx.schedule_timer(1000))
        except Exception as exc:
            caught.append(str(exc))
        return "handled"

    b = builder().activity_scheduled("A", 1).timer_created(1000).activity_failed("nope")
    replay(b.completed("handled").build(), orch)
    assert caught == ["nope"]


def test_select_of_three_tasks_raises_like_duroxide() -> None:
    caught: list[str] = []

    def orch(ctx: Any, _value: Any) -> Orch:
        try:
            yield ctx.race(ctx.schedule_timer(1), ctx.schedule_timer(2), ctx.schedule_timer(3))
        except Exception as exc:
            caught.append(str(exc))
        return None

    replay(builder().completed(None).build(), orch)
    assert caught == ["select currently supports exactly 2 tasks"]


def test_nested_join_raises_like_duroxide() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        yield ctx.all([ctx.all([ctx.schedule_timer(1)])])
        return None

    result = replay(
        builder().failed("Exception: nested join/select inside join is not supported").build(),
        orch,
    )
    assert result.status == "failed"
    assert str(result.exception) == "nested join/select inside join is not supported"


def test_sub_orchestration_failure_message_is_the_display_message() -> None:
    caught: list[str] = []

    def orch(ctx: Any, _value: Any) -> Orch:
        try:
            yield ctx.schedule_sub_orchestration_with_id("Child", "child-1", 5)
        except Exception as exc:
            caught.append(str(exc))
        return None

    details = ev.ApplicationError(kind=ev.Cancelled(reason="stop"), message="", retryable=False)
    b = builder().sub_orchestration("Child", 5, instance="child-1", error=details)
    replay(b.completed(None).build(), orch)
    assert caught == ["canceled: stop"]


@pytest.mark.parametrize(
    ("details", "message"),
    [
        (ev.ApplicationError(kind="ActivityFailed", message="m"), "m"),
        (ev.ApplicationError(kind="Panicked", message="m"), "orchestration panicked: m"),
        (
            ev.InfrastructureError(operation="fetch", message="m", retryable=True),
            "infrastructure:fetch: m",
        ),
        (
            ev.ConfigurationError(kind="Nondeterminism", resource="Order", message=None),
            "nondeterministic in Order",
        ),
        (
            ev.ConfigurationError(kind="Nondeterminism", resource="", message="x"),
            "nondeterministic: x",
        ),
        (
            ev.PoisonError(
                attempt_count=5,
                max_attempts=5,
                message_type=ev.ActivityMessage(
                    instance="i", execution_id=1, activity_name="A", activity_id=2
                ),
                message="m",
            ),
            "poison: activity A#2 exceeded 5 attempts (max 5)",
        ),
    ],
)
def test_display_messages(details: ev.ErrorDetails, message: str) -> None:
    assert display_message(details) == message


def test_new_guid_and_utc_now_from_v1_system_calls() -> None:
    seen: list[Any] = []

    def orch(ctx: Any, _value: Any) -> Orch:
        seen.append((yield ctx.new_guid()))
        seen.append((yield ctx.utc_now()))
        return None

    guid = "12345678-1234-4123-8123-123456789abc"
    events = builder().new_guid(guid).utc_now(1_700_000_000_123).completed(None).build()
    replay(events, orch)
    assert seen == [guid, 1_700_000_000_123]


def test_legacy_system_call_events_replace_the_activity_pair() -> None:
    seen: list[Any] = []

    def orch(ctx: Any, _value: Any) -> Orch:
        seen.append((yield ctx.new_guid()))
        seen.append((yield ctx.utc_now()))
        return None

    b = builder().system_call("new_guid", "g-1").system_call("utc_now_ms", "42")
    replay(b.completed(None).build(), orch)
    assert seen == ["g-1", 42]


def test_detached_start_resumes_at_once_and_matches_the_chained_event() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        started = yield ctx.start_orchestration("Worker", "worker-1", {"job": 1})
        return started

    ok = builder().orchestration_chained("Worker", "worker-1", {"job": 1}).completed(None)
    assert replay(ok.build(), orch).status == "completed"
    other = builder().orchestration_chained("Worker", "worker-2", {"job": 1}).completed(None)
    with pytest.raises(ReplayMismatchError) as caught:
        replay(other.build(), orch)
    assert caught.value.event_id == 2


# -- matching -----------------------------------------------------------------------


def test_session_and_tag_are_part_of_an_activity_match() -> None:
    def tagged(ctx: Any, _value: Any) -> Orch:
        value = yield ctx.schedule_activity("A", 1, session_id="s1").with_tag("gpu")
        return value

    good = builder().activity("A", 1, result=2, session_id="s1", tag="gpu").completed(2)
    assert replay(good.build(), tagged).status == "completed"
    untagged = builder().activity("A", 1, result=2, session_id="s1").completed(2)
    with pytest.raises(ReplayMismatchError, match="tag='gpu'"):
        replay(untagged.build(), tagged)


def test_timers_match_by_position_not_delay() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        yield ctx.schedule_timer(999_999)
        return None

    assert replay(builder().timer(5).completed(None).build(), orch).status == "completed"


def test_an_event_before_its_subscription_is_not_delivered() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        value = yield ctx.wait_for_event("E")
        return value

    b = builder().external_event("E", "early").external_subscribed("E").external_event("E", "late")
    assert replay(b.completed("late").build(), orch).value == "late"


def test_queued_messages_wait_for_their_subscription_in_order() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        first = yield ctx.dequeue_event("q")
        second = yield ctx.dequeue_event_typed("q")
        return [first, second]

    b = builder().queue_subscribed("q").queue_event("q", "m1").queue_event("q", {"m": 2})
    b.queue_subscribed("q")
    assert replay(b.completed(["m1", {"m": 2}]).build(), orch).value == ["m1", {"m": 2}]


def test_queued_messages_carried_over_continue_as_new() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        message = yield ctx.dequeue_event("q")
        return message

    b = HistoryBuilder("i", "T", None, execution_id=2, carry_forward_events=[("q", '"kept"')])
    assert replay(b.queue_subscribed("q").completed("kept").build(), orch).value == "kept"


def test_custom_status_and_kv_are_matched_and_tracked() -> None:
    seen: dict[str, Any] = {}

    def orch(ctx: Any, _value: Any) -> Orch:
        ctx.set_kv_value("a", "1")
        ctx.set_custom_status("busy")
        yield ctx.schedule_timer(1)
        seen["a"] = ctx.get_kv_value("a")
        seen["earlier"] = ctx.get_kv_value("from-before")
        ctx.clear_all_kv_values()
        ctx.reset_custom_status()
        seen["len"] = ctx.get_kv_length()
        return None

    b = builder().kv_set("a", "1").custom_status("busy").timer(1).kv_all_cleared()
    result = replay(b.custom_status(None).completed(None).build(), orch, kv={"from-before": "x"})
    assert seen == {"a": "1", "earlier": "x", "len": 0}
    assert result.custom_status is None
    assert result.kv == {}


def test_a_missing_custom_status_event_is_nondeterminism_in_v1() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        ctx.set_custom_status("busy")
        yield ctx.schedule_timer(1)
        return None

    with pytest.raises(ReplayMismatchError) as caught:
        replay(builder().timer(1).completed(None).build(), orch)
    assert caught.value.event_id == 2
    assert "set_custom_status('busy')" in str(caught.value)


def test_legacy_histories_could_not_record_custom_status() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        ctx.set_custom_status("busy")
        yield ctx.schedule_timer(1)
        ctx.set_kv_value("k", "v")
        return None

    legacy = HistoryBuilder("i", "T", None, duroxide_version="").timer(1).completed(None)
    assert replay(legacy.build(), orch).status == "completed"


def test_retry_schedules_attempts_with_backoff_timers() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        value = yield ctx.schedule_activity_with_retry("A", 1, {"max_attempts": 3})
        return value

    b = builder().activity("A", 1, error="e1").timer(100).activity("A", 1, error="e2").timer(200)
    b.activity("A", 1, result="third time")
    assert replay(b.completed("third time").build(), orch).value == "third time"


def test_retry_gives_up_with_the_last_error() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        value = yield ctx.schedule_activity_with_retry("A", 1, {"max_attempts": 2})
        return value

    b = builder().activity("A", 1, error="e1").timer(100).activity("A", 1, error="e2")
    result = replay(b.failed("Exception: e2").build(), orch)
    assert result.status == "failed"
    assert str(result.exception) == "e2"


def test_retry_with_timeout_races_each_attempt() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        value = yield ctx.schedule_activity_with_retry(
            "A", 1, {"max_attempts": 3, "timeout_ms": 50}
        )
        return value

    b = builder().activity_scheduled("A", 1).timer_created(50).timer_fired()
    result = replay(b.failed("Exception: timeout: activity timed out").build(), orch)
    assert str(result.exception) == "timeout: activity timed out"


def test_continue_as_new_versioned_matches_the_input() -> None:
    def orch(ctx: Any, value: Any) -> Orch:
        yield ctx.continue_as_new_versioned(value + 1, "2.0.0")
        return None

    result = replay(builder(data=1).continued_as_new(2).build(), orch)
    assert (result.status, result.value) == ("continued_as_new", 2)


def test_yielding_something_else_fails_the_orchestration() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        yield 42
        return None

    result = replay(builder().build(), orch)
    assert result.status == "failed"
    assert isinstance(result.exception, TypeError)


# -- where replay stops ------------------------------------------------------------------


def test_history_schedules_more_than_the_code() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        yield ctx.schedule_timer(1)
        return None

    b = builder().timer(1).activity("Extra", None, result=1).completed(None)
    with pytest.raises(ReplayMismatchError) as caught:
        replay(b.build(), orch)
    assert caught.value.event_id == 4
    assert "had already returned null" in str(caught.value)


def test_history_ends_before_the_code_asks_for_more() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        yield ctx.schedule_timer(1)
        yield ctx.schedule_activity("Next", None)
        return None

    b = builder().timer(1).completed(None)
    with pytest.raises(ReplayMismatchError) as caught:
        replay(b.build(), orch)
    assert caught.value.event_id == 4
    assert "activity 'Next'" in str(caught.value)


def test_code_completes_but_history_failed() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        yield ctx.schedule_timer(1)
        return "fine"

    with pytest.raises(ReplayMismatchError, match="had already returned"):
        replay(builder().timer(1).failed("RuntimeError: boom").build(), orch)


def test_a_completion_for_an_unknown_event_is_reported() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        yield ctx.schedule_timer(1)
        return None

    events = builder().timer_created(1).build()
    stray = ev.ActivityCompleted(event_id=3, source_event_id=2, result="1")
    with pytest.raises(ReplayMismatchError) as caught:
        replay([*events, stray], orch)
    assert caught.value.event_id == 3
    assert "scheduled as timer" in str(caught.value)


def test_a_history_must_start_with_orchestration_started() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        yield ctx.schedule_timer(1)

    events = builder().timer(1).build()
    with pytest.raises(InvalidHistoryError):
        replay(events[1:], orch)
    with pytest.raises(InvalidHistoryError):
        replay([], orch)


def test_events_after_the_terminal_event_are_refused() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        return None
        yield

    events = builder().completed(None).build()
    extra = ev.CustomStatusUpdated(event_id=3, status="late")
    with pytest.raises(InvalidHistoryError, match="follows the terminal event"):
        replay([*events, extra], orch)


def test_unknown_event_types_are_skipped() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        yield ctx.schedule_timer(1)
        return None

    events = builder().timer(1).build()
    unknown = ev.UnknownEvent(event_id=4, type_name="FutureThing", raw=b"{}")
    done = ev.OrchestrationCompleted(event_id=5, output="null")
    assert replay([*events, unknown, done], orch).status == "completed"


def test_orchestrations_are_found_by_version_first() -> None:
    from eventstore.replay import find_orchestration

    def v1(ctx: Any, _value: Any) -> Any:
        return "v1"

    def v2(ctx: Any, _value: Any) -> Any:
        return "v2"

    def v3(ctx: Any, _value: Any) -> Any:
        return "v3"

    mapping: dict[Any, Any] = {"Order": v1, ("Order", "2.0.0"): v2, "Order@3.0.0": v3}
    assert find_orchestration(mapping, "Order", "2.0.0") is v2
    assert find_orchestration(mapping, "Order", "3.0.0") is v3
    assert find_orchestration(mapping, "Order", "1.0.0") is v1
    assert find_orchestration(mapping, "Other", "1.0.0") is None


def test_cancellation_drops_what_was_not_recorded_yet() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        yield ctx.schedule_timer(1)
        yield ctx.schedule_activity("Never", None)
        return None

    b = builder().timer(1).cancelled("stop")
    result = replay(b.build(), orch)
    assert result.status == "failed"
    assert result.pending_actions == ()
    assert display_message(result.error) == "canceled: stop"  # type: ignore[arg-type]


def test_an_output_that_is_not_json_fails_the_orchestration() -> None:
    def orch(ctx: Any, _value: Any) -> Orch:
        yield ctx.schedule_timer(1)
        return {1, 2}

    result = replay(builder().timer(1).build(), orch)
    assert result.status == "failed"
    assert isinstance(result.exception, TypeError)
    assert result.output is None
