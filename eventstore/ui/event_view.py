"""One event as the viewer lists it: its fields, payloads as formatted JSON, metadata, links.

Everything here is data for the page (JSON); the page puts it in the document
as text, never as markup, so a payload holding HTML shows as the characters it
is (see static/viewer.js).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from .. import events as ev
from ..codec import encode
from ..error_details import failure_summary

__all__ = ["FAILURE_TYPES", "event_view"]

_COMMON: Final = frozenset(
    {"event_id", "source_event_id", "instance_id", "execution_id", "timestamp_ms", "type"}
)

PAYLOAD_FIELDS: Final = frozenset({"input", "output", "result", "data", "value", "status"})
"""Fields that carry a JSON document as a string (duroxide's payloads)."""

_METADATA: Final = (
    ("duroxide_version", "duroxide"),
    ("runtime_version", "runtime"),
    ("worker_id", "worker"),
    ("scheduled_by_worker_id", "worker"),
    ("completed_by_worker_id", "worker"),
    ("retry_count", "retry"),
    ("timeout_ms", "timeout ms"),
    ("trace_id", "trace"),
    ("correlation_id", "correlation"),
    ("session_id", "session"),
    ("tag", "tag"),
)
"""Fields shown as small labelled chips rather than as fields: (field, label)."""

FAILURE_TYPES: Final = frozenset(
    {"ActivityFailed", "OrchestrationFailed", "SubOrchestrationFailed"}
)

LARGE_CHARS: Final = 600
LARGE_LINES: Final = 16
"""A field longer than this (characters or lines) starts collapsed."""


def _pretty(value: object) -> tuple[str, bool]:
    """(text, is_json): a payload string parsed and indented when it is JSON."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value, False
        if isinstance(parsed, dict | list):
            return json.dumps(parsed, indent=2, ensure_ascii=False), True
        return value, True
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2, ensure_ascii=False), True
    return "null" if value is None else str(value), False


def _utc(ms: int) -> str:
    try:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):  # past year 9999: the number alone
        return "beyond the calendar"
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _field(name: str, value: object) -> dict[str, Any]:
    if name in PAYLOAD_FIELDS or isinstance(value, dict | list):
        text, is_json = _pretty(value)
    elif name.endswith("_ms") and isinstance(value, int) and value > 0:
        text, is_json = f"{value} ({_utc(value)} UTC)", False
    else:
        text, is_json = ("null" if value is None else str(value)), False
    large = len(text) > LARGE_CHARS or text.count("\n") >= LARGE_LINES
    return {"name": name, "text": text, "json": is_json, "large": large}


def _title(event: ev.Event) -> str:
    details = getattr(event, "details", None)
    if details is not None and event.event_type in FAILURE_TYPES:
        return failure_summary(details)
    if isinstance(event, ev.SubOrchestrationScheduled | ev.OrchestrationChained):
        return f"{event.name} as {event.instance}"
    if isinstance(event, ev.OrchestrationStarted):
        return f"{event.name} {event.version}".strip()
    if isinstance(event, ev.KeyValueSet | ev.KeyValueCleared):
        return event.key
    if isinstance(event, ev.UnknownEvent):
        return "unknown type, kept verbatim"
    for attribute in ("name", "reason", "op"):
        value = getattr(event, attribute, None)
        if isinstance(value, str):
            return value
    return ""


def _links(event: ev.Event, next_execution: int | None) -> list[dict[str, Any]]:
    if isinstance(event, ev.OrchestrationStarted) and event.parent_instance:
        parent_execution = event.parent_execution_id
        return [
            {
                "label": "parent",
                "instance": event.parent_instance,
                "execution": None if parent_execution is msgspec.UNSET else parent_execution,
            }
        ]
    if isinstance(event, ev.SubOrchestrationScheduled):
        return [{"label": "child", "instance": event.instance, "execution": 1}]
    if isinstance(event, ev.OrchestrationChained):
        return [{"label": "started", "instance": event.instance, "execution": None}]
    if isinstance(event, ev.OrchestrationContinuedAsNew) and next_execution is not None:
        instance = event.instance_id
        return [{"label": "next execution", "instance": instance, "execution": next_execution}]
    return []


def event_view(event: ev.Event, start_ms: int | None, next_execution: int | None) -> dict[str, Any]:
    """The event as the page lists it. `start_ms` is the execution's first timestamp."""
    document = msgspec.json.decode(encode(event))
    if not isinstance(document, dict):  # an UnknownEvent whose raw JSON is no object
        document = {"raw": document}
    fields, metadata = [], []
    labels = dict(_METADATA)
    for name, value in document.items():
        if name in _COMMON:
            continue
        if name in labels:
            if value not in ("", None):
                metadata.append({"name": labels[name], "value": str(value)})
        elif value is not None or name in PAYLOAD_FIELDS:
            fields.append(_field(name, value))
    timed = event.has_timestamp
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "timestamp_ms": event.timestamp_ms if timed else None,
        "offset_ms": event.timestamp_ms - start_ms if timed and start_ms is not None else None,
        "source_event_id": event.source_event_id,
        "failed": event.event_type in FAILURE_TYPES,
        "title": _title(event),
        "fields": fields,
        "metadata": metadata,
        "links": _links(event, next_execution),
    }
