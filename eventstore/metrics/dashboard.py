"""A Grafana dashboard for the exporter's metrics, generated from their definitions.

Each panel names the metric families it shows (attributes of
`MetricDefinitions`, or the exporter's own feed lag) and what to draw of them;
the metric names, label names, units and descriptions come from the
definitions themselves, and the PromQL follows from the family's type:

* a counter: `sum by (<labels>) (rate(<name>_total[$__rate_interval]))`;
* a histogram: quantiles, `histogram_quantile(q, sum by (le, <labels>)
  (rate(<name>_bucket[$__rate_interval])))`;
* a gauge: `max by (<labels>) (<name>)`.

So a metric renamed or relabelled in definitions.py changes the dashboard
with it, and the test that loads every panel's query into a real Prometheus
scraping the exporter (tests/test_dashboard.py) fails if a panel names
something the exporter does not serve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from prometheus_client import CollectorRegistry

from .. import __version__
from .families import CounterFamily, Family, HistogramFamily, MaxGaugeFamily
from .feed_lag import FEED_LAG
from .store_metrics import StoreMetrics

__all__ = ["QUANTILES", "Panel", "dashboard", "panels", "queries"]

QUANTILES: Final = (0.5, 0.95, 0.99)
_DATASOURCE: Final = {"type": "prometheus", "uid": "${datasource}"}
_FILTERS: Final = {
    "orchestration_name": "$orchestration",
    "activity_name": "$activity",
}
"""Labels the dashboard's variables filter on, where a metric carries them."""


@dataclass(frozen=True, slots=True)
class Panel:
    """One panel: a title, the families it draws (attributes of the definitions,
    or a name of the exporter's own), by which labels, and how."""

    title: str
    families: tuple[str, ...]
    by: tuple[str, ...] = ()
    show: str = "rate"
    """'rate' (counters), 'quantiles' (histograms), 'value' (gauges)."""
    unit: str | None = None
    width: int = 12


PANELS: Final = (
    Panel(
        "Orchestrations completed per second, by name and status",
        ("orchestration_completions",),
        ("orchestration_name", "status"),
        unit="ops",
    ),
    Panel(
        "Orchestrations started per second, by name",
        ("orchestration_starts",),
        ("orchestration_name", "initiated_by"),
        unit="ops",
    ),
    Panel(
        "Orchestration duration quantiles, by name and status",
        ("orchestration_duration",),
        ("orchestration_name", "status"),
        show="quantiles",
    ),
    Panel(
        "Activity duration quantiles, by activity and outcome",
        ("activity_duration",),
        ("activity_name", "outcome"),
        show="quantiles",
    ),
    Panel(
        "Activities ended per second, by activity and outcome",
        ("activity_executions",),
        ("activity_name", "outcome"),
        unit="ops",
    ),
    Panel(
        "Sub-orchestration duration quantiles",
        ("suborchestration_duration",),
        ("parent_orchestration", "child_orchestration"),
        show="quantiles",
    ),
    Panel(
        "Durations unavailable per second, by histogram and reason",
        ("durations_unavailable",),
        ("metric", "reason"),
        unit="ops",
    ),
    Panel(
        "History size in events, quantiles by orchestration",
        ("history_size",),
        ("orchestration_name",),
        show="quantiles",
        unit="short",
    ),
    Panel(
        "History size in bytes, quantiles by orchestration (duroxide's limit: 5 MiB)",
        ("history_bytes",),
        ("orchestration_name",),
        show="quantiles",
    ),
    Panel(
        "Largest history and payloads (bytes)",
        ("history_max_bytes", "payload_max_bytes"),
        show="value",
    ),
    Panel(
        "Histories and payloads past duroxide's size limits, per second",
        ("size_limit_exceeded",),
        ("orchestration_name", "limit"),
        unit="ops",
    ),
    Panel("Rows that did not decode, per second", ("decode_errors",), unit="ops"),
    Panel(
        "Rows decoded per second, by stored generation",
        ("rows_decoded",),
        ("generation",),
        unit="ops",
    ),
    Panel("Feed lag: how far the exporter trails the store", (FEED_LAG,), show="value"),
)


def _families() -> dict[str, Family]:
    """The families as defined (a throwaway StoreMetrics on a private registry)."""
    metrics = StoreMetrics(CollectorRegistry())
    return {name: value for name, value in vars(metrics).items() if isinstance(value, Family)}


