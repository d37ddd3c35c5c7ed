"""Replay on generated histories: code that does what a history says replays it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Generator
from typing import Any

from hypothesis import HealthCheck, assume, given, settings

from eventstore import events as ev
from eventstore.events import SYSTEM_CALL_PREFIX
from eventstore.replay import ReplayMismatchError, replay
from eventstore.testing.strategies import histories

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def follower(history: list[ev.Event]) -> Callable[[Any, Any], Generator[Any, Any, Any]]:
    """Orchestration code that makes exactly the calls the history records."""

    def orchestration(ctx: Any, _input: Any) -> Generator[Any, Any, Any]:
        for event in history[1:]:
            match event:
                case ev.ActivityScheduled(name=name) if name == SYSTEM_CALL_PREFIX + "new_guid":
                    yield ctx.new_guid()
                case ev.ActivityScheduled(name=name) if name == SYSTEM_CALL_PREFIX + "utc_now_ms":
                    yield ctx.utc_now()
                case ev.ActivityScheduled(name=name, input=data):
                    session = event.session_id if isinstance(event.session_id, str) else None
                    task = (
                        ctx.schedule_activity_on_session_typed(name, data, session)
                        if session is not None
                        else ctx.schedule_activity_typed(name, data)
                    )
                    if isinstance(event.tag, str):
                        task = task.with_tag(event.tag)
                    with contextlib.suppress(Exception):
                        yield task
                case ev.TimerCreated():
                    yield ctx.schedule_timer(0)
                case ev.ExternalSubscribed(name=name):
                    yield ctx.wait_for_event(name)
                case ev.ExternalSubscribedPersistent(name=name):
                    yield ctx.dequeue_event(name)
                case ev.SubOrchestrationScheduled(name=name, input=data):
                    with contextlib.suppress(Exception):
                        yield ctx.schedule_sub_orchestration_typed(name, data)
                case ev.OrchestrationChained(name=name, instance=instance, input=data):
                    yield ctx.start_orchestration_typed(name, instance, data)
                case ev.CustomStatusUpdated(status=status):
                    if status is None:
                        ctx.reset_custom_status()
                    else:
                        ctx.set_custom_status(status)
                case ev.KeyValueSet(key=key, value=value):
                    ctx.set_kv_value(key, value)
                case ev.KeyValueCleared(key=key):
                    ctx.clear_kv_value(key)
                case ev.KeyValuesCleared():
                    ctx.clear_all_kv_values()
                case ev.OrchestrationContinuedAsNew(input=data):
                    yield ctx.continue_as_new_typed(data)
                case ev.OrchestrationCompleted(output=output):
                    return json.loads(output)
                case ev.OrchestrationCancelRequested():
                    yield ctx.schedule_timer(1)  # cancelled while waiting
        # No terminal event: the history ends while the code still runs.
        yield ctx.wait_for_event("not recorded yet")

    return orchestration


@PROPERTY
@given(histories(open_operations=False))
def test_code_that_follows_a_history_replays_it(history: list[ev.Event]) -> None:
    assume(not isinstance(history[-1], ev.OrchestrationFailed) or _cancelled(history))
    result = replay(history, follower(history))
    end = history[-1]
    if end.event_type in ev.TERMINAL_TYPES:
        assert result.terminal_event == end
        assert result.status in ("completed", "continued_as_new", "failed")
    else:
        assert result.status == "pending"
        assert result.terminal_event is None


@PROPERTY
@given(histories(open_operations=False, terminal="completed", max_steps=8))
def test_dropping_any_scheduled_call_is_caught_at_that_event(history: list[ev.Event]) -> None:
    scheduling = [
        e
        for e in history
        if isinstance(
            e,
            ev.ActivityScheduled
            | ev.TimerCreated
            | ev.SubOrchestrationScheduled
            | ev.ExternalSubscribed
            | ev.ExternalSubscribedPersistent
            | ev.OrchestrationChained
            | ev.CustomStatusUpdated
            | ev.KeyValueSet
            | ev.KeyValueCleared
            | ev.KeyValuesCleared,
        )
    ]
    assume(scheduling)
    dropped = scheduling[0]
    code = follower([e for e in history if e is not dropped])
    try:
        replay(history, code)
    except ReplayMismatchError as exc:
        assert exc.event_id is not None
        assert dropped.event_id <= exc.event_id <= history[-1].event_id
        following = scheduling[1] if len(scheduling) > 1 else None
        if following is None or type(following) is not type(dropped):
            # Nothing alike follows, so the very event must be the one refused.
            assert exc.event_id == dropped.event_id
    else:
        raise AssertionError(f"dropping {dropped.event_type} went unnoticed")


def _cancelled(history: list[ev.Event]) -> bool:
    return any(isinstance(e, ev.OrchestrationCancelRequested) for e in history)
