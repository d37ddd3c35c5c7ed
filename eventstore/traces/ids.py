"""Trace and span ids derived from what the history names, never drawn at random.

So two exports of the same store agree byte for byte, and a span in one trace
can name a span in another without reading it: a sub-orchestration's span
links to its child's execution span by the child's instance id alone.

* trace id (16 bytes): one per instance, from the instance id;
* span id (8 bytes): from instance, execution and event id; an execution's
  own span takes event id 0 (no event has it), an activity, timer, wait or
  sub-orchestration the id of the event that began it.

SHA-256 over a versioned, NUL-separated key; an all-zero id (invalid in
OpenTelemetry) is never produced (its last byte is set instead).
"""

from __future__ import annotations

import hashlib
from typing import Final

__all__ = ["EXECUTION_EVENT_ID", "span_id", "trace_id"]

EXECUTION_EVENT_ID: Final = 0
"""The event id an execution's own span is derived with (event ids start at 1)."""
_DOMAIN: Final = b"eventstore.traces/1\x00"


def _digest(kind: bytes, *parts: str | int, size: int) -> bytes:
    key = _DOMAIN + kind + b"".join(b"\x00" + str(part).encode("utf-8") for part in parts)
    digest = hashlib.sha256(key).digest()[:size]
    if not any(digest):
        return digest[:-1] + b"\x01"
    return digest


def trace_id(instance_id: str) -> bytes:
    """The 16-byte trace id of an instance."""
    return _digest(b"trace", instance_id, size=16)


def span_id(instance_id: str, execution_id: int, event_id: int = EXECUTION_EVENT_ID) -> bytes:
    """The 8-byte span id of an execution (event id 0) or of what an event began."""
    return _digest(b"span", instance_id, execution_id, event_id, size=8)


SUB_PLACEHOLDER: Final = "sub::"
"""How duroxide names a child it generates an id for: `sub::<event id>`, which
the runtime prefixes with the parent's instance id when it starts the child."""


def child_instance_id(parent_instance_id: str, scheduled_instance: str) -> str:
    """The instance id a SubOrchestrationScheduled's child runs under.

    duroxide records a generated child id as the placeholder `sub::<id>` and
    starts the child as `<parent>::sub::<id>` (the child's OrchestrationStarted
    names the parent); an id the orchestration chose is used as written.
    """
    if scheduled_instance.startswith(SUB_PLACEHOLDER):
        return f"{parent_instance_id}::{scheduled_instance}"
    return scheduled_instance
