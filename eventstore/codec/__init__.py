"""One decode path for every generation, and the duroxide-exact V1 encoder.

Generations (see proposals/event-schema-evolution.md):

* V1: a flat object with a `type` tag. Decoded by one typed msgspec decode
  straight from the bytes: no intermediate dicts, no per-event Python walk.
* V0 (V0a / V0b): `{"TypeName": {...fields}}`, one variant key. Recognised by
  the first key starting with an upper-case letter (V1 keys are snake_case),
  decoded typed into the legacy snapshot, then upcast to V1 through the
  registered chain V0a -> V0b -> V1 (`eventstore.codec.upcasting`).
* Anything else goes through a slow path that explains what is wrong, or
  yields an UnknownEvent for a well-formed event of a type we do not know.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Any, Final, cast

import msgspec
from msgspec import UNSET, Struct, UnsetType

from .. import events as ev
from ..errors import DecodeError
from ..events import ErrorDetails, Event, EventBase, KnownEvent, UnknownEvent
from .upcasting import ANY_TYPE, UpcastContext, UpcasterRegistry, Upgrade

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "Codec",
    "Decoded",
    "Generation",
    "RowDecodeError",
    "UNRECORDED_TYPE",
    "reconcile_row",
    "decode",
    "detect_version",
    "encode",
    "error_details_from_wire",
    "error_details_to_wire",
]

DEFAULT_MAX_EVENT_BYTES: Final = 16 * 1024 * 1024
"""Largest serialized event accepted on read or append (configurable per Codec)."""


UNRECORDED_TYPE: Final = "Event"
"""What duroxide's PostgreSQL provider writes in every row's event_type column:
the type is not recorded there, so the column cannot disagree with the event."""


def reconcile_row(
    event: Event, event_id: int, event_type: str, instance_id: str, execution_id: int
) -> str | None:
    """Match a freshly decoded event with the columns of the row it was read from.

    An identity the JSON left out (instance "" or execution 0, as V1 rows of
    some writers may) is taken from the row, as for V0 rows; the event must be
    one the decoder just created, since it is completed in place. Returns why
    the columns disagree with the event, or None when they agree.
    """
    if event.instance_id == "":
        _force_setattr(event, "instance_id", instance_id)
    if event.execution_id == 0:
        _force_setattr(event, "execution_id", execution_id)
    if (
        event.event_id == event_id
        and (event.event_type == event_type or event_type == UNRECORDED_TYPE)
        and event.instance_id == instance_id
        and event.execution_id == execution_id
    ):
        return None
    return (
        "the row's columns disagree with its event "
        f"(columns: {event_type} {event_id}; event: {event.event_type} "
        f"{event.event_id} of {event.instance_id!r} execution {event.execution_id})"
    )


def _reconcile(
    index: int, event: Event, event_id: int, event_type: str, instance_id: str, execution_id: int
) -> None:
    problem = reconcile_row(event, event_id, event_type, instance_id, execution_id)
    if problem is not None:
        raise RowDecodeError(index, problem, mismatch=True)


class RowDecodeError(DecodeError):
    """A stored row that does not decode, or disagrees with its columns."""

    def __init__(self, index: int, message: str, *, mismatch: bool = False) -> None:
        self.index = index
        self.mismatch = mismatch
        """True when the row decoded but its columns disagree with the event."""
        super().__init__(message)


class Generation(enum.StrEnum):
    V1 = "V1"
    V0 = "V0"  # legacy, carrying no failure field: could be V0a or V0b
    V0A = "V0a"  # legacy failure carrying an `error` string
    V0B = "V0b"  # legacy failure carrying structured `details`


# --------------------------------------------------------------------------
# ErrorDetails <-> wire (external tagging, done by hand; see events.py)
# --------------------------------------------------------------------------


class _ApplicationWire(Struct):
    kind: Any
    message: str
    retryable: bool


class _InfrastructureWire(Struct):
    operation: str
    message: str
    retryable: bool


class _ConfigurationWire(Struct):
    kind: Any
    resource: str
    message: str | None = None


class _PoisonWire(Struct):
    attempt_count: ev.U64
    max_attempts: ev.U64
    message_type: Any
    message: str


def _single_key(value: Any, what: str) -> tuple[str, Any]:
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError(f"{what} must be an object with exactly one variant key")
    ((name, inner),) = value.items()
    return name, inner


def _application_kind(value: Any) -> ev.ApplicationKind:
    if isinstance(value, str):
        return value
    name, inner = _single_key(value, "Application.kind")
    if name == "Cancelled":
        return msgspec.convert(inner, ev.Cancelled)
    return ev.UnknownVariant(name, inner)


def _configuration_kind(value: Any) -> ev.ConfigurationKind:
    if isinstance(value, str):
        return value
    name, inner = _single_key(value, "Configuration.kind")
    if name == "MissingVersion":
        return msgspec.convert(inner, ev.MissingVersion)
    return ev.UnknownVariant(name, inner)


_POISON_TYPES: Final[dict[str, type[Struct]]] = {
    "Orchestration": ev.OrchestrationMessage,
    "Activity": ev.ActivityMessage,
    "FailedDeserialization": ev.FailedDeserializationMessage,
}


def _poison_message_type(value: Any) -> ev.PoisonMessageType:
    name, inner = _single_key(value, "Poison.message_type")
    cls = _POISON_TYPES.get(name)
    if cls is None:
        return ev.UnknownVariant(name, inner)
    return msgspec.convert(inner, cls)  # type: ignore[return-value]


def error_details_from_wire(value: Any) -> ErrorDetails:
    """Build ErrorDetails from its decoded JSON; unknown variants are kept verbatim."""
    name, inner = _single_key(value, "ErrorDetails")
    if name == "Application":
        app = msgspec.convert(inner, _ApplicationWire)
        return ev.ApplicationError(
            kind=_application_kind(app.kind), message=app.message, retryable=app.retryable
        )
    if name == "Infrastructure":
        infra = msgspec.convert(inner, _InfrastructureWire)
        return ev.InfrastructureError(
            operation=infra.operation, message=infra.message, retryable=infra.retryable
        )
    if name == "Configuration":
        conf = msgspec.convert(inner, _ConfigurationWire)
        return ev.ConfigurationError(
            kind=_configuration_kind(conf.kind), resource=conf.resource, message=conf.message
        )
    if name == "Poison":
        poison = msgspec.convert(inner, _PoisonWire)
        return ev.PoisonError(
            attempt_count=poison.attempt_count,
            max_attempts=poison.max_attempts,
            message_type=_poison_message_type(poison.message_type),
            message=poison.message,
        )
    return ev.UnknownErrorDetails(name=name, value=inner)


def _variant_to_wire(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, ev.UnknownVariant):
        return {value.name: value.value}
    if isinstance(value, ev.Cancelled):
        return {"Cancelled": {"reason": value.reason}}
    if isinstance(value, ev.MissingVersion):
        return {"MissingVersion": {"requested_version": value.requested_version}}
    for name, cls in _POISON_TYPES.items():
        if type(value) is cls:
            return {name: msgspec.structs.asdict(value)}
    raise TypeError(f"not an ErrorDetails kind: {value!r}")


def error_details_to_wire(details: ErrorDetails) -> dict[str, Any]:
    """The externally tagged JSON object duroxide writes for these details."""
    if isinstance(details, ev.ApplicationError):
        body: Any = {
            "kind": _variant_to_wire(details.kind),
            "message": details.message,
            "retryable": details.retryable,
        }
    elif isinstance(details, ev.InfrastructureError):
        body = {
            "operation": details.operation,
            "message": details.message,
            "retryable": details.retryable,
        }
    elif isinstance(details, ev.ConfigurationError):
        body = {
            "kind": _variant_to_wire(details.kind),
            "resource": details.resource,
            "message": details.message,
        }
    elif isinstance(details, ev.PoisonError):
        body = {
            "attempt_count": details.attempt_count,
            "max_attempts": details.max_attempts,
            "message_type": _variant_to_wire(details.message_type),
            "message": details.message,
        }
    elif isinstance(details, ev.UnknownErrorDetails):
        return {details.name: details.value}
    else:
        raise TypeError(f"not ErrorDetails: {details!r}")
    return {details.variant: body}


def _dec_hook(tp: type, obj: Any) -> Any:
    if tp is ErrorDetails:
        return error_details_from_wire(obj)
    raise NotImplementedError(f"cannot decode {tp!r}")


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, ErrorDetails):
        return error_details_to_wire(obj)
    raise NotImplementedError(f"cannot encode {type(obj).__name__}: {obj!r}")


# --------------------------------------------------------------------------
# The legacy (V0) generation: typed snapshots and the built-in upcasters
# --------------------------------------------------------------------------

_FAILURE_TYPES: Final[
    dict[str, type[ev.ActivityFailed | ev.OrchestrationFailed | ev.SubOrchestrationFailed]]
] = {
    "ActivityFailed": ev.ActivityFailed,
    "OrchestrationFailed": ev.OrchestrationFailed,
    "SubOrchestrationFailed": ev.SubOrchestrationFailed,
}

# The ErrorDetails kind a V0a `error` string is given, by event type. A child
# orchestration's failure is an orchestration failure.
_V0A_ERROR_KIND: Final[dict[str, str]] = {
    "ActivityFailed": "ActivityFailed",
    "OrchestrationFailed": "OrchestrationFailed",
    "SubOrchestrationFailed": "OrchestrationFailed",
}


class LegacyFailure(Struct, frozen=True, gc=False):
    """Snapshot of a V0 failure event: V0a carries `error`, V0b `details`."""

    event_id: ev.U64
    source_event_id: ev.U64 | None = None
    execution_id: ev.U64 | UnsetType = UNSET
    error: str | UnsetType = UNSET
    details: ErrorDetails | UnsetType = UNSET


# Every other V0 type's fields are a subset of its V1 type's (minus the `type`
# tag), so its V1 class is its snapshot: the body decodes straight into it.
# Every known type reads in the legacy shape: duroxide's V0 had seventeen of
# them (format reference, section 3), but a legacy-shaped row of a type that
# only V1 named (a transitional writer's) decodes the same way rather than as
# an unknown event.
_V0_TYPES: Final[frozenset[str]] = frozenset(ev.EVENT_TYPES)


def _v0_snapshot_type(event_type: str) -> type[Struct]:
    return LegacyFailure if event_type in _FAILURE_TYPES else ev.EVENT_TYPES[event_type]


def _v0a_to_v0b(value: LegacyFailure, context: UpcastContext) -> LegacyFailure:
    if isinstance(value.error, str):
        details = ev.ApplicationError(
            kind=_V0A_ERROR_KIND[context.event_type], message=value.error, retryable=False
        )
        return msgspec.structs.replace(value, error=UNSET, details=details)
    return value


def _unchanged(value: Any, context: UpcastContext) -> Any:
    return value


_force_setattr: Final = msgspec.structs.force_setattr


def _fill_context(value: Any, context: UpcastContext) -> Any:
    """V0b -> V1 for every type but failures: the row names instance and execution.

    V0 rows carry no instance, and the row's execution wins over a body's own
    copy (only some V0 types had one). The snapshot was created by the decoder
    a moment ago and nothing else holds it, so it is filled in place: a copy
    per event would cost a third of the legacy decode.
    """
    return _fill_identity(value, context.instance_id, context.execution_id)


def _fill_identity(value: Any, instance_id: str | None, execution_id: int | None) -> Any:
    """`_fill_context`'s work; `Codec.decode` calls it directly for the
    registered built-in step, without a context object per event."""
    _force_setattr(value, "instance_id", instance_id or "")
    if execution_id is not None:
        _force_setattr(value, "execution_id", execution_id)
    return value


def _failure_to_v1(value: LegacyFailure, context: UpcastContext) -> EventBase:
    if not isinstance(value.details, ErrorDetails):
        raise ValueError("legacy failure carries neither `error` nor `details`")
    execution_id = context.execution_id
    if execution_id is None:
        execution_id = value.execution_id if isinstance(value.execution_id, int) else 0
    return _FAILURE_TYPES[context.event_type](
        event_id=value.event_id,
        source_event_id=value.source_event_id,
        instance_id=context.instance_id or "",
        execution_id=execution_id,
        details=value.details,
    )


def builtin_registry() -> UpcasterRegistry:
    """A registry holding the built-in legacy chain V0a -> V0b -> V1."""
    registry = UpcasterRegistry()
    registry.register(ANY_TYPE, Generation.V0A, Generation.V0B, typed=True)(_unchanged)
    for event_type in _FAILURE_TYPES:
        registry.register(
            event_type, Generation.V0A, Generation.V0B, typed=True, source_type=LegacyFailure
        )(_v0a_to_v0b)
    registry.register(ANY_TYPE, Generation.V0B, Generation.V1, typed=True)(_fill_context)
    for event_type in _FAILURE_TYPES:
        registry.register(
            event_type, Generation.V0B, Generation.V1, typed=True, source_type=LegacyFailure
        )(_failure_to_v1)
    return registry


# --------------------------------------------------------------------------
# The codec
# --------------------------------------------------------------------------


class Decoded(Struct, frozen=True, gc=False):
    """An event with the generation it was stored in and the versions it passed."""

    event: Event
    generation: Generation
    migrated_from: tuple[str, ...] = ()
    """Provenance: the versions the event was upcast from, oldest first, each
    the source of one registered step (`UpcasterRegistry.path`). A V0a failure
    gives ("V0a", "V0b") (V0a -> V0b -> V1); any other legacy event ("V0b",),
    since without a failure field V0a and V0b read the same; () when the data
    was already V1 (or is an UnknownEvent, which is kept, not upcast)."""


class _UnknownCommon(Struct):
    """The common fields of an event of unknown type, validated."""

    event_id: ev.U64
    source_event_id: ev.U64 | None = None
    instance_id: str = ""
    execution_id: ev.U64 = 0
    timestamp_ms: ev.U64 = 0
    duroxide_version: str = ""


# What the msgspec decoders may raise on hostile input: besides their own
# errors, invalid UTF-8 and nesting deeper than the interpreter's recursion
# limit. All of it becomes DecodeError.
_DECODE_ERRORS: Final = (
    msgspec.ValidationError,
    msgspec.DecodeError,
    RecursionError,
    UnicodeDecodeError,
)

_ENCODER: Final = msgspec.json.Encoder(enc_hook=_enc_hook)
_V1_DECODER: Final[msgspec.json.Decoder[KnownEvent]] = msgspec.json.Decoder(
    KnownEvent, dec_hook=_dec_hook
)
_ANY_DECODER: Final = msgspec.json.Decoder()


class _LegacyPlan(Struct, frozen=True, gc=False):
    """How to read one legacy type: its envelope decoder and upcast to V1."""

    type_name: str
    decoder: msgspec.json.Decoder[Any]
    upgrade: Upgrade
    versions: tuple[str, ...]
    is_failure: bool


def _envelope(type_name: str) -> msgspec.json.Decoder[Any]:
    # {"TypeName": {...}} decodes into a one-field Struct; forbidding unknown
    # fields makes a second variant key an error for free.
    envelope = msgspec.defstruct(
        f"V0{type_name}",
        [(type_name, _v0_snapshot_type(type_name))],
        forbid_unknown_fields=True,
        gc=False,
    )
    return msgspec.json.Decoder(envelope, dec_hook=_dec_hook)


_ENVELOPES: Final[dict[str, msgspec.json.Decoder[Any]]] = {
    name: _envelope(name) for name in _V0_TYPES
}


class Codec:
    """Decoding and encoding, with a migration registry and a size limit.

    The module-level `decode`, `encode` and `detect_version` use a default
    Codec; a store or an embedding runtime may build its own.
    """

    def __init__(
        self,
        *,
        registry: UpcasterRegistry | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self.registry = registry if registry is not None else builtin_registry()
        self.max_event_bytes = max_event_bytes
        self._plans: dict[str | bytes, _LegacyPlan] = {}
        self.registry.on_change(self._plans.clear)

    # -- decoding ----------------------------------------------------------
    #
    # The hot path is `decode`: one length check, a one-byte look at the first
    # key (V1 keys are snake_case, legacy variant keys CamelCase), then either
    # one typed msgspec decode (V1) or an envelope decode plus the compiled
    # upcaster of that legacy type. Everything unusual (odd whitespace, unknown
    # types, invalid data) falls through to `_slow`, which explains or keeps it.

    def decode(
        self,
        data: bytes | str,
        *,
        instance_id: str | None = None,
        execution_id: int | None = None,
    ) -> Event:
        """Decode an event of any generation (see the module docstring)."""
        if len(data) > self.max_event_bytes:
            raise self._too_large(data)
        if not data[2:3].isupper():
            try:
                return _V1_DECODER.decode(data)
            except _DECODE_ERRORS as exc:
                return self._slow(data, exc, instance_id, execution_id).event
        # Legacy, inlined for the common case (a plan exists and the type is not
        # a failure); everything else takes the full path, which also explains.
        if isinstance(data, bytes):
            plan = self._plans.get(data[2 : data.find(b'"', 2)])
        else:
            plan = self._plans.get(data[2 : data.find('"', 2)])
        if plan is not None and not plan.is_failure:
            try:
                snapshot = getattr(plan.decoder.decode(data), plan.type_name)
                if plan.upgrade is _fill_context:  # the built-in step, without a context
                    return _fill_identity(snapshot, instance_id, execution_id)  # type: ignore[no-any-return]
                return plan.upgrade(  # type: ignore[no-any-return]
                    snapshot, UpcastContext(plan.type_name, instance_id, execution_id)
                )
            except (*_DECODE_ERRORS, ValueError, TypeError):
                pass
        return self._decode_legacy(data, instance_id, execution_id, False)  # type: ignore[return-value]

    def decode_rows(
        self,
        rows: Iterable[tuple[int, str, bytes | str]],
        instance_id: str,
        execution_id: int,
    ) -> list[Event]:
        """Decode the stored rows (event_id, event_type, data) of one execution.

        Equivalent to `decode` per row plus a check that each row's columns
        agree with its event, done in one call with the V1 dispatch inline: the
        read path of a store. Raises RowDecodeError naming the row's index.
        """
        v1 = _V1_DECODER.decode
        limit = self.max_event_bytes
        events: list[Event] = []
        append = events.append
        for index, (event_id, event_type, data) in enumerate(rows):
            event: Event | None = None
            failed: Exception | None = None
            if len(data) <= limit and not data[2:3].isupper():
                try:
                    event = v1(data)
                except _DECODE_ERRORS as exc:
                    failed = exc
            if event is None:
                try:
                    if failed is None:  # legacy, or too large: the full dispatch
                        event = self.decode(
                            data, instance_id=instance_id, execution_id=execution_id
                        )
                    else:  # not V1 after all: explain, or keep as unknown
                        event = self._slow(data, failed, instance_id, execution_id).event
                except DecodeError as exc:
                    raise RowDecodeError(index, exc.message) from None
            if (  # inline for speed; _reconcile completes or explains
                event.event_id != event_id
                or event.event_type != event_type
                or event.instance_id != instance_id
                or event.execution_id != execution_id
            ):
                _reconcile(index, event, event_id, event_type, instance_id, execution_id)
            append(event)
        return events

    def decode_packed(
        self,
        event_ids: list[int],
        event_types: list[str],
        event_data: bytes,
        instance_id: str,
        execution_id: int,
    ) -> list[Event] | None:
        """Decode an execution fetched in one piece (`backend.PackedExecution`).

        The same result as `decode_rows` over its rows: when every line is a
        V1 event, one `decode_lines` call does the whole execution and each
        event is checked against its row's columns; otherwise the lines go
        through `decode_rows`, which upcasts legacy rows and names a bad one
        (RowDecodeError's index is the row's place in `event_ids`). None when
        the data cannot be split into exactly one line per row (a row holding a
        newline): read row by row.
        """
        count = len(event_ids)
        if count == 0:
            return []
        if len(event_types) != count or event_data.count(b"\n") != count - 1:
            return None
        # One decode_lines for the whole execution when it may be all V1: no
        # row exceeds the size limit if the whole does not, and an execution
        # that starts with a legacy row goes to decode_rows at once.
        if len(event_data) <= self.max_event_bytes and not event_data[2:3].isupper():
            try:
                events: list[KnownEvent] = _V1_DECODER.decode_lines(event_data)
            except _DECODE_ERRORS:
                events = []
            if len(events) == count:
                for event, event_id, event_type in zip(events, event_ids, event_types, strict=True):
                    if (  # inline for speed
                        event.event_id != event_id
                        or event.event_type != event_type
                        or event.instance_id != instance_id
                        or event.execution_id != execution_id
                    ):
                        # Completed in place when the difference is allowed.
                        problem = reconcile_row(
                            event, event_id, event_type, instance_id, execution_id
                        )
                        if problem is not None:
                            index = next(i for i, e in enumerate(events) if e is event)
                            raise RowDecodeError(index, problem, mismatch=True)
                return cast("list[Event]", events)
        rows = zip(event_ids, event_types, event_data.split(b"\n"), strict=True)
        return self.decode_rows(rows, instance_id, execution_id)

    def decode_detailed(
        self,
        data: bytes | str,
        *,
        instance_id: str | None = None,
        execution_id: int | None = None,
    ) -> Decoded:
        """Like decode, and also say which generation the data was and what it passed."""
        if len(data) > self.max_event_bytes:
            raise self._too_large(data)
        if data[2:3].isupper():
            return self._decode_legacy(data, instance_id, execution_id, True)  # type: ignore[return-value]
        try:
            return Decoded(_V1_DECODER.decode(data), Generation.V1)
        except _DECODE_ERRORS as exc:
            return self._slow(data, exc, instance_id, execution_id)

    def detect_version(self, data: bytes | str) -> Generation:
        """The generation of serialized event data (raises DecodeError if it is none)."""
        return self.decode_detailed(data).generation

    def _too_large(self, data: bytes | str) -> DecodeError:
        return DecodeError(
            f"event of {len(data)} bytes exceeds the limit of {self.max_event_bytes}"
        )

    def _plan(self, type_name: str | bytes) -> _LegacyPlan | None:
        name = type_name.decode("utf-8", "replace") if isinstance(type_name, bytes) else type_name
        decoder = _ENVELOPES.get(name)
        if decoder is None:
            return None
        # A legacy event without a failure field reads the same in V0a and
        # V0b, so plans start at V0b; V0a failures add their extra hop.
        upgrade, versions = self.registry.compiled(name, Generation.V0B, Generation.V1)
        plan = _LegacyPlan(name, decoder, upgrade, versions, name in _FAILURE_TYPES)
        # Both spellings of the key, so bytes and str input share the plan.
        self._plans[name] = self._plans[name.encode()] = plan
        return plan

    def _decode_legacy(
        self,
        data: bytes | str,
        instance_id: str | None,
        execution_id: int | None,
        detailed: bool,
    ) -> Decoded | Event:
        type_key: bytes | str = (
            data[2 : data.find(b'"', 2)] if isinstance(data, bytes) else data[2 : data.find('"', 2)]
        )
        plan = self._plans.get(type_key) or self._plan(type_key)
        if plan is None:
            found = self._slow(data, None, instance_id, execution_id)
            return found if detailed else found.event
        type_name = plan.type_name
        try:
            snapshot = getattr(plan.decoder.decode(data), type_name)
        except _DECODE_ERRORS as exc:
            raise DecodeError(f"invalid legacy {type_name} event: {exc}") from None
        generation = Generation.V0
        upgrade, versions = plan.upgrade, plan.versions
        if type(snapshot) is LegacyFailure:
            if isinstance(snapshot.error, str):
                generation = Generation.V0A
                upgrade, versions = self.registry.compiled(type_name, Generation.V0A, Generation.V1)
            elif isinstance(snapshot.details, ErrorDetails):
                generation = Generation.V0B
            else:
                raise DecodeError(f"legacy {type_name} carries neither `error` nor `details`")
        try:
            event = upgrade(snapshot, UpcastContext(type_name, instance_id, execution_id))
        except (ValueError, TypeError, msgspec.ValidationError) as exc:
            raise DecodeError(f"cannot upcast legacy {type_name} event: {exc}") from None
        return Decoded(event, generation, versions) if detailed else event

    def _slow(
        self,
        data: bytes | str,
        error: Exception | None,
        instance_id: str | None,
        execution_id: int | None,
    ) -> Decoded:
        """Explain why data is not a known event, or keep it as an UnknownEvent."""
        try:
            obj = _ANY_DECODER.decode(data)
        except RecursionError:
            raise DecodeError("nested too deeply to decode") from None
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise DecodeError(f"not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise DecodeError(f"expected a JSON object, got {type(obj).__name__}")
        type_name = obj.get("type")
        if type_name is not None:
            if not isinstance(type_name, str):
                raise DecodeError("`type` must be a string")
            if type_name in ev.EVENT_TYPES:
                if error is None:  # sent here by the sniff (an upper-case first key)
                    try:
                        return Decoded(_V1_DECODER.decode(data), Generation.V1)
                    except _DECODE_ERRORS as exc:
                        error = exc
                raise DecodeError(f"invalid {type_name} event: {error}")
            generation = Generation.V1
            fields = obj
        elif len(obj) == 1:
            ((type_name, fields),) = obj.items()
            if type_name in _ENVELOPES and error is not None:
                # A legacy event the one-byte sniff missed (leading whitespace).
                compact = _ENCODER.encode(obj)
                found = self._decode_legacy(compact, instance_id, execution_id, True)
                assert isinstance(found, Decoded)
                return found
            if not (type_name[:1].isupper() and isinstance(fields, dict)):
                raise DecodeError(
                    f"not an event: no `type` field, and `{type_name}` is not a legacy variant"
                )
            generation = Generation.V0
        else:
            raise DecodeError(
                f"not an event: no `type` field and {len(obj)} keys"
                + (f" ({error})" if error else "")
            )
        try:
            common = msgspec.convert(fields, _UnknownCommon)
        except msgspec.ValidationError as exc:
            raise DecodeError(f"event of unknown type {type_name!r}: {exc}") from None
        raw = data.encode() if isinstance(data, str) else bytes(data)
        event = UnknownEvent(
            event_id=common.event_id,
            source_event_id=common.source_event_id,
            instance_id=common.instance_id or instance_id or "",
            execution_id=common.execution_id or execution_id or 0,
            timestamp_ms=common.timestamp_ms,
            duroxide_version=common.duroxide_version,
            type_name=type_name,
            raw=raw,
        )
        return Decoded(event, generation)

    # -- encoding ----------------------------------------------------------

    def encode(self, event: Event) -> bytes:
        """Serialize as duroxide's V1 JSON (an UnknownEvent returns its original bytes)."""
        if type(event) is UnknownEvent:
            return event.raw
        return _ENCODER.encode(event)

    def encode_many(self, events: list[Event], *, all_known: bool = False) -> list[bytes]:
        """Encode a batch; `all_known` says the caller checked that no event is
        an UnknownEvent (the append path knows it for free)."""
        encode: Callable[[Any], bytes] = _ENCODER.encode
        if all_known:
            return list(map(encode, events))
        return [e.raw if type(e) is UnknownEvent else encode(e) for e in events]

    def validate_encoded(
        self, events: list[Event], encoded: list[bytes], *, all_known: bool = False
    ) -> None:
        """Check that the serialized batch reads back as exactly the given events.

        msgspec does not check constructor arguments: an event built with a
        wrong type either encodes to JSON the decoder refuses (event_id="2")
        or is silently converted on the way (bytes become base64 text). One
        typed decode of the whole batch and one comparison with what was given
        catch both, so no row is stored that would not read back as written.
        Raises DecodeError naming the event's place in the batch and the field.

        `all_known` (no UnknownEvent, no subclass of a known type) allows the
        fast route: the decode and the comparison of the whole batch in C,
        with the per-event walk below only to explain a failure.
        """
        if all_known:
            # One JSON document per line: msgspec escapes control characters
            # in strings, so each event is exactly one line. No event is
            # larger than the whole batch: one length check for all.
            joined = b"\n".join(encoded)
            if len(joined) <= self.max_event_bytes:
                try:
                    if _V1_DECODER.decode_lines(joined) == events:
                        return
                except _DECODE_ERRORS:
                    pass
        # The slow route, one event at a time: only to say which one and why.
        for index, (event, data) in enumerate(zip(events, encoded, strict=True)):
            if len(data) > self.max_event_bytes:
                raise DecodeError(
                    f"event #{index} of {len(data)} bytes exceeds the limit of "
                    f"{self.max_event_bytes}"
                )
            try:
                read_back = (
                    self.decode(data) if type(event) is UnknownEvent else _V1_DECODER.decode(data)
                )
            except _DECODE_ERRORS as exc:
                raise DecodeError(f"event #{index}: {exc}") from None
            except DecodeError as exc:
                raise DecodeError(f"event #{index}: {exc.message}") from None
            if type(event) is not UnknownEvent and read_back != event:
                field = next(
                    (
                        name
                        for name in event.__struct_fields__
                        if getattr(event, name) != getattr(read_back, name)
                    ),
                    "?",
                )
                raise DecodeError(
                    f"event #{index} (id {event.event_id}): field `{field}` holds a "
                    f"{type(getattr(event, field, None)).__name__}, which does not"
                    " store as its declared type"
                )


DEFAULT_CODEC: Final = Codec()


def decode(
    data: bytes | str, *, instance_id: str | None = None, execution_id: int | None = None
) -> Event:
    """Decode an event of any generation, without a hint.

    V0 events take `instance_id` and `execution_id` from the keyword arguments
    (a store passes the row's values). Raises DecodeError for anything that is
    not an event; an event of unknown type becomes an UnknownEvent.
    """
    return DEFAULT_CODEC.decode(data, instance_id=instance_id, execution_id=execution_id)


def encode(event: Event) -> bytes:
    """Serialize an event as duroxide writes V1."""
    return DEFAULT_CODEC.encode(event)


def detect_version(data: bytes | str) -> Generation:
    """Name the generation of serialized event data: V1, V0a, V0b or V0."""
    return DEFAULT_CODEC.detect_version(data)
