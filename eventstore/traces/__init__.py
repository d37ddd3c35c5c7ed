"""OpenTelemetry traces from stored histories.

One trace per instance; a span per execution, with child spans per
activity, timer, external wait and sub-orchestration (the last linked to the
child's trace). Ids are derived from instance, execution and event ids
(`ids`), so two exports of a store agree byte for byte. Events without
timestamps produce no spans and are counted (`TraceCounts`).

The modules: `ids` (trace and span ids), `spans` (one execution's events to
spans), `stream` (a whole store to batches, constant memory), `otlp_json`
(the OTLP JSON mapping of ExportTraceServiceRequest), `otlp_http` (sending
over OTLP/HTTP with OpenTelemetry's exporter; needs the `otel` extra and is
imported only when used). See proposals/viewer.md.
"""

from __future__ import annotations

from .ids import span_id, trace_id
from .otlp_json import encode_request, request_json
from .spans import ExecutionSpans, Link, Span, TraceCounts
from .stream import DEFAULT_BATCH, TraceStream

__all__ = [
    "DEFAULT_BATCH",
    "ExecutionSpans",
    "Link",
    "Span",
    "TraceCounts",
    "TraceStream",
    "encode_request",
    "request_json",
    "span_id",
    "trace_id",
]
