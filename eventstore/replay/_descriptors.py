"""Yielded task descriptors (duroxide's dicts with a `type`) turned into tasks."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from ._actions import Action, Outcome
from ._tasks import Immediate, Join, Primitive, Retry, Select, Task

__all__ = ["ContinueAsNew", "NotATask", "build_task"]

Descriptor = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ContinueAsNew:
    """The code yielded continue-as-new: it ends here, with this new input."""

    input: str


@dataclass(frozen=True, slots=True)
class NotATask:
    """The code yielded something the runtime cannot run; `error` is what the code fails with.

    `error` is never raised itself, so the failure recorded for the code is
    its `Type: message` line alone, as duroxide's driver records it.
    """

    error: Exception


def build_task(descriptor: Any, where: str) -> Task | ContinueAsNew | NotATask:
    """What the code yielded at `where`: a task, the end (continue-as-new), or no task."""
    if not isinstance(descriptor, dict) or not isinstance(descriptor.get("type"), str):
        return NotATask(
            TypeError(
                f"orchestration yielded {descriptor!r}, not a task from the context (at {where})"
            )
        )
    kind: str = descriptor["type"]
    if kind in ("continueAsNew", "continueAsNewVersioned"):
        return ContinueAsNew(str(descriptor["input"]))
    build = _BUILDERS.get(kind)
    if build is None:
        return NotATask(ValueError(f"unknown task type {kind!r} (at {where})"))
    return build(descriptor, where)


# -- one builder per descriptor type ---------------------------------------------


def _activity(d: Descriptor, where: str) -> Task:
    return Primitive(
        Action(
            "activity",
            where,
            name=str(d["name"]),
            input=str(d["input"]),
            session_id=d.get("sessionId"),
            tag=d.get("tag"),
        )
    )


def _activity_with_retry(d: Descriptor, where: str) -> Task:
    tag = d.get("tag")
    name, data, session = str(d["name"]), str(d["input"]), d.get("sessionId")

    def attempt() -> Action:
        return Action("activity", where, name=name, input=data, session_id=session, tag=tag)

    return Retry(where, attempt, dict(d.get("retry") or {}))


def _sub_orchestration(d: Descriptor, where: str) -> Task:
    return Primitive(
        Action(
            "sub_orchestration",
            where,
            name=str(d["name"]),
            input=str(d["input"]),
            instance=d.get("instanceId"),
            version=d.get("version"),
        )
    )


def _start_orchestration(d: Descriptor, where: str) -> Task:
    """A detached start: resolved at once, its action still recorded."""
    action = Action(
        "start_orchestration",
        where,
        name=str(d["name"]),
        input=str(d["input"]),
        instance=str(d["instanceId"]),
        version=d.get("version"),
    )
    return Immediate(where, Outcome(True, "null"), action)


def _nested(subs: list[Any]) -> bool:
    return any(isinstance(s, dict) and s.get("type") in ("join", "select") for s in subs)


def _join(d: Descriptor, where: str) -> Task:
    subs = list(d.get("tasks") or [])
    if _nested(subs):
        return Immediate(where, Outcome(False, "nested join/select inside join is not supported"))
    return Join(where, [_child(s, where, "join") for s in subs])


def _select(d: Descriptor, where: str) -> Task:
    subs = list(d.get("tasks") or [])
    if len(subs) != 2:
        return Immediate(where, Outcome(False, "select currently supports exactly 2 tasks"))
    if _nested(subs):
        return Immediate(where, Outcome(False, "nested join/select inside select is not supported"))
    return Select(where, [_child(s, where, "select") for s in subs])


_PRIMITIVE_BUILDERS: Final[dict[str, Callable[[Descriptor, str], Task]]] = {
    "activity": _activity,
    "activityWithSession": _activity,
    "activityWithRetry": _activity_with_retry,
    "activityWithRetryOnSession": _activity_with_retry,
    "timer": lambda d, where: Primitive(
        Action("timer", where, delay_ms=int(d.get("delayMs") or 0))
    ),
    "waitEvent": lambda d, where: Primitive(Action("wait_event", where, name=str(d["name"]))),
    "dequeueEvent": lambda d, where: Primitive(
        Action("dequeue_event", where, name=str(d["queueName"]))
    ),
    "subOrchestration": _sub_orchestration,
    "subOrchestrationWithId": _sub_orchestration,
    "subOrchestrationVersioned": _sub_orchestration,
    "subOrchestrationVersionedWithId": _sub_orchestration,
}
"""The descriptor types a join or select may hold."""

_BUILDERS: Final[dict[str, Callable[[Descriptor, str], Task]]] = {
    **_PRIMITIVE_BUILDERS,
    "orchestration": _start_orchestration,
    "orchestrationVersioned": _start_orchestration,
    "newGuid": lambda d, where: Primitive(Action("new_guid", where)),
    "utcNow": lambda d, where: Primitive(Action("utc_now", where)),
    "join": _join,
    "select": _select,
}
"""Descriptor type -> its task (continue-as-new is not a task: see build_task)."""


def _child(descriptor: Any, where: str, parent: str) -> Task:
    """A member of a join or select."""
    kind = descriptor.get("type") if isinstance(descriptor, dict) else None
    if isinstance(kind, str) and kind in _PRIMITIVE_BUILDERS:
        return _PRIMITIVE_BUILDERS[kind](descriptor, where)
    message = f"unsupported task in {parent}"
    # duroxide resolves an unsupported join member as an error entry and an
    # unsupported select member as a value, without scheduling anything.
    return Immediate(where, Outcome(parent != "join", json.dumps(message)))
