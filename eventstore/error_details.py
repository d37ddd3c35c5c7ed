"""ErrorDetails, the failure family of the event model, and the nested kinds.

Pure data, like `eventstore.events` (which re-exports every name here).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, TypeAlias

from msgspec import Meta, Struct

# SQLite and PostgreSQL store integers as signed 64-bit values, so that is the
# largest id or timestamp a history table can hold (duroxide's u64 included).
U64 = Annotated[int, Meta(ge=0, le=2**63 - 1)]


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


_set = object.__setattr__


class ErrorDetails:
    """Base of the structured failure carried by *Failed events."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _getter: ClassVar[Callable[[Any], tuple[Any, ...]] | None] = None
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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The fields as one tuple, taken in C: equality and hashing run on
        # every read-back check of an appended failure.
        if len(cls._fields) > 1:  # attrgetter of one name gives the value, not a tuple
            cls._getter = operator.attrgetter(*cls._fields)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _values(self) -> tuple[Any, ...]:
        getter = type(self)._getter
        if getter is None:
            return tuple(getattr(self, name) for name in self._fields)
        return getter(self)

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
        # Keyword-only arguments already refuse a missing or unknown field:
        # set them directly (the generic check costs more than a decode).
        _set(self, "kind", kind)
        _set(self, "message", message)
        _set(self, "retryable", retryable)


class InfrastructureError(ErrorDetails):
    """A failure of the runtime or its provider."""

    __slots__ = ("message", "operation", "retryable")
    _fields = ("operation", "message", "retryable")
    variant = "Infrastructure"
    operation: str
    message: str
    retryable: bool

    def __init__(self, *, operation: str, message: str, retryable: bool) -> None:
        _set(self, "operation", operation)
        _set(self, "message", message)
        _set(self, "retryable", retryable)


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
        _set(self, "kind", kind)
        _set(self, "resource", resource)
        _set(self, "message", message)


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
        _set(self, "attempt_count", attempt_count)
        _set(self, "max_attempts", max_attempts)
        _set(self, "message_type", message_type)
        _set(self, "message", message)


class UnknownErrorDetails(ErrorDetails):
    """An ErrorDetails variant written by a newer duroxide; kept verbatim."""

    __slots__ = ("name", "value")
    _fields = ("name", "value")
    name: str
    value: Any

    def __init__(self, *, name: str, value: Any) -> None:
        _set(self, "name", name)
        _set(self, "value", value)


def failure_summary(details: object) -> str:
    """One line for an ErrorDetails: its kind and the last line of its message.

    The one wording of a failure that `eventstore show` and the web viewer
    both print; a cancellation says its reason.
    """
    kind = getattr(details, "kind", None)
    if isinstance(kind, Cancelled):
        return f"cancelled: {kind.reason}"
    message = str(getattr(details, "message", "") or "").strip()
    label = kind if isinstance(kind, str) else type(details).__name__
    last = message.splitlines()[-1] if message else ""
    return f"{label}: {last}" if last else str(label)
