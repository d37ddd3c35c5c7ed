"""Spans -> OTLP/HTTP (protobuf), through OpenTelemetry's own exporter.

Needs the `otel` extra (opentelemetry-sdk and
opentelemetry-exporter-otlp-proto-http); importing this module without it
raises ImportError, which the command line turns into one line saying which
extra to install. The spans keep their derived ids: each is handed to the
exporter as a finished SDK span, so what is sent is what the JSON file holds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final
from urllib.parse import urlsplit

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link as SdkLink
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from ..errors import TargetError
from .spans import STATUS_ERROR, STATUS_OK, AttributeValue, Span

__all__ = ["OtlpHttpSender", "traces_endpoint"]

TRACES_PATH: Final = "/v1/traces"
_STATUS: Final = {STATUS_OK: StatusCode.OK, STATUS_ERROR: StatusCode.ERROR}
_SAMPLED: Final = TraceFlags(TraceFlags.SAMPLED)


def traces_endpoint(url: str) -> str:
    """The URL to POST to: as given, or with /v1/traces when it names no path."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TargetError(f"--otlp needs an http:// or https:// URL, not {url!r}")
    return url if parts.path not in ("", "/") else url.rstrip("/") + TRACES_PATH


class _LastMessage(logging.Handler):
    """Keeps what the exporter logged (it reports failures only there)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.message = ""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.message = record.getMessage()


def _context(trace_id: bytes, span_id: bytes) -> SpanContext:
    return SpanContext(
        trace_id=int.from_bytes(trace_id, "big"),
        span_id=int.from_bytes(span_id, "big"),
        is_remote=False,
        trace_flags=_SAMPLED,
    )


class OtlpHttpSender:
    """Sends batches of spans to one OTLP/HTTP receiver; a batch it refuses raises
    TargetError naming the receiver and what it said."""

    def __init__(
        self,
        url: str,
        resource: Sequence[tuple[str, AttributeValue]],
        scope: tuple[str, str],
        *,
        timeout: float = 10.0,
    ) -> None:
        self.endpoint = traces_endpoint(url)
        self._resource = Resource(dict(resource))
        self._scope = InstrumentationScope(scope[0], scope[1])
        self._log = _LastMessage()
        self._logger = logging.getLogger("opentelemetry")
        self._exporter = OTLPSpanExporter(endpoint=self.endpoint, timeout=timeout)

    def _readable(self, span: Span) -> ReadableSpan:
        return ReadableSpan(
            name=span.name,
            context=_context(span.trace_id, span.span_id),
            parent=_context(span.trace_id, span.parent_span_id) if span.parent_span_id else None,
            resource=self._resource,
            attributes=dict(span.attributes),
            links=[
                SdkLink(_context(k.trace_id, k.span_id), dict(k.attributes)) for k in span.links
            ],
            kind=SpanKind.INTERNAL,
            status=Status(_STATUS.get(span.status, StatusCode.UNSET), span.status_message or None),
            start_time=span.start_ns,
            end_time=span.end_ns,
            instrumentation_scope=self._scope,
        )

    def send(self, spans: Sequence[Span]) -> None:
        readable = [self._readable(span) for span in spans]
        # The exporter logs why a batch failed (and would print a traceback
        # through logging's last resort): keep the words, show no traceback.
        propagate = self._logger.propagate
        self._logger.addHandler(self._log)
        self._logger.propagate = False
        try:
            result = self._exporter.export(readable)
        finally:
            self._logger.removeHandler(self._log)
            self._logger.propagate = propagate
        if result is not SpanExportResult.SUCCESS:
            said = self._log.message or "no reason given"
            raise TargetError(
                f"the OTLP receiver at {self.endpoint} did not take the traces: {said}"
            )

    def close(self) -> None:
        self._exporter.shutdown()  # type: ignore[no-untyped-call]
