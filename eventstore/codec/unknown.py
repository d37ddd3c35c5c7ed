"""Data that is not a known event: parsed as any JSON to say why, or kept as an
UnknownEvent (a type this version does not know, stored verbatim)."""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import DecodeError
from ..events import UnknownEvent
from .decoders import _ANY_DECODER, Decoded, _UnknownCommon
from .generation import Generation


def _json_object(data: bytes | str) -> dict[str, Any]:
    """Parse data as any JSON, or say why it is not a JSON object."""
    try:
        obj = _ANY_DECODER.decode(data)
    except RecursionError:
        raise DecodeError("nested too deeply to decode") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise DecodeError(f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise DecodeError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _unknown(
    data: bytes | str,
    type_name: str,
    fields: Any,
    generation: Generation,
    instance_id: str | None,
    execution_id: int | None,
) -> Decoded:
    """Keep an event of a type this code does not know, verbatim."""
    try:
        common = msgspec.convert(fields, _UnknownCommon)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"event of unknown type {type_name!r}: {exc}") from None
    event = UnknownEvent(
        event_id=common.event_id,
        source_event_id=common.source_event_id,
        instance_id=common.instance_id or instance_id or "",
        execution_id=common.execution_id or execution_id or 0,
        timestamp_ms=common.timestamp_ms,
        duroxide_version=common.duroxide_version,
        type_name=type_name,
        raw=data.encode() if isinstance(data, str) else bytes(data),
    )
    return Decoded(event, generation)
