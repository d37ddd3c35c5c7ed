"""The event model: one immutable msgspec Struct per event type of every generation.

Pure data. This module knows nothing of JSON generations, databases or terminals;
`eventstore.codec` maps the wire formats onto these types.

Field conventions (see proposals/event-schema-evolution.md):

* The six common fields live on `EventBase` and default to "unknown":
  `timestamp_ms == 0` means no timestamp was recorded, `duroxide_version == ""`
  means the writer's version is unknown, `instance_id == ""` and
  `execution_id == 0` mean "fill in from the row / the append call".
* Fields that duroxide leaves out of its JSON when absent default to
  `msgspec.UNSET` and are omitted when encoded; fields duroxide writes as
  `null` default to `None` and are written as `null`.
* Phase-2 metadata (`runtime_version` on every event, worker, trace,
  correlation, tags and retry fields on some; see
  proposals/event-schema-evolution.md) is all `UNSET` by default, so an event
  that does not set it encodes byte for byte as before. Unknown fields of a
  known type are ignored on decode (a newer writer's metadata).
"""

from __future__ import annotations

from typing import Any, ClassVar, Final, TypeAlias

from msgspec import UNSET, Struct, UnsetType

from .error_details import U64 as U64
from .error_details import (
    ActivityMessage,
    ApplicationError,
    Cancelled,
    ConfigurationError,
    ErrorDetails,
    FailedDeserializationMessage,
    InfrastructureError,
    MissingVersion,
    OrchestrationMessage,
    PoisonError,
    UnknownErrorDetails,
    UnknownVariant,
)

# Re-exported for the codec and the catalogs, which name them as ev.X.
from .error_details import ApplicationKind as ApplicationKind
from .error_details import ConfigurationKind as ConfigurationKind
from .error_details import PoisonMessageType as PoisonMessageType

__all__ = [
    "UNSET",
    "ActivityCancelRequested",
    "ActivityCompleted",
    "ActivityScheduled",
    "ActivityFailed",
    "ActivityMessage",
    "ApplicationError",
    "Cancelled",
    "ConfigurationError",
    "CustomStatusUpdated",
    "ErrorDetails",
    "Event",
    "PHASE2_FIELDS",
    "RetryPolicy",
    "EventBase",
    "ExternalEvent",
    "ExternalEventPersistent",
    "ExternalSubscribed",
    "ExternalSubscribedCancelled",
    "ExternalSubscribedPersistent",
    "ExternalSubscribedPersistentCancelled",
    "FailedDeserializationMessage",
    "InfrastructureError",
    "KeyValueCleared",
    "KeyValueSet",
    "KeyValuesCleared",
    "KnownEvent",
    "MissingVersion",
    "OrchestrationCancelRequested",
    "OrchestrationChained",
    "OrchestrationCompleted",
    "OrchestrationContinuedAsNew",
    "OrchestrationFailed",
    "OrchestrationMessage",
    "OrchestrationStarted",
    "PoisonError",
    "SubOrchestrationCancelRequested",
    "SubOrchestrationCompleted",
    "SubOrchestrationFailed",
    "SubOrchestrationScheduled",
    "SYSTEM_CALL_PREFIX",
    "SystemCall",
    "TimerCreated",
    "TimerFired",
    "UnknownErrorDetails",
    "UnknownEvent",
    "UnknownVariant",
    "EVENT_TYPES",
    "TERMINAL_TYPES",
    "COMPLETION_SOURCES",
]

SYSTEM_CALL_PREFIX: Final = "__duroxide_syscall:"
"""Activities whose name starts with this are duroxide's system calls."""


# --------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------


