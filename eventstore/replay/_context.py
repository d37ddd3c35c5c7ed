# ruff: noqa: A002  (duroxide's API names its payload argument `input`)
"""The orchestration context handed to replayed code.

It has the method names, arguments and return values of duroxide's Python
SDK context: scheduling methods return task descriptors (plain dicts with a
`type`) that the code yields, and the fire-and-forget calls (custom status,
key-value store) are recorded as actions to match against history; tracing
calls do nothing, as duroxide suppresses logs while replaying.
The descriptors have duroxide's shape, so code that inspects them sees what
it would see under the runtime.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["ReplayContext", "ScheduledTask", "caller_location"]


def caller_location(depth: int = 2) -> str:
    """`file:line` of the frame `depth` levels above the caller of this function."""
    frame = sys._getframe(depth)
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


class ScheduledTask(dict[str, Any]):
    """A task descriptor to yield; `.with_tag()` routes an activity to tagged workers."""

    def with_tag(self, tag: str) -> ScheduledTask:
        self["tag"] = tag
        return self


def _retry(retry: dict[str, Any] | None) -> dict[str, Any]:
    retry = retry or {}
    return {
        "maxAttempts": retry.get("max_attempts", retry.get("maxAttempts", 3)),
        "timeoutMs": retry.get("timeout_ms", retry.get("timeoutMs")),
        "totalTimeoutMs": retry.get("total_timeout_ms", retry.get("totalTimeoutMs")),
        "backoff": retry.get("backoff"),
    }


def _typed_input(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class ReplayContext:
    """What an orchestration function receives as `ctx` during replay."""

    def __init__(
        self,
        engine: Engine,
        *,
        instance_id: str,
        execution_id: int,
        orchestration_name: str,
        orchestration_version: str,
    ) -> None:
        self._engine = engine
        self.instance_id = instance_id
        self.execution_id = execution_id
        self.orchestration_name = orchestration_name
        self.orchestration_version = orchestration_version

    # -- scheduling (yield these) ----------------------------------------------

    def schedule_activity(
        self, name: str, input: Any = None, session_id: str | None = None
    ) -> ScheduledTask:
        if session_id is not None:
            return self.schedule_activity_on_session(name, input, session_id)
        return ScheduledTask({"type": "activity", "name": name, "input": json.dumps(input)})

    def schedule_activity_on_session(self, name: str, input: Any, session_id: str) -> ScheduledTask:
        return ScheduledTask(
            {
                "type": "activityWithSession",
                "name": name,
                "input": json.dumps(input),
                "sessionId": session_id,
            }
        )

    def schedule_activity_with_retry(
        self, name: str, input: Any, retry: dict[str, Any]
    ) -> ScheduledTask:
        return ScheduledTask(
            {
                "type": "activityWithRetry",
                "name": name,
                "input": json.dumps(input),
                "retry": _retry(retry),
            }
        )

    def schedule_activity_with_retry_on_session(
        self, name: str, input: Any, retry: dict[str, Any], session_id: str
    ) -> ScheduledTask:
        return ScheduledTask(
            {
                "type": "activityWithRetryOnSession",
                "name": name,
                "input": json.dumps(input),
                "retry": _retry(retry),
                "sessionId": session_id,
            }
        )

    def schedule_timer(self, delay_ms: int) -> dict[str, Any]:
        return {"type": "timer", "delayMs": delay_ms}

    def wait_for_event(self, name: str) -> dict[str, Any]:
        return {"type": "waitEvent", "name": name}

    def dequeue_event(self, queue_name: str) -> dict[str, Any]:
        return {"type": "dequeueEvent", "queueName": queue_name}

    def schedule_sub_orchestration(self, name: str, input: Any = None) -> dict[str, Any]:
        return {"type": "subOrchestration", "name": name, "input": json.dumps(input)}

    def schedule_sub_orchestration_with_id(
        self, name: str, instance_id: str, input: Any = None
    ) -> dict[str, Any]:
        return {
            "type": "subOrchestrationWithId",
            "name": name,
            "instanceId": instance_id,
            "input": json.dumps(input),
        }

    def schedule_sub_orchestration_versioned(
        self, name: str, version: str | None = None, input: Any = None
    ) -> dict[str, Any]:
        return {
            "type": "subOrchestrationVersioned",
            "name": name,
            "version": version,
            "input": json.dumps(input),
        }

    def schedule_sub_orchestration_versioned_with_id(
        self, name: str, version: str, instance_id: str, input: Any = None
    ) -> dict[str, Any]:
        return {
            "type": "subOrchestrationVersionedWithId",
            "name": name,
            "version": version,
            "instanceId": instance_id,
            "input": json.dumps(input),
        }

    def start_orchestration(self, name: str, instance_id: str, input: Any = None) -> dict[str, Any]:
        return {
            "type": "orchestration",
            "name": name,
            "instanceId": instance_id,
            "input": json.dumps(input),
        }

    def start_orchestration_versioned(
        self, name: str, version: str, instance_id: str, input: Any = None
    ) -> dict[str, Any]:
        return {
            "type": "orchestrationVersioned",
            "name": name,
            "version": version,
            "instanceId": instance_id,
            "input": json.dumps(input),
        }

    def new_guid(self) -> dict[str, Any]:
        return {"type": "newGuid"}

    def utc_now(self) -> dict[str, Any]:
        return {"type": "utcNow"}

    def continue_as_new(self, input: Any = None) -> dict[str, Any]:
        return {"type": "continueAsNew", "input": json.dumps(input)}

    def continue_as_new_versioned(self, input: Any, version: str | None = None) -> dict[str, Any]:
        return {"type": "continueAsNewVersioned", "input": json.dumps(input), "version": version}

    # -- typed variants (inputs passed through when already a string) ------------

    def schedule_activity_typed(
        self, name: str, input: Any = None, result_type: type | None = None
    ) -> ScheduledTask:
        return ScheduledTask(
            {"type": "activity", "name": name, "input": _typed_input(input), "_typed": True}
        )

    def schedule_sub_orchestration_typed(
        self, name: str, input: Any = None, result_type: type | None = None
    ) -> dict[str, Any]:
        return {
            "type": "subOrchestration",
            "name": name,
            "input": _typed_input(input),
            "_typed": True,
        }

    def schedule_activity_on_session_typed(
        self, name: str, input: Any = None, session_id: str | None = None
    ) -> ScheduledTask:
        return ScheduledTask(
            {
                "type": "activityWithSession",
                "name": name,
                "input": _typed_input(input),
                "sessionId": session_id,
                "_typed": True,
            }
        )

    def schedule_activity_with_retry_typed(
        self, name: str, input: Any = None, retry: dict[str, Any] | None = None
    ) -> ScheduledTask:
        return ScheduledTask(
            {
                "type": "activityWithRetry",
                "name": name,
                "input": _typed_input(input),
                "retry": _retry(retry),
                "_typed": True,
            }
        )

    def schedule_activity_with_retry_on_session_typed(
        self,
        name: str,
        input: Any = None,
        retry: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> ScheduledTask:
        return ScheduledTask(
            {
                "type": "activityWithRetryOnSession",
                "name": name,
                "input": _typed_input(input),
                "retry": _retry(retry),
                "sessionId": session_id,
                "_typed": True,
            }
        )

    def wait_for_event_typed(self, name: str) -> dict[str, Any]:
        return {"type": "waitEvent", "name": name, "_typed": True}

    def dequeue_event_typed(self, queue_name: str) -> dict[str, Any]:
        return {"type": "dequeueEvent", "queueName": queue_name, "_typed": True}

    def schedule_sub_orchestration_with_id_typed(
        self, name: str, instance_id: str, input: Any = None
    ) -> dict[str, Any]:
        return {
            "type": "subOrchestrationWithId",
            "name": name,
            "instanceId": instance_id,
            "input": _typed_input(input),
            "_typed": True,
        }

    def start_orchestration_typed(
        self, name: str, instance_id: str, input: Any = None
    ) -> dict[str, Any]:
        return {
            "type": "orchestration",
            "name": name,
            "instanceId": instance_id,
            "input": _typed_input(input),
        }

    def start_orchestration_versioned_typed(
        self, name: str, version: str, instance_id: str, input: Any = None
    ) -> dict[str, Any]:
        return {
            "type": "orchestrationVersioned",
            "name": name,
            "version": version,
            "instanceId": instance_id,
            "input": _typed_input(input),
        }

    def continue_as_new_typed(self, input: Any = None) -> dict[str, Any]:
        return {"type": "continueAsNew", "input": _typed_input(input)}

    # -- composition -------------------------------------------------------------

    def all(self, tasks: list[Any]) -> dict[str, Any]:
        return {"type": "join", "tasks": list(tasks)}

    def race(self, *tasks: Any) -> dict[str, Any]:
        return {"type": "select", "tasks": list(tasks)}

    def all_typed(self, tasks: list[Any]) -> dict[str, Any]:
        return {"type": "join", "tasks": list(tasks), "_typed_all": True}

    def race_typed(self, *tasks: Any) -> dict[str, Any]:
        return {"type": "select", "tasks": list(tasks), "_typed_race": True}

    # -- custom status and key-value store (recorded, no yield) -----------------

    def set_custom_status(self, status: str) -> None:
        self._engine.record_custom_status(str(status), caller_location())

    def reset_custom_status(self) -> None:
        self._engine.record_custom_status(None, caller_location())

    def get_custom_status(self) -> str | None:
        return self._engine.custom_status

    def set_kv_value(self, key: str, value: str) -> None:
        self._engine.record_kv_set(str(key), str(value), caller_location())

    def get_kv_value(self, key: str) -> str | None:
        return self._engine.kv.get(str(key))

    def get_kv_all_values(self) -> dict[str, str]:
        return dict(self._engine.kv)

    def get_kv_all_keys(self) -> list[str]:
        return list(self._engine.kv)

    def get_kv_length(self) -> int:
        return len(self._engine.kv)

    def clear_kv_value(self, key: str) -> None:
        self._engine.record_kv_clear(str(key), caller_location())

    def clear_all_kv_values(self) -> None:
        self._engine.record_kv_clear_all(caller_location())

    def prune_kv_values_updated_before(self, cutoff_ms: int) -> int:
        return self._engine.prune_kv(cutoff_ms, caller_location())

    def get_kv_value_from_instance(self, instance_id: str, key: str) -> ScheduledTask:
        return ScheduledTask(
            {
                "type": "activity",
                "name": "__duroxide_syscall:get_kv_value",
                "input": json.dumps({"instance_id": instance_id, "key": key}),
            }
        )

    # -- tracing (replay is silent, as duroxide suppresses logs while replaying) --

    def trace_info(self, message: str) -> None:
        pass

    def trace_warn(self, message: str) -> None:
        pass

    def trace_error(self, message: str) -> None:
        pass

    def trace_debug(self, message: str) -> None:
        pass