def _selector(labels: Sequence[str]) -> str:
    filters = [f'{label}=~"{_FILTERS[label]}"' for label in labels if label in _FILTERS]
    return "{" + ",".join(filters) + "}" if filters else ""


def _unit(name: str) -> str:
    if name.endswith("_seconds"):
        return "s"
    if name.endswith("_bytes"):
        return "bytes"
    return "short"


def _legend(by: Sequence[str], extra: str = "") -> str:
    parts = [f"{{{{{label}}}}}" for label in by]
    return " ".join([*parts, extra]).strip() or "__auto"


def _targets(panel: Panel, family: Family | None, name: str) -> list[dict[str, Any]]:
    """The PromQL of one family of the panel, from the family's type."""
    labels = family.labelnames if family is not None else ()
    where = _selector(labels)
    by = [label for label in panel.by if label in labels]
    grouping = f" by ({', '.join(by)})" if by else ""
    if panel.show == "rate":
        assert isinstance(family, CounterFamily), name
        expr = f"sum{grouping} (rate({name}_total{where}[$__rate_interval]))"
        return [{"expr": expr, "legendFormat": _legend(by)}]
    if panel.show == "quantiles":
        assert isinstance(family, HistogramFamily), name
        le = ", ".join(["le", *by])
        return [
            {
                "expr": f"histogram_quantile({q}, sum by ({le}) "
                f"(rate({name}_bucket{where}[$__rate_interval])))",
                "legendFormat": _legend(by, f"p{round(q * 100)}"),
            }
            for q in QUANTILES
        ]
    assert family is None or isinstance(family, MaxGaugeFamily), name
    keep = [label for label in labels if label not in ("le",)]
    grouping = f" by ({', '.join(keep)})" if keep else ""
    short = name.removeprefix("eventstore_")
    expr = f"max{grouping} ({name}{where})"
    if keep:  # one series per name: the ten largest
        expr = f"topk(10, {expr})"
    return [{"expr": expr, "legendFormat": _legend(keep, short)}]


def panels() -> list[dict[str, Any]]:
    """Every panel as Grafana's JSON model, laid out two to a row."""
    families = _families()
    built: list[dict[str, Any]] = []
    x = y = 0
    for number, panel in enumerate(PANELS, start=1):
        targets: list[dict[str, Any]] = []
        descriptions = []
        for key in panel.families:
            family = families.get(key)
            name = family.name if family is not None else key
            descriptions.append(f"{name}: {family.documentation if family else _FEED_LAG_HELP}")
            targets += _targets(panel, family, name)
        for ref, target in enumerate(targets):
            target.update(refId=chr(ord("A") + ref), datasource=_DATASOURCE)
        first = families.get(panel.families[0])
        unit = panel.unit or _unit(first.name if first is not None else panel.families[0])
        built.append(
            {
                "id": number,
                "type": "timeseries",
                "title": panel.title,
                "description": "\n".join(descriptions),
                "datasource": _DATASOURCE,
                "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {"legend": {"displayMode": "table", "placement": "bottom"}},
                "targets": targets,
            }
        )
        x += panel.width
        if x >= 24:
            x, y = 0, y + 8
    return built


_FEED_LAG_HELP: Final = (
    "how far the exporter's reading of the global feed trails the store, in seconds "
    "(0 when its last read reached the end of the feed; see proposals/metrics.md)"
)


def _variable(name: str, label: str, metric: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": _DATASOURCE,
        "query": {"query": f"label_values({metric}, {_LABEL_OF[name]})", "refId": name},
        "definition": f"label_values({metric}, {_LABEL_OF[name]})",
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {"text": "All", "value": "$__all"},
        "refresh": 2,
        "sort": 1,
    }


_LABEL_OF: Final = {"orchestration": "orchestration_name", "activity": "activity_name"}


def dashboard(
    *, title: str = "eventstore: orchestration histories", uid: str = "eventstore"
) -> dict[str, Any]:
    """The whole dashboard (Grafana's JSON model), ready to import."""
    families = _families()
    return {
        "uid": uid,
        "title": title,
        "description": f"Generated by eventstore {__version__} (`eventstore dashboard`).",
        "tags": ["eventstore", "duroxide"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                },
                _variable(
                    "orchestration",
                    "Orchestration",
                    families["orchestration_starts"].name + "_total",
                ),
                _variable("activity", "Activity", families["activity_executions"].name + "_total"),
            ]
        },
        "panels": panels(),
    }


def queries(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard, in panel order."""
    return [target["expr"] for panel in board["panels"] for target in panel["targets"]]
