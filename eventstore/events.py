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
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Final, TypeAlias

from msgspec import UNSET, Meta, Struct, UnsetType

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

# SQLite and PostgreSQL store integers as signed 64-bit values, so that is the
# largest id or timestamp a history table can hold (duroxide's u64 included).
U64 = Annotated[int, Meta(ge=0, le=2**63 - 1)]

SYSTEM_CALL_PREFIX: Final = "__duroxide_syscall:"
"""Activities whose name starts with this are duroxide's system calls."""


# --------------------------------------------------------------------------
# ErrorDetails: externally tagged on the wire ({"Application": {...}}).
#
# msgspec can only produce internally tagged unions, so the top-level variants
# are plain immutable classes that the codec converts by hand (failures are
# rare, so that path is not hot). Nested kinds are small frozen Structs.
# Unknown variants are kept verbatim so newer writers' data survives a round
# trip unchanged.
# --------------------------------------------------------------------------


class UnknownVariant(Struct, frozen=True):
    """A variant of an extensible enum that this version does not know.

    `value` is the variant's decoded JSON value (None for a unit variant spelt
    as an object key with null), re-encoded unchanged as `{name: value}`.
    """

    name: str
    value: Any


class Cancelled(Struct, frozen=True):
    """Application error kind: the orchestration or activity was cancelled."""

    reason: str


class MissingVersion(Struct, frozen=True):
    """Configuration error kind removed from duroxide but present in old rows."""

    requested_version: str


class OrchestrationMessage(Struct, frozen=True):
    instance: str
    execution_id: U64


class ActivityMessage(Struct, frozen=True):
    instance: str
    execution_id: U64
    activity_name: str
    activity_id: U64


class FailedDeserializationMessage(Struct, frozen=True):
    instance: str
    execution_id: U64
    error: str


ApplicationKind: TypeAlias = str | Cancelled | UnknownVariant
""""ActivityFailed", "OrchestrationFailed", "Panicked", Cancelled, or unknown."""
ConfigurationKind: TypeAlias = str | MissingVersion | UnknownVariant
""""Nondeterminism" (older: "UnregisteredOrchestration", ...), MissingVersion."""
PoisonMessageType: TypeAlias = (
    OrchestrationMessage | ActivityMessage | FailedDeserializationMessage | UnknownVariant
)


