"""`eventstore dashboard`: a Grafana dashboard for the exporter's metrics."""

from __future__ import annotations

import json

import click

from ..metrics.dashboard import dashboard as build_dashboard
from .app import main


@main.command()
@click.option(
    "--title",
    default="eventstore: orchestration histories",
    show_default=True,
    help="The dashboard's title.",
)
@click.option("--uid", default="eventstore", show_default=True, help="The dashboard's Grafana uid.")
def dashboard(title: str, uid: str) -> None:
    """Print a Grafana dashboard (JSON, to import) for `eventstore metrics serve`:
    orchestration throughput and latency quantiles by name and status, activity
    latency, durations unavailable by reason, history sizes against duroxide's
    limits, decode errors and the feed's lag. It asks for a Prometheus data
    source when imported."""
    click.echo(json.dumps(build_dashboard(title=title, uid=uid), indent=2))
