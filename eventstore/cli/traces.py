"""`eventstore traces`: stored histories as OpenTelemetry traces (OTLP JSON, OTLP/HTTP)."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click
from rich.text import Text

from .. import __version__
from ..store import HistoryStore
from ..traces import DEFAULT_BATCH, TraceCounts, TraceStream, encode_request
from ..traces.spans import AttributeValue
from .app import main
from .core import TARGET, err, open_store, progress_bar
from .metrics import Duration

SCOPE = ("eventstore.traces", __version__)
OTEL_MISSING = (
    "--otlp needs OpenTelemetry's SDK and OTLP/HTTP exporter: pip install 'eventstore[otel]'"
)


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[IO[bytes] | None]:
    """The file to write, whole or not at all: a temporary file beside it,
    renamed over it only when every request is written."""
    if path is None:
        yield None
        return
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.flush()
        return
    target = Path(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _sender(url: str | None, resource: list[tuple[str, AttributeValue]], timeout: float) -> Any:
    if url is None:
        return None
    try:
        from ..traces.otlp_http import OtlpHttpSender
    except ImportError:
        raise click.ClickException(OTEL_MISSING) from None
    return OtlpHttpSender(url, resource, SCOPE, timeout=timeout)


@main.command()
@TARGET
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Write OTLP JSON: one ExportTraceServiceRequest per line ('-': stdout).",
)
@click.option(
    "--otlp",
    "otlp_url",
    metavar="URL",
    help="Send the same requests over OTLP/HTTP (protobuf) to this receiver, e.g. "
    "http://127.0.0.1:4318 (/v1/traces is added when the URL has no path). "
    "Needs the otel extra.",
)
@click.option(
    "--service-name",
    default="duroxide",
    show_default=True,
    help="The service.name resource attribute of every span.",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH,
    show_default=True,
    help="Spans per request (a line of the file, a POST to the receiver).",
)
@click.option(
    "--timeout",
    type=Duration(),
    default="10s",
    show_default=True,
    help="How long the receiver may take to answer one request (with --otlp).",
)
def traces(
    target: str,
    output: str | None,
    otlp_url: str | None,
    service_name: str,
    batch: int,
    timeout: float,
) -> None:
    """Stored histories as OpenTelemetry traces: one trace per instance, a span per
    execution with child spans per activity, timer, external wait and
    sub-orchestration. Ids derive from instance, execution and event ids, so two
    exports agree. Events without timestamps produce no spans (counted)."""
    if output is None and otlp_url is None:
        raise click.UsageError("say where the traces go: -o FILE, --otlp URL, or both")
    resource: list[tuple[str, AttributeValue]] = [("service.name", service_name)]
    sender = _sender(otlp_url, resource, timeout)
    requests = 0
    try:
        with open_store(target, readonly=True) as store, _output(output) as handle:
            counts, requests = _export(store, batch, resource, handle, sender)
    finally:
        if sender is not None:
            sender.close()
    _summary(counts, requests, output, sender)


def _export(
    store: HistoryStore,
    batch: int,
    resource: list[tuple[str, AttributeValue]],
    handle: IO[bytes] | None,
    sender: Any,
) -> tuple[TraceCounts, int]:
    requests = 0
    with progress_bar("traces", store.count()) as advance:
        stream = TraceStream(
            store,
            batch=batch,
            on_undecodable=lambda message: err.print(
                Text(f"skipping undecodable row at {message}")
            ),
            progress=advance,
        )
        for spans in stream:
            if handle is not None:
                handle.write(encode_request(spans, resource, SCOPE) + b"\n")
            if sender is not None:
                sender.send(spans)
            requests += 1
    return stream.counts, requests


def _summary(counts: TraceCounts, requests: int, output: str | None, sender: Any) -> None:
    where = " and ".join(
        w
        for w in (
            f"to {output}" if output not in (None, "-") else ("to stdout" if output else ""),
            f"to {sender.endpoint}" if sender is not None else "",
        )
        if w
    )
    err.print(
        Text(
            f"{counts.spans} spans of {counts.executions} executions in {counts.instances} "
            f"traces, {requests} requests {where}; "
            f"{counts.events_without_timestamp} events without a timestamp "
            f"({counts.spans_without_timestamp} spans not written), "
            f"{counts.spans_clock_skew} ending before they start, "
            f"{counts.unfinished} unfinished, {counts.undecodable} undecodable rows"
        )
    )