class ErrorDetails:
    """Base of the structured failure carried by *Failed events."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    variant: ClassVar[str] = ""

    def __init__(self, **fields: Any) -> None:
        missing = set(self._fields) - fields.keys()
        extra = fields.keys() - set(self._fields)
        if missing or extra:
            raise TypeError(
                f"{type(self).__name__}: missing {sorted(missing)}, unexpected {sorted(extra)}"
            )
        for name in self._fields:
            object.__setattr__(self, name, fields[name])

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__name__}({args})"


class ApplicationError(ErrorDetails):
    """A failure raised by user code (activity or orchestration)."""

    __slots__ = ("kind", "message", "retryable")
    _fields = ("kind", "message", "retryable")
    variant = "Application"
    kind: ApplicationKind
    message: str
    retryable: bool

    def __init__(self, *, kind: ApplicationKind, message: str, retryable: bool = False) -> None:
        super().__init__(kind=kind, message=message, retryable=retryable)


class InfrastructureError(ErrorDetails):
    """A failure of the runtime or its provider."""

    __slots__ = ("message", "operation", "retryable")
    _fields = ("operation", "message", "retryable")
    variant = "Infrastructure"
    operation: str
    message: str
    retryable: bool

    def __init__(self, *, operation: str, message: str, retryable: bool) -> None:
        super().__init__(operation=operation, message=message, retryable=retryable)


class ConfigurationError(ErrorDetails):
    """A misconfiguration, such as nondeterministic orchestration code."""

    __slots__ = ("kind", "message", "resource")
    _fields = ("kind", "resource", "message")
    variant = "Configuration"
    kind: ConfigurationKind
    resource: str
    message: str | None

    def __init__(
        self, *, kind: ConfigurationKind, resource: str, message: str | None = None
    ) -> None:
        super().__init__(kind=kind, resource=resource, message=message)


class PoisonError(ErrorDetails):
    """A message that failed too many times and was set aside."""

    __slots__ = ("attempt_count", "max_attempts", "message", "message_type")
    _fields = ("attempt_count", "max_attempts", "message_type", "message")
    variant = "Poison"
    attempt_count: int
    max_attempts: int
    message_type: PoisonMessageType
    message: str

    def __init__(
        self,
        *,
        attempt_count: int,
        max_attempts: int,
        message_type: PoisonMessageType,
        message: str,
    ) -> None:
        super().__init__(
            attempt_count=attempt_count,
            max_attempts=max_attempts,
            message_type=message_type,
            message=message,
        )


class UnknownErrorDetails(ErrorDetails):
    """An ErrorDetails variant written by a newer duroxide; kept verbatim."""

    __slots__ = ("name", "value")
    _fields = ("name", "value")
    name: str
    value: Any

    def __init__(self, *, name: str, value: Any) -> None:
        super().__init__(name=name, value=value)


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
    """Marker base of the event types this version knows (tagged by class name)."""


class OrchestrationStarted(_Known, tag=True, kw_only=True, frozen=True):
    name: str
    version: str
    input: str
    parent_instance: str | None = None
    parent_id: U64 | None = None
    parent_execution_id: U64 | UnsetType = UNSET
    carry_forward_events: tuple[tuple[str, str], ...] | UnsetType = UNSET
    initial_custom_status: str | UnsetType | None = UNSET


class OrchestrationCompleted(_Known, tag=True, kw_only=True, frozen=True):
    output: str


class OrchestrationFailed(_Known, tag=True, kw_only=True, frozen=True):
    details: ErrorDetails


class OrchestrationContinuedAsNew(_Known, tag=True, kw_only=True, frozen=True):
    input: str


class OrchestrationCancelRequested(_Known, tag=True, kw_only=True, frozen=True):
    reason: str


class OrchestrationChained(_Known, tag=True, kw_only=True, frozen=True):
    name: str
    instance: str
    input: str


class ActivityScheduled(_Known, tag=True, kw_only=True, frozen=True):
    name: str
    input: str
    session_id: str | UnsetType = UNSET
    tag: str | UnsetType = UNSET

    @property
    def is_system_call(self) -> bool:
        return self.name.startswith(SYSTEM_CALL_PREFIX)


class ActivityCompleted(_Known, tag=True, kw_only=True, frozen=True):
    result: str


class ActivityFailed(_Known, tag=True, kw_only=True, frozen=True):
    details: ErrorDetails


class ActivityCancelRequested(_Known, tag=True, kw_only=True, frozen=True):
    reason: str


class TimerCreated(_Known, tag=True, kw_only=True, frozen=True):
    fire_at_ms: U64


class TimerFired(_Known, tag=True, kw_only=True, frozen=True):
    fire_at_ms: U64


class ExternalSubscribed(_Known, tag=True, kw_only=True, frozen=True):
    name: str


class ExternalEvent(_Known, tag=True, kw_only=True, frozen=True):
    name: str
    data: str


class ExternalSubscribedCancelled(_Known, tag=True, kw_only=True, frozen=True):
    reason: str


class ExternalSubscribedPersistent(_Known, tag=True, kw_only=True, frozen=True):
    """A subscription to a queue (`ctx.dequeue_event`)."""

    name: str


class ExternalEventPersistent(_Known, tag=True, kw_only=True, frozen=True):
    """A queued message delivered to a persistent subscription."""

    name: str
    data: str


class ExternalSubscribedPersistentCancelled(_Known, tag=True, kw_only=True, frozen=True):
    reason: str


class SubOrchestrationScheduled(_Known, tag=True, kw_only=True, frozen=True):
    name: str
    instance: str
    input: str


class SubOrchestrationCompleted(_Known, tag=True, kw_only=True, frozen=True):
    result: str


class SubOrchestrationFailed(_Known, tag=True, kw_only=True, frozen=True):
    details: ErrorDetails


class SubOrchestrationCancelRequested(_Known, tag=True, kw_only=True, frozen=True):
    reason: str


class CustomStatusUpdated(_Known, tag=True, kw_only=True, frozen=True):
    status: str | None
    """The new custom status; None clears it."""


class KeyValueSet(_Known, tag=True, kw_only=True, frozen=True):
    key: str
    value: str
    last_updated_at_ms: U64 = 0


class KeyValueCleared(_Known, tag=True, kw_only=True, frozen=True):
    key: str


class KeyValuesCleared(_Known, tag=True, kw_only=True, frozen=True):
    pass


class SystemCall(_Known, tag=True, kw_only=True, frozen=True):
    """Legacy (V0) only: one event for a system call and its result.

    V1 records the same thing as an ActivityScheduled with a reserved name plus
    its ActivityCompleted. There is no one-to-one V1 form, so it stays what it
    is; eventstore encodes it V1-shaped with type "SystemCall", which eventstore
    reads and duroxide does not.
    """

    op: str
    value: str


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
