"""Prometheus metrics computed from stored event timestamps.

duroxide measures an orchestration's duration as the wall time of its final
turn only and never reads `timestamp_ms`. Here every duration is the
difference of two stored timestamps (the scheduling event and the event that
ends it), under duroxide's metric names and labels so existing dashboards
work. A duration is observed only when both ends carry a timestamp; anything
else is counted in `eventstore_durations_unavailable_total{metric,reason}`,
never observed as zero seconds.

Two ways in:

* `StoreMetrics` is a `StoreObserver`: `eventstore.open(path,
  observer=StoreMetrics(registry))` updates the metrics as the store appends.
* `StoreMetrics.track` takes events one at a time; `StoreMetrics.batch()`
  holds the lock over many (the exporter, `eventstore.metrics.exporter`, feeds it the
  global feed that way).

Nothing touches prometheus_client's global registry unless it is passed in:
without a `registry` argument a private `CollectorRegistry` is created.
See proposals/metrics.md for the design.

The modules: `store_metrics` (StoreMetrics), `definitions` (the families it
keeps), `durations` (names, buckets, label values), `families` (the plain
value families and their series cap), `limits` (the caps), `exporter`
(the feed and the serving loop), `server` (its HTTP server).
"""

from __future__ import annotations

from .durations import (
    ACTIVITY_BUCKETS,
    APPEND_LATENCY_BUCKETS,
    HISTORY_SIZE_BUCKETS,
    ORCHESTRATION_BUCKETS,
    SUBORCHESTRATION_BUCKETS,
    Metric,
    Reason,
    activity_outcome,
)
from .limits import DEFAULT_MAX_LABEL_VALUES, DEFAULT_MAX_SERIES, OTHER, UNKNOWN, LabelLimiter
from .store_metrics import StoreMetrics

__all__ = [
    "ACTIVITY_BUCKETS",
    "APPEND_LATENCY_BUCKETS",
    "DEFAULT_MAX_LABEL_VALUES",
    "DEFAULT_MAX_SERIES",
    "HISTORY_SIZE_BUCKETS",
    "ORCHESTRATION_BUCKETS",
    "OTHER",
    "SUBORCHESTRATION_BUCKETS",
    "UNKNOWN",
    "LabelLimiter",
    "Metric",
    "Reason",
    "StoreMetrics",
    "activity_outcome",
]
