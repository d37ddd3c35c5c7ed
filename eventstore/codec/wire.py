"""ErrorDetails <-> wire: external tagging, done by hand (see events.py), and the
msgspec hooks that apply it on decode and encode."""

from __future__ import annotations

from typing import Any, Final

import msgspec
from msgspec import Struct

from .. import events as ev
from ..events import ErrorDetails


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
