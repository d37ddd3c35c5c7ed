"""Orchestrations that probe what each yield returns (join, race, retry, system calls).

They return what they saw, so a replay that hands the code other values than
the runtime did ends with another output: a mismatch at the terminal event.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

Orch = Generator[Any, Any, Any]


def probe_values(ctx: Any, _input: Any) -> Orch:
    seen: dict[str, Any] = {}
    seen["join"] = yield ctx.all(
        [ctx.schedule_activity("Ok", 1), ctx.schedule_activity("Bad", 2), ctx.schedule_timer(5)]
    )
    try:
        seen["race"] = yield ctx.race(ctx.schedule_activity("Bad", 3), ctx.schedule_timer(60_000))
    except Exception as exc:
        seen["race_error"] = [type(exc).__name__, str(exc)]
    seen["now_is_int"] = isinstance((yield ctx.utc_now()), int)
    seen["guid"] = yield ctx.new_guid()
    try:
        yield ctx.schedule_activity("Bad", 4)
    except Exception as exc:
        seen["error"] = [type(exc).__name__, str(exc)]
    try:
        yield ctx.schedule_activity_with_retry("Bad", 5, {"max_attempts": 2, "timeout_ms": 60_000})
    except Exception as exc:
        seen["retry_error"] = str(exc)
    seen["typed"] = yield ctx.all_typed([ctx.schedule_activity("Ok", 6), ctx.schedule_timer(1)])
    return seen


def probe_status(ctx: Any, _input: Any) -> Orch:
    seen: dict[str, Any] = {}
    seen["start"] = yield ctx.start_orchestration("Echo", f"{ctx.instance_id}-detached", 3)
    seen["status_before"] = ctx.get_custom_status()
    ctx.set_custom_status("x")
    seen["status_after"] = ctx.get_custom_status()
    ctx.set_kv_value("a", "1")
    seen["kv"] = ctx.get_kv_all_values()
    seen["sub"] = yield ctx.schedule_sub_orchestration_with_id(
        "Echo", f"{ctx.instance_id}-child", {"n": 1}
    )
    return seen


def echo(ctx: Any, value: Any) -> Any:
    return value


def ok(ctx: Any, value: Any) -> Any:
    return {"v": value}


def bad(ctx: Any, value: Any) -> Any:
    raise ValueError(f"bad {value}")


PROBES = {"ProbeValues": probe_values, "ProbeStatus": probe_status, "Echo": echo}
ACTIVITIES = {"Ok": ok, "Bad": bad}
