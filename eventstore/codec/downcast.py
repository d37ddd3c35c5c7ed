"""Writing the legacy V0b shape: what a store whose write generation is V0b stores.

During a rolling upgrade, readers that know only V0b may still be running, so
a store opened with `write_generation="V0b"` keeps the history table in the
shape they read (format reference, section 3), and the full V1 form of each
event beside it (the dual-write window, `eventstore.store.window`).

The shape is exactly what `to_legacy v0b` (the shared conversion tool) makes
of the same V1 event, for the seventeen legacy kinds:

* `{"Type": {...}}`, one variant key; the body starts with `event_id`, then
  `source_event_id` on completions, failures and fired timers, then the kind's
  own fields in V1 order, then `execution_id` on scheduling events (and
  SystemCall);
* dropped: instance, timestamp and versions (V0 had none), the fields V1 added
  later (`session_id`, `tag`, `parent_execution_id`, `carry_forward_events`,
  `initial_custom_status`) and every phase-2 field;
* failures keep `details`; an Application kind `Panicked` (V1 only) becomes
  `OrchestrationFailed`, as the tool maps it.

Kinds that V0 never had (custom status, key-value, persistent events, cancel
requests) are written in the same legacy shape, which eventstore's legacy
decoder reads; a reader of the real V0 vintage knows none of them and would
refuse them in any shape (their V1 form is in the shadow table). Nothing here
runs on the default (V1) write path.
"""

from __future__ import annotations

from typing import Any, Final

from .. import events as ev
from .decoders import _ANY_DECODER, _ENCODER

__all__ = ["LEGACY_WRITE_GENERATIONS", "to_v0b"]

LEGACY_WRITE_GENERATIONS: Final = frozenset({"V0b"})
"""The legacy generations a store can be told to write (besides V1)."""

_COMMON: Final = frozenset(
    {
        "event_id",
        "source_event_id",
        "instance_id",
        "execution_id",
        "timestamp_ms",
        "duroxide_version",
        "type",
    }
)
_V0_KINDS: Final = frozenset(
    {
        "OrchestrationStarted",
        "OrchestrationCompleted",
        "OrchestrationFailed",
        "ActivityScheduled",
        "ActivityCompleted",
        "ActivityFailed",
        "TimerCreated",
        "TimerFired",
        "ExternalSubscribed",
        "ExternalEvent",
        "OrchestrationChained",
        "SubOrchestrationScheduled",
        "SubOrchestrationCompleted",
        "SubOrchestrationFailed",
        "OrchestrationContinuedAsNew",
        "OrchestrationCancelRequested",
        "SystemCall",
    }
)
"""The kinds V0 had (format reference, section 3)."""

_WITH_SOURCE: Final = frozenset(
    {
        "ActivityCompleted",
        "ActivityFailed",
        "TimerFired",
        "SubOrchestrationCompleted",
        "SubOrchestrationFailed",
    }
)
_WITH_EXECUTION: Final = frozenset(
    {"ActivityScheduled", "TimerCreated", "SubOrchestrationScheduled", "SystemCall"}
)
_LATER_V1_FIELDS: Final = frozenset(
    {
        "session_id",
        "tag",
        "parent_execution_id",
        "carry_forward_events",
        "initial_custom_status",
    }
)
_DROPPED: Final = _LATER_V1_FIELDS | {field for _, field in ev.PHASE2_FIELDS}


def _details_v0b(details: Any) -> Any:
    """V0b's ErrorDetails: Application kind Panicked (V1 only) reads as OrchestrationFailed."""
    application = details.get("Application") if isinstance(details, dict) else None
    if isinstance(application, dict) and application.get("kind") == "Panicked":
        return {"Application": {**application, "kind": "OrchestrationFailed"}}
    return details


def to_v0b(data: bytes) -> bytes:
    """The V0b row of one V1-encoded event (a legacy-shaped input is returned as is)."""
    obj = _ANY_DECODER.decode(data)
    type_name = obj.get("type") if isinstance(obj, dict) else None
    if not isinstance(type_name, str):
        return data  # already legacy-shaped (an UnknownEvent kept verbatim)
    body: dict[str, Any] = {"event_id": obj["event_id"]}
    source = obj.get("source_event_id")
    # A kind V0 never had keeps what its source id points at (a cancel request).
    if type_name in _WITH_SOURCE or (type_name not in _V0_KINDS and source is not None):
        body["source_event_id"] = source
    dropped = _DROPPED if type_name in ev.EVENT_TYPES else frozenset()
    for key, value in obj.items():
        if key not in _COMMON and key not in dropped:
            body[key] = _details_v0b(value) if key == "details" else value
    if type_name in _WITH_EXECUTION:
        body["execution_id"] = obj["execution_id"]
    return _ENCODER.encode({type_name: body})
