"""Spans -> the OTLP JSON mapping of `ExportTraceServiceRequest`.

As OpenTelemetry's protocol specification maps protobuf to JSON: ids as hex
strings, 64-bit integers (times, int attributes) as decimal strings, enums as
integers, field names in lowerCamelCase, default values left out. The same
fields an OTLP/HTTP exporter sends (`flags` included: the SDK's encoder sets
"has is_remote" on every span and link), so a file line and a POST of the
same spans decode to the same request.

Rendering is deterministic (fixed field order, compact separators): two
exports of one store agree byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from .spans import STATUS_UNSET, AttributeValue, Link, Span

__all__ = ["SPAN_FLAGS", "SPAN_KIND_INTERNAL", "encode_request", "request_json"]

SPAN_KIND_INTERNAL: Final = 1
SPAN_FLAGS: Final = 0x100
"""SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK: the parent (or link) is known to be local."""


def _value(value: AttributeValue) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    return {"stringValue": value}


def _attributes(attributes: Sequence[tuple[str, AttributeValue]]) -> list[dict[str, Any]]:
    return [{"key": key, "value": _value(value)} for key, value in attributes]


def _link(link: Link) -> dict[str, Any]:
    encoded: dict[str, Any] = {"traceId": link.trace_id.hex(), "spanId": link.span_id.hex()}
    if link.attributes:
        encoded["attributes"] = _attributes(link.attributes)
    encoded["flags"] = SPAN_FLAGS
    return encoded


def _span(span: Span) -> dict[str, Any]:
    encoded: dict[str, Any] = {"traceId": span.trace_id.hex(), "spanId": span.span_id.hex()}
    if span.parent_span_id is not None:
        encoded["parentSpanId"] = span.parent_span_id.hex()
    encoded["flags"] = SPAN_FLAGS
    encoded["name"] = span.name
    encoded["kind"] = SPAN_KIND_INTERNAL
    encoded["startTimeUnixNano"] = str(span.start_ns)
    encoded["endTimeUnixNano"] = str(span.end_ns)
    if span.attributes:
        encoded["attributes"] = _attributes(span.attributes)
    if span.links:
        encoded["links"] = [_link(link) for link in span.links]
    status: dict[str, Any] = {}
    if span.status != STATUS_UNSET:
        status["code"] = span.status
    if span.status_message:
        status["message"] = span.status_message
    encoded["status"] = status
    return encoded


def request_json(
    spans: Sequence[Span],
    resource: Sequence[tuple[str, AttributeValue]],
    scope: tuple[str, str],
) -> dict[str, Any]:
    """One ExportTraceServiceRequest: one resource, one scope, these spans."""
    name, version = scope
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": _attributes(resource)},
                "scopeSpans": [
                    {
                        "scope": {"name": name, "version": version},
                        "spans": [_span(span) for span in spans],
                    }
                ],
            }
        ]
    }


def encode_request(
    spans: Sequence[Span],
    resource: Sequence[tuple[str, AttributeValue]],
    scope: tuple[str, str],
) -> bytes:
    """The request as one line of compact JSON (UTF-8, no newline)."""
    return json.dumps(
        request_json(spans, resource, scope), ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")
