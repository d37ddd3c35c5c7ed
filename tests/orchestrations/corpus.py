"""Orchestrations equivalent to those that wrote tests/fixtures (duroxide 0.2.2).

Written for duroxide's Python SDK: the same functions run under the real
runtime and under `eventstore.replay`. `ORCHESTRATIONS` maps name -> function.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

Orch = Generator[Any, Any, Any]


def hello(ctx: Any, name: Any) -> Orch:
    greeting = yield ctx.schedule_activity("Work", name)
    yield ctx.schedule_timer(10)
    try:
        yield ctx.schedule_activity("Flaky", "x")
    except Exception:
        ctx.set_custom_status("recovered")
    return greeting


def fan_out(ctx: Any, count: Any) -> Orch:
    results = yield ctx.all([ctx.schedule_activity("Work", n) for n in range(count)])
    return len(results)


def child(ctx: Any, value: Any) -> Orch:
    result = yield ctx.schedule_activity("Work", value)
    return result


def parent(ctx: Any, value: Any) -> Orch:
    result = yield ctx.schedule_sub_orchestration("Child", value)
    guid = yield ctx.new_guid()
    yield ctx.utc_now()
    return {"child": result, "guid_len": len(str(guid))}


def waiter(ctx: Any, _input: Any) -> Orch:
    approval = yield ctx.wait_for_event("Approve")
    raced = yield ctx.race(ctx.schedule_timer(20), ctx.wait_for_event("Never"))
    return {"approved": approval, "race": raced}


def looper(ctx: Any, counter: Any) -> Orch:
    n = int(counter)
    yield ctx.schedule_activity("Work", n)
    if n < 3:
        yield ctx.continue_as_new(n + 1)
        return None
    return n


def failing(ctx: Any, value: Any) -> Orch:
    yield ctx.schedule_activity("Work", value)
    raise RuntimeError("orchestration gave up")


def kv(ctx: Any, value: Any) -> Orch:
    ctx.set_kv_value("k", str(value))
    ctx.set_custom_status("half")
    yield ctx.schedule_timer(5)
    ctx.clear_kv_value("k")
    return "ok"


def mailbox(ctx: Any, _input: Any) -> Orch:
    first = yield ctx.dequeue_event("inbox")
    second = yield ctx.dequeue_event("inbox")
    return [first, second]


def sleeper(ctx: Any, _input: Any) -> Orch:
    yield ctx.schedule_timer(60_000)
    return "late"


ORCHESTRATIONS = {
    "Hello": hello,
    "FanOut": fan_out,
    "Child": child,
    "Parent": parent,
    "Waiter": waiter,
    "Looper": looper,
    "Failing": failing,
    "Kv": kv,
    "Mailbox": mailbox,
    "Sleeper": sleeper,
}
