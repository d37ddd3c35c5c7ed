"""`eventstore metrics`: Prometheus metrics from stored event timestamps.

`serve` tails the store's global feed and answers `/metrics`; `dump` prints the
exposition text once. Both open the store read-only, so they can run against a
live database that duroxide itself is writing.
"""

from __future__ import annotations

import logging
import re
import signal
import sys
import threading
from types import FrameType
from typing import Any

import click
from prometheus_client import CollectorRegistry

from ..metrics import DEFAULT_MAX_LABEL_VALUES, DEFAULT_MAX_SERIES, StoreMetrics
from ..metrics.exporter import (
    DEFAULT_BIND,
    DEFAULT_PORT,
    FeedExporter,
    MetricsServer,
    PollResult,
    backend_waiter,
    serve,
)
from ..opening import open as open_store
from .app import main

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")


class Duration(click.ParamType[float, Any]):
    """A duration: 1s, 500ms, 2m, or plain seconds."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            seconds = float(value)
        else:
            match = _DURATION.match(str(value))
            if match is None:
                self.fail(f"{value!r} is not a duration such as 1s, 500ms or 2m", param, ctx)
            number, unit = float(match.group(1)), match.group(2) or "s"
            seconds = number * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]
        if seconds <= 0:
            self.fail("the interval must be positive", param, ctx)
        return seconds


TARGET = click.argument("target", metavar="TARGET")
MAX_LABEL_VALUES = click.option(
    "--max-label-values",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_LABEL_VALUES,
    show_default=True,
    help="Distinct values kept per data-derived label; more are folded into 'other'.",
)
MAX_SERIES = click.option(
    "--max-series",
    type=click.IntRange(min=2),
    default=DEFAULT_MAX_SERIES,
    show_default=True,
    help="Series (label combinations) kept per metric; more are folded into one"
    " series labelled 'other'.",
)


def _exporter(store: Any, max_label_values: int, max_series: int) -> FeedExporter:
    return FeedExporter(
        store,
        CollectorRegistry(auto_describe=True),
        metrics_factory=lambda r: StoreMetrics(
            r, max_label_values=max_label_values, max_series=max_series
        ),
    )


def _log_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("eventstore")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


@main.group()
def metrics() -> None:
    """Prometheus metrics computed from the stored event timestamps."""


@metrics.command(name="serve")
@TARGET
@click.option("--bind", default=DEFAULT_BIND, show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port to listen on (0: any free port, printed at start).",
)
@click.option(
    "--interval",
    type=Duration(),
    default="1s",
    show_default=True,
    help="How often to read new events from the store (1s, 500ms, 2m).",
)
@MAX_LABEL_VALUES
@MAX_SERIES
def serve_command(
    target: str, bind: str, port: int, interval: float, max_label_values: int, max_series: int
) -> None:
    """Tail TARGET's history and serve /metrics until SIGTERM or Ctrl-C."""
    _log_to_stderr()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}

    def ready(server: MetricsServer, first: PollResult, seconds: float) -> None:
        click.echo(
            f"caught up on {first.rows} events in {seconds:.2f}s"
            + (f" ({first.undecodable} undecodable)" if first.undecodable else ""),
            err=True,
        )
        click.echo(f"serving metrics on {server.url}", err=True)

    try:
        with open_store(target, readonly=True) as store:
            exporter = _exporter(store, max_label_values, max_series)
            try:
                serve(
                    exporter,
                    bind=bind,
                    port=port,
                    interval=interval,
                    stop=stop,
                    on_ready=ready,
                    wait=backend_waiter(store),
                )
            except OSError as exc:
                if exc.filename is None:
                    raise click.ClickException(
                        f"cannot listen on {bind}:{port}: {exc.strerror or exc}"
                    ) from None
                raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    click.echo("stopped", err=True)


@metrics.command(name="dump")
@TARGET
@MAX_LABEL_VALUES
@MAX_SERIES
def dump_command(target: str, max_label_values: int, max_series: int) -> None:
    """Print the metrics of TARGET's whole history once (Prometheus text format)."""
    _log_to_stderr()
    with open_store(target, readonly=True) as store:
        exporter = _exporter(store, max_label_values, max_series)
        exporter.poll()
        sys.stdout.write(exporter.exposition().decode())
