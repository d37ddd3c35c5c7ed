"""The legacy (V0) generation: typed snapshots and the built-in upcasters."""

from __future__ import annotations

from typing import Any, Final

import msgspec
from msgspec import UNSET, Struct, UnsetType

from .. import events as ev
from ..events import ErrorDetails, EventBase
from .generation import Generation
from .upcasting import ANY_TYPE, UpcastContext, UpcasterRegistry

FailureEvent = ev.ActivityFailed | ev.OrchestrationFailed | ev.SubOrchestrationFailed
"""The V1 failure events, each made from a legacy failure by `v1_failure`."""

_FAILURE_TYPES: Final[dict[str, type[FailureEvent]]] = {
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


def v1_failure(
    kind: type[FailureEvent], value: LegacyFailure, instance_id: str, execution_id: int
) -> FailureEvent | None:
    """The V0b -> V1 failure step: a V0b failure (structured details) as the
    V1 event `kind`; None when it carries no details. The row route's plan
    calls it too (legacy_rows.py)."""
    if not isinstance(value.details, ErrorDetails):
        return None
    return kind(
        event_id=value.event_id,
        source_event_id=value.source_event_id,
        instance_id=instance_id,
        execution_id=execution_id,
        details=value.details,
    )


def _failure_to_v1(value: LegacyFailure, context: UpcastContext) -> EventBase:
    execution_id = context.execution_id
    if execution_id is None:
        execution_id = value.execution_id if isinstance(value.execution_id, int) else 0
    kind = _FAILURE_TYPES[context.event_type]
    event = v1_failure(kind, value, context.instance_id or "", execution_id)
    if event is None:
        raise ValueError("legacy failure carries neither `error` nor `details`")
    return event


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
