"""Actions: what the code asked for, and the outcomes the history delivers to them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from ..events import SYSTEM_CALL_PREFIX

__all__ = [
    "NEW_GUID",
    "RECORD_KINDS",
    "UTC_NOW",
    "Action",
    "Outcome",
    "parse_raw",
    "same_json",
]

NEW_GUID: Final = SYSTEM_CALL_PREFIX + "new_guid"
UTC_NOW: Final = SYSTEM_CALL_PREFIX + "utc_now_ms"

RECORD_KINDS: Final = frozenset({"custom_status", "kv_set", "kv_clear", "kv_clear_all"})
"""Actions that only record state: no result, nothing waits on them."""


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    raw: str
    """The result as the runtime hands it to the driver: JSON text, or a message."""


@dataclass(eq=False, slots=True)
class Action:
    """One thing the code did that the history must record."""

    kind: str
    """activity, timer, wait_event, dequeue_event, sub_orchestration,
    start_orchestration, new_guid, utc_now, custom_status, kv_set, kv_clear,
    kv_clear_all."""
    where: str
    name: str = ""
    input: str = ""
    session_id: str | None = None
    tag: str | None = None
    instance: str | None = None
    version: str | None = None
    value: str | None = None
    delay_ms: int | None = None
    event_id: int | None = None
    """The history event that recorded it (None while unrecorded)."""
    outcome: Outcome | None = field(default=None, repr=False)
    seq: int = field(default=0, repr=False)
    cancelled: bool = field(default=False, repr=False)

    @property
    def recorded(self) -> bool:
        return self.event_id is not None

    def describe(self) -> str:
        describe = _DESCRIBE.get(self.kind)
        return describe(self) if describe is not None else self.kind


def _describe_activity(a: Action) -> str:
    extra = ""
    if a.session_id is not None:
        extra += f", session={a.session_id!r}"
    if a.tag is not None:
        extra += f", tag={a.tag!r}"
    return f"activity {a.name!r} (input={a.input!r}{extra})"


def _describe_timer(a: Action) -> str:
    return f"timer ({a.delay_ms} ms)" if a.delay_ms is not None else "timer"


_DESCRIBE: Final[dict[str, Callable[[Action], str]]] = {
    "activity": _describe_activity,
    "timer": _describe_timer,
    "wait_event": lambda a: f"wait_for_event {a.name!r}",
    "dequeue_event": lambda a: f"dequeue_event {a.name!r}",
    "sub_orchestration": lambda a: f"sub-orchestration {a.name!r} (input={a.input!r})",
    "start_orchestration": lambda a: (
        f"start_orchestration {a.name!r} as {a.instance!r} (input={a.input!r})"
    ),
    "new_guid": lambda a: "new_guid",
    "utc_now": lambda a: "utc_now",
    "custom_status": lambda a: f"set_custom_status({a.value!r})",
    "kv_set": lambda a: f"set_kv_value({a.name!r}, {a.value!r})",
    "kv_clear": lambda a: f"clear_kv_value({a.name!r})",
    "kv_clear_all": lambda a: "clear_all_kv_values()",
}
"""Action kind -> its description in mismatch messages."""


def parse_raw(raw: str) -> Any:
    """As duroxide's driver: JSON when it parses, else the text itself."""
    try:
        return json.loads(raw)
    except (ValueError, TypeError):
        return raw


def same_json(left: str, right: str) -> bool:
    """Whether two JSON texts hold the same value (or are the same text)."""
    if left == right:
        return True
    try:
        return bool(json.loads(left) == json.loads(right))
    except ValueError:
        return False