class EventBase(Struct, frozen=True, gc=False, tag_field="type"):
    """The fields every event carries, in duroxide's order.

    Concrete event types add their own fields as keyword-only arguments.
    """

    event_id: U64
    source_event_id: U64 | None = None
    instance_id: str = ""
    execution_id: U64 = 0
    timestamp_ms: U64 = 0
    duroxide_version: str = ""

    event_type: ClassVar[str] = ""
    """The wire type name (the `type` tag and the `event_type` column)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "event_type" not in cls.__dict__:  # UnknownEvent answers per instance
            cls.event_type = cls.__name__

    @property
    def has_timestamp(self) -> bool:
        return self.timestamp_ms > 0


class _Known(EventBase, kw_only=True, frozen=True):
    """Marker base of the event types this version knows (tagged by class name).

    Each type declares the phase-2 `runtime_version` (the embedding runtime's
    own version; `duroxide_version` names the wire format's) as its *last*
    field rather than here: msgspec matches JSON keys fastest when they come
    in field order, and a field between the common ones and the kind's own
    would put every stored V1 row off that order (measured 3-5% on decode).
    """


class RetryPolicy(Struct, frozen=True, gc=False, kw_only=True):
    """Phase 2: how an activity is retried (on ActivityScheduled.retry_policy)."""

    max_attempts: U64
    initial_backoff_ms: U64 | UnsetType = UNSET
    max_backoff_ms: U64 | UnsetType = UNSET
    backoff_multiplier: float | UnsetType = UNSET


class OrchestrationStarted(_Known, tag=True, kw_only=True, frozen=True):
    name: str
    version: str
    input: str
    parent_instance: str | None = None
    parent_id: U64 | None = None
    parent_execution_id: U64 | UnsetType = UNSET
    carry_forward_events: tuple[tuple[str, str], ...] | UnsetType = UNSET
    initial_custom_status: str | UnsetType | None = UNSET
    worker_id: str | UnsetType = UNSET
    trace_id: str | UnsetType = UNSET
    correlation_id: str | UnsetType = UNSET
    tags: dict[str, str] | UnsetType = UNSET
    """Phase 2: a string map (not hashable: an event carrying tags cannot be a
    set member or dict key)."""
    runtime_version: str | UnsetType = UNSET


class OrchestrationCompleted(_Known, tag=True, kw_only=True, frozen=True):
    output: str
    runtime_version: str | UnsetType = UNSET


class OrchestrationFailed(_Known, tag=True, kw_only=True, frozen=True):
    details: ErrorDetails
    runtime_version: str | UnsetType = UNSET


class OrchestrationContinuedAsNew(_Known, tag=True, kw_only=True, frozen=True):
    input: str
    runtime_version: str | UnsetType = UNSET


class OrchestrationCancelRequested(_Known, tag=True, kw_only=True, frozen=True):
    reason: str
    runtime_version: str | UnsetType = UNSET


class OrchestrationChained(_Known, tag=True, kw_only=True, frozen=True):
    name: str
    instance: str
    input: str
    runtime_version: str | UnsetType = UNSET


class ActivityScheduled(_Known, tag=True, kw_only=True, frozen=True):
    name: str
    input: str
    session_id: str | UnsetType = UNSET
    tag: str | UnsetType = UNSET
    retry_count: U64 | UnsetType = UNSET
    timeout_ms: U64 | UnsetType = UNSET
    retry_policy: RetryPolicy | UnsetType = UNSET
    scheduled_by_worker_id: str | UnsetType = UNSET
    runtime_version: str | UnsetType = UNSET

    @property
    def is_system_call(self) -> bool:
        return self.name.startswith(SYSTEM_CALL_PREFIX)


class ActivityCompleted(_Known, tag=True, kw_only=True, frozen=True):
    result: str
    completed_by_worker_id: str | UnsetType = UNSET
    runtime_version: str | UnsetType = UNSET


class ActivityFailed(_Known, tag=True, kw_only=True, frozen=True):
    details: ErrorDetails
    completed_by_worker_id: str | UnsetType = UNSET
    runtime_version: str | UnsetType = UNSET


class ActivityCancelRequested(_Known, tag=True, kw_only=True, frozen=True):
    reason: str
    runtime_version: str | UnsetType = UNSET


class TimerCreated(_Known, tag=True, kw_only=True, frozen=True):
    fire_at_ms: U64
    scheduled_by_worker_id: str | UnsetType = UNSET
    runtime_version: str | UnsetType = UNSET


class TimerFired(_Known, tag=True, kw_only=True, frozen=True):
    fire_at_ms: U64
    runtime_version: str | UnsetType = UNSET


class ExternalSubscribed(_Known, tag=True, kw_only=True, frozen=True):
    name: str
    runtime_version: str | UnsetType = UNSET


class ExternalEvent(_Known, tag=True, kw_only=True, frozen=True):
    name: str
    data: str
    runtime_version: str | UnsetType = UNSET


class ExternalSubscribedCancelled(_Known, tag=True, kw_only=True, frozen=True):
    reason: str
    runtime_version: str | UnsetType = UNSET


class ExternalSubscribedPersistent(_Known, tag=True, kw_only=True, frozen=True):
    """A subscription to a queue (`ctx.dequeue_event`)."""

    name: str
    runtime_version: str | UnsetType = UNSET


class ExternalEventPersistent(_Known, tag=True, kw_only=True, frozen=True):
    """A queued message delivered to a persistent subscription."""

    name: str
    data: str
    runtime_version: str | UnsetType = UNSET


class ExternalSubscribedPersistentCancelled(_Known, tag=True, kw_only=True, frozen=True):
    reason: str
    runtime_version: str | UnsetType = UNSET


class SubOrchestrationScheduled(_Known, tag=True, kw_only=True, frozen=True):
    name: str
    instance: str
    input: str
    scheduled_by_worker_id: str | UnsetType = UNSET
    runtime_version: str | UnsetType = UNSET


class SubOrchestrationCompleted(_Known, tag=True, kw_only=True, frozen=True):
    result: str
    runtime_version: str | UnsetType = UNSET


class SubOrchestrationFailed(_Known, tag=True, kw_only=True, frozen=True):
    details: ErrorDetails
    runtime_version: str | UnsetType = UNSET


class SubOrchestrationCancelRequested(_Known, tag=True, kw_only=True, frozen=True):
    reason: str
    runtime_version: str | UnsetType = UNSET


class CustomStatusUpdated(_Known, tag=True, kw_only=True, frozen=True):
    status: str | None
    """The new custom status; None clears it."""
    runtime_version: str | UnsetType = UNSET


class KeyValueSet(_Known, tag=True, kw_only=True, frozen=True):
    key: str
    value: str
    last_updated_at_ms: U64 = 0
    runtime_version: str | UnsetType = UNSET


class KeyValueCleared(_Known, tag=True, kw_only=True, frozen=True):
    key: str
    runtime_version: str | UnsetType = UNSET


class KeyValuesCleared(_Known, tag=True, kw_only=True, frozen=True):
    runtime_version: str | UnsetType = UNSET


class SystemCall(_Known, tag=True, kw_only=True, frozen=True):
    """Legacy (V0) only: one event for a system call and its result.

    V1 records the same thing as an ActivityScheduled with a reserved name plus
    its ActivityCompleted. There is no one-to-one V1 form, so it stays what it
    is; eventstore encodes it V1-shaped with type "SystemCall", which eventstore
    reads and duroxide does not.
    """

    op: str
    value: str
    runtime_version: str | UnsetType = UNSET


class UnknownEvent(EventBase, frozen=True):
    """An event of a type this version does not know, kept verbatim.

    `raw` is the stored JSON exactly as read; encoding returns it unchanged.
    The common fields are filled from it where present.
    """

    type_name: str = ""
    raw: bytes = b""

    @property
    def event_type(self) -> str:  # type: ignore[override]
        return self.type_name


KnownEvent: TypeAlias = (
    OrchestrationStarted
    | OrchestrationCompleted
    | OrchestrationFailed
    | OrchestrationContinuedAsNew
    | OrchestrationCancelRequested
    | OrchestrationChained
    | ActivityScheduled
    | ActivityCompleted
    | ActivityFailed
    | ActivityCancelRequested
    | TimerCreated
    | TimerFired
    | ExternalSubscribed
    | ExternalEvent
    | ExternalSubscribedCancelled
    | ExternalSubscribedPersistent
    | ExternalEventPersistent
    | ExternalSubscribedPersistentCancelled
    | SubOrchestrationScheduled
    | SubOrchestrationCompleted
    | SubOrchestrationFailed
    | SubOrchestrationCancelRequested
    | CustomStatusUpdated
    | KeyValueSet
    | KeyValueCleared
    | KeyValuesCleared
    | SystemCall
)

Event: TypeAlias = KnownEvent | UnknownEvent
"""Any event a store can hold."""

EVENT_TYPES: Final[dict[str, type[EventBase]]] = {
    cls.event_type: cls for cls in KnownEvent.__args__
}
"""Wire type name -> class, for every known type."""

PHASE2_FIELDS: Final[frozenset[tuple[str, str]]] = frozenset(
    {(name, "runtime_version") for name in EVENT_TYPES}
    | {
        ("OrchestrationStarted", "worker_id"),
        ("OrchestrationStarted", "trace_id"),
        ("OrchestrationStarted", "correlation_id"),
        ("OrchestrationStarted", "tags"),
        ("ActivityScheduled", "retry_count"),
        ("ActivityScheduled", "timeout_ms"),
        ("ActivityScheduled", "retry_policy"),
        ("ActivityScheduled", "scheduled_by_worker_id"),
        ("SubOrchestrationScheduled", "scheduled_by_worker_id"),
        ("TimerCreated", "scheduled_by_worker_id"),
        ("ActivityCompleted", "completed_by_worker_id"),
        ("ActivityFailed", "completed_by_worker_id"),
    }
)
"""(event type, field) of the phase-2 metadata: optional, omitted when unset,
absent from every catalog before `V1` (see eventstore.evolution.catalogs)."""

TERMINAL_TYPES: Final = frozenset(
    {"OrchestrationCompleted", "OrchestrationFailed", "OrchestrationContinuedAsNew"}
)
"""Event types that end an execution."""

COMPLETION_SOURCES: Final[dict[str, frozenset[str]]] = {
    "ActivityCompleted": frozenset({"ActivityScheduled"}),
    "ActivityFailed": frozenset({"ActivityScheduled"}),
    "ActivityCancelRequested": frozenset({"ActivityScheduled"}),
    "TimerFired": frozenset({"TimerCreated"}),
    "SubOrchestrationCompleted": frozenset({"SubOrchestrationScheduled"}),
    "SubOrchestrationFailed": frozenset({"SubOrchestrationScheduled"}),
    "SubOrchestrationCancelRequested": frozenset({"SubOrchestrationScheduled"}),
    "ExternalSubscribedCancelled": frozenset({"ExternalSubscribed"}),
    "ExternalSubscribedPersistentCancelled": frozenset({"ExternalSubscribedPersistent"}),
}
"""Completion-like type -> the scheduling types its source_event_id may name."""
