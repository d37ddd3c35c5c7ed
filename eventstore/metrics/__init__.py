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
"""

from __future__ import annotations

import contextlib
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric as Metric_

from .. import events as ev
from ..codec import Generation
from ..errors import Location
from ..events import SYSTEM_CALL_PREFIX, Event

__all__ = [
    "ACTIVITY_BUCKETS",
    "APPEND_LATENCY_BUCKETS",
    "DEFAULT_MAX_LABEL_VALUES",
    "HISTORY_SIZE_BUCKETS",
    "OTHER",
    "ORCHESTRATION_BUCKETS",
    "SUBORCHESTRATION_BUCKETS",
    "UNKNOWN",
    "LabelLimiter",
    "Metric",
    "Reason",
    "StoreMetrics",
    "activity_outcome",
]

# duroxide's buckets (its metrics specification), so dashboards' `le` values match.
ORCHESTRATION_BUCKETS: Final = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 600, 1800, 3600)
ACTIVITY_BUCKETS: Final = (0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
SUBORCHESTRATION_BUCKETS: Final = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 600)
HISTORY_SIZE_BUCKETS: Final = (10, 50, 100, 500, 1000, 5000, 10000)
APPEND_LATENCY_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)

DEFAULT_MAX_LABEL_VALUES: Final = 200
"""Distinct values kept per data-derived label; more go to OTHER."""
OTHER: Final = "other"
"""The label value that overflowing values are folded into."""
UNKNOWN: Final = "unknown"
"""The label value for what the history cannot tell (e.g. a name whose start was not seen)."""

_RETRY_ATTEMPT: Final = "0"
"""duroxide has no built-in activity retry and labels every execution "0"; a
retry written in orchestration code is a new ActivityScheduled, so the
history agrees."""
_FINAL_TURN_COUNT: Final = UNKNOWN
"""Turns are not recorded in the history (a turn's events are not marked), so
the label exists for dashboards but says "unknown"."""


class Metric:
    """Names of the duration histograms (the `metric` label of the unavailable counter)."""

    ORCHESTRATION: Final = "duroxide_orchestration_duration_seconds"
    ACTIVITY: Final = "duroxide_activity_duration_seconds"
    SUBORCHESTRATION: Final = "duroxide_suborchestration_duration_seconds"


class Reason:
    """Why a duration could not be computed (the `reason` label)."""

    MISSING_TIMESTAMP: Final = "missing_timestamp"
    """The start or the end event has no timestamp (legacy V0 rows)."""
    NEGATIVE_DURATION: Final = "negative_duration"
    """The end is stamped before the start (clock skew between writers)."""
    MISSING_START: Final = "missing_start"
    """The end event names a start that was never seen."""


_ORCHESTRATION_STATUS: Final[dict[type[ev.EventBase], str]] = {
    ev.OrchestrationCompleted: "success",
    ev.OrchestrationFailed: "failed",  # cancellation included, as duroxide records it
    ev.OrchestrationContinuedAsNew: "continuedAsNew",
}


def activity_outcome(details: ev.ErrorDetails | None) -> str:
    """duroxide's `outcome` label for an activity that completed (None) or failed."""
    if details is None:
        return "success"
    if isinstance(details, ev.ApplicationError):
        return "cancelled" if isinstance(details.kind, ev.Cancelled) else "app_error"
    if isinstance(details, ev.InfrastructureError):
        return "infra_error"
    if isinstance(details, ev.ConfigurationError):
        return "config_error"
    if isinstance(details, ev.PoisonError):
        return "poison"
    return "unknown_error"


class LabelLimiter:
    """Caps the distinct values of each data-derived label.

    The first `limit` values seen for a label are kept; later new values
    become OTHER and each such occurrence is counted in
    `eventstore_label_overflow_total{label}`. Limits are per label name and
    shared by every metric that has that label.
    """

    def __init__(
        self,
        default: int = DEFAULT_MAX_LABEL_VALUES,
        limits: Mapping[str, int] | None = None,
        on_overflow: Callable[[str], None] | None = None,
    ) -> None:
        if default < 1 or any(v < 1 for v in (limits or {}).values()):
            raise ValueError("label value limits must be at least 1")
        self.default = default
        self.limits = dict(limits or {})
        self._seen: dict[str, set[str]] = {}
        self._on_overflow = on_overflow

    def __call__(self, label: str, value: str) -> str:
        seen = self._seen.get(label)
        if seen is None:
            seen = self._seen[label] = set()
        if value in seen:
            return value
        if len(seen) >= self.limits.get(label, self.default):
            if self._on_overflow is not None:
                self._on_overflow(label)
            return OTHER
        seen.add(value)
        return value

    def distinct(self, label: str) -> int:
        """How many distinct values `label` holds (OTHER not included)."""
        return len(self._seen.get(label, ()))


# --------------------------------------------------------------------------
# Metric families held in plain Python values.
#
# prometheus_client's own Counter / Histogram take a lock per update; the
# exporter applies hundreds of thousands of events per second, all under one
# lock of its own, so the values live in plain objects and StoreMetrics is
# the registry's Collector, rendering them on scrape.
# --------------------------------------------------------------------------


class _CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class _HistogramChild:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; last is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # bisect_left: the first bound >= value, i.e. the `le` bucket it belongs to.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


class _Family:
    """One metric family: its name, help, label names and labelled children."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.children: dict[tuple[str, ...], Any] = {}

    def _new_child(self) -> Any:
        raise NotImplementedError

    def labels(self, *values: str) -> Any:
        child = self.children.get(values)
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, not {values}")
            child = self.children[values] = self._new_child()
        return child

    def render(self) -> Metric_:
        raise NotImplementedError


class _CounterFamily(_Family):
    def _new_child(self) -> _CounterChild:
        return _CounterChild()

    def inc(self, amount: float = 1.0) -> None:
        """For a family without labels."""
        self.labels().inc(amount)

    def render(self) -> Metric_:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        if not self.labelnames and not self.children:
            family.add_metric((), 0.0)
        for values, child in self.children.items():
            family.add_metric(values, child.value)
        return family


class _HistogramFamily(_Family):
    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        bounds: Sequence[float] = (),
    ) -> None:
        super().__init__(name, documentation, labelnames)
        self.bounds = tuple(float(b) for b in bounds)
        if list(self.bounds) != sorted(set(self.bounds)):
            raise ValueError(f"{name}: bucket bounds must increase")
        self._les = [repr(b) for b in self.bounds] + ["+Inf"]  # as prometheus_client spells them

    def _new_child(self) -> _HistogramChild:
        return _HistogramChild(self.bounds)

    def observe(self, value: float) -> None:
        """For a family without labels."""
        self.labels().observe(value)

    def render(self) -> Metric_:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        children = self.children
        if not self.labelnames and not children:
            children = {(): _HistogramChild(self.bounds)}
        for values, child in children.items():
            cumulative = 0
            buckets = []
            for le, count in zip(self._les, child.counts, strict=True):
                cumulative += count
                buckets.append((le, float(cumulative)))
            family.add_metric(values, buckets, child.sum)
        return family


_F = TypeVar("_F", bound=_Family)

# What an open start remembers: kind, name, tag, timestamp_ms.
_ACTIVITY: Final = 0
_SYSCALL: Final = 1
_SUBORCHESTRATION: Final = 2


class _Execution:
    """An execution in flight: what its start said and its open starts."""

    __slots__ = ("events", "name", "open", "start_ms", "started", "version")

    def __init__(self) -> None:
        self.started = False
        self.name = UNKNOWN
        self.version = UNKNOWN
        self.start_ms = 0
        self.events = 0
        self.open: dict[int, tuple[int, str, str, int]] = {}


class StoreMetrics:
    """duroxide's metrics computed from stored events, and the store's own.

    Implements `StoreObserver`. `track` feeds one event (`batch()` many);
    state for an execution (its start, its scheduled-but-not-completed
    activities and sub-orchestrations) is kept only while the execution is in
    flight and dropped at its terminal event, so events may arrive across any
    number of calls. Thread-safe.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        max_label_values: int = DEFAULT_MAX_LABEL_VALUES,
        label_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._lock = threading.RLock()
        self._executions: dict[tuple[str, int], _Execution] = {}
        self._open_starts = 0
        families: list[_Family] = []

        def add(family: _F) -> _F:
            families.append(family)
            return family

        # -- duroxide's names and labels ---------------------------------
        self.orchestration_starts = add(
            _CounterFamily(
                "duroxide_orchestration_starts",
                "Orchestration executions started (from OrchestrationStarted events).",
                ["orchestration_name", "version", "initiated_by"],
            )
        )
        self.orchestration_completions = add(
            _CounterFamily(
                "duroxide_orchestration_completions",
                "Orchestration executions ended (Completed, Failed, ContinuedAsNew).",
                ["orchestration_name", "version", "status", "final_turn_count"],
            )
        )
        self.orchestration_duration = add(
            _HistogramFamily(
                "duroxide_orchestration_duration_seconds",
                "OrchestrationStarted to the execution's terminal event, from stored timestamps.",
                ["orchestration_name", "version", "status"],
                ORCHESTRATION_BUCKETS,
            )
        )
        self.history_size = add(
            _HistogramFamily(
                "duroxide_orchestration_history_size",
                "Events in an execution's history when it ended.",
                ["orchestration_name"],
                HISTORY_SIZE_BUCKETS,
            )
        )
        self.activity_executions = add(
            _CounterFamily(
                "duroxide_activity_executions",
                "Activity executions ended (ActivityCompleted / ActivityFailed).",
                ["activity_name", "outcome", "retry_attempt", "tag"],
            )
        )
        self.activity_duration = add(
            _HistogramFamily(
                "duroxide_activity_duration_seconds",
                "ActivityScheduled to its ActivityCompleted / ActivityFailed, "
                "from stored timestamps.",
                ["activity_name", "outcome", "tag"],
                ACTIVITY_BUCKETS,
            )
        )
        self.suborchestration_calls = add(
            _CounterFamily(
                "duroxide_suborchestration_calls",
                "Sub-orchestration calls ended (SubOrchestrationCompleted / Failed).",
                ["parent_orchestration", "child_orchestration", "outcome"],
            )
        )
        self.suborchestration_duration = add(
            _HistogramFamily(
                "duroxide_suborchestration_duration_seconds",
                "SubOrchestrationScheduled to its SubOrchestrationCompleted / Failed, "
                "from stored timestamps.",
                ["parent_orchestration", "child_orchestration", "outcome"],
                SUBORCHESTRATION_BUCKETS,
            )
        )
        # -- the store's own -------------------------------------------------
        self.events_appended = add(
            _CounterFamily(
                "eventstore_events_appended",
                "Events appended through this store, by event type.",
                ["event_type"],
            )
        )
        self.append_duration = add(
            _HistogramFamily(
                "eventstore_append_duration_seconds",
                "Wall time of one append call (validate, encode, write).",
                (),
                APPEND_LATENCY_BUCKETS,
            )
        )
        self.rows_decoded = add(
            _CounterFamily(
                "eventstore_rows_decoded",
                "Stored rows decoded, by the generation they were stored in.",
                ["generation"],
            )
        )
        self.decode_errors = add(
            _CounterFamily(
                "eventstore_decode_errors",
                "Stored rows that could not be decoded.",
            )
        )
        self.durations_unavailable = add(
            _CounterFamily(
                "eventstore_durations_unavailable",
                "Durations that could not be computed, by histogram and reason.",
                ["metric", "reason"],
            )
        )
        self.system_calls = add(
            _CounterFamily(
                "eventstore_system_calls",
                "duroxide system calls (reserved activity names, legacy SystemCall events); "
                "kept out of the duroxide_activity_* metrics.",
                ["call", "outcome"],
            )
        )
        self.label_overflow = add(
            _CounterFamily(
                "eventstore_label_overflow",
                "Label values folded into 'other' because the label reached its cap.",
                ["label"],
            )
        )
        self._families = families

        overflow_children: dict[str, Any] = {}

        def overflowed(label: str) -> None:
            child = overflow_children.get(label)
            if child is None:
                child = overflow_children[label] = self.label_overflow.labels(label)
            child.inc()

        self.limiter = LabelLimiter(max_label_values, label_limits, overflowed)
        self._children: dict[tuple[Any, ...], Any] = {}
        self._unavailable: dict[tuple[str, str], Any] = {}
        self._generation_children = {g: self.rows_decoded.labels(g.value) for g in Generation}
        self.registry.register(self)

    # -- lifecycle -------------------------------------------------------------

    def unregister(self) -> None:
        """Remove this object's metrics from its registry."""
        self.registry.unregister(self)

    # -- Collector ---------------------------------------------------------------

    def collect(self) -> Iterator[Metric_]:
        """Prometheus families, rendered from a consistent snapshot (under the lock)."""
        with self._lock:
            families = [family.render() for family in self._families]
            open_executions = len(self._executions)
            open_starts = self._open_starts
        yield from families
        yield GaugeMetricFamily(
            "eventstore_metrics_open_executions",
            "Executions in flight whose start is held in memory.",
            value=open_executions,
        )
        yield GaugeMetricFamily(
            "eventstore_metrics_open_starts",
            "Scheduled activities and sub-orchestrations not yet completed, held in memory.",
            value=open_starts,
        )

    @property
    def open_executions(self) -> int:
        return len(self._executions)

    @property
    def open_starts(self) -> int:
        return self._open_starts

    # -- labels ----------------------------------------------------------------

    def _child(self, metric: Any, names: tuple[str, ...], values: tuple[str, ...]) -> Any:
        """The labelled child for raw values, caps applied (cached while under the caps)."""
        key = (id(metric), *values)
        child = self._children.get(key)
        if child is not None:
            return child
        limit = self.limiter
        capped = tuple(
            limit(name, value) if name in _DATA_LABELS else value
            for name, value in zip(names, values, strict=True)
        )
        child = metric.labels(*capped)
        if OTHER not in capped or capped == values:
            self._children[key] = child
        return child

    def _unavailable_inc(self, metric: str, reason: str) -> None:
        child = self._unavailable.get((metric, reason))
        if child is None:
            child = self._unavailable[(metric, reason)] = self.durations_unavailable.labels(
                metric, reason
            )
        child.inc()

    def _duration(self, metric: str, start_ms: int, end_ms: int) -> float | None:
        """Seconds from start to end, or None (counted as unavailable)."""
        if start_ms <= 0 or end_ms <= 0:
            self._unavailable_inc(metric, Reason.MISSING_TIMESTAMP)
            return None
        if end_ms < start_ms:
            self._unavailable_inc(metric, Reason.NEGATIVE_DURATION)
            return None
        return (end_ms - start_ms) / 1000.0

    # -- StoreObserver -----------------------------------------------------------

    def appended(self, events: Sequence[Event], seconds: float) -> None:
        """Count appended events by type, the append latency, and track the events."""
        with self._lock:
            self.append_duration.observe(seconds)
            for event in events:
                self._child(self.events_appended, _EVENT_TYPE_LABELS, (event.event_type,)).inc()
                self._track(event.instance_id, event.execution_id, event)

    def decoded(self, generation: Generation, count: int) -> None:
        if count:
            self._generation_children[Generation(generation)].inc(count)

    def decode_failed(self, location: Location) -> None:
        self.decode_errors.inc()

    # -- tracking --------------------------------------------------------------

    def track(self, instance_id: str, execution_id: int, event: Event) -> None:
        """Feed one event of the given execution (events of an execution in order)."""
        with self._lock:
            self._track(instance_id, execution_id, event)

    @contextlib.contextmanager
    def batch(self) -> Iterator[Callable[[str, int, Event], None]]:
        """Hold the lock for a batch; yields `track(instance_id, execution_id, event)`."""
        with self._lock:
            yield self._track

    def _track(self, instance_id: str, execution_id: int, event: Event) -> None:
        key = (instance_id, execution_id)
        execution = self._executions.get(key)
        if execution is None:
            execution = self._executions[key] = _Execution()
        execution.events += 1
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, key, execution, event)

    def _on_started(self, key: tuple[str, int], execution: _Execution, event: Event) -> None:
        assert isinstance(event, ev.OrchestrationStarted)
        execution.started = True
        execution.name = event.name
        execution.version = event.version
        execution.start_ms = event.timestamp_ms
        if key[1] > 1:
            initiated_by = "continueAsNew"
        elif event.parent_instance is not None:
            initiated_by = "suborchestration"
        else:
            initiated_by = "client"
        self._child(
            self.orchestration_starts,
            _STARTS_LABELS,
            (event.name, event.version, initiated_by),
        ).inc()

    def _on_activity_scheduled(
        self, key: tuple[str, int], execution: _Execution, event: Event
    ) -> None:
        assert isinstance(event, ev.ActivityScheduled)
        name = event.name
        if name.startswith(SYSTEM_CALL_PREFIX):
            start = (_SYSCALL, name[len(SYSTEM_CALL_PREFIX) :], "", event.timestamp_ms)
        else:
            tag = event.tag if isinstance(event.tag, str) else ""
            start = (_ACTIVITY, name, tag, event.timestamp_ms)
        if execution.open.setdefault(event.event_id, start) is start:
            self._open_starts += 1

    def _on_suborchestration_scheduled(
        self, key: tuple[str, int], execution: _Execution, event: Event
    ) -> None:
        assert isinstance(event, ev.SubOrchestrationScheduled)
        start = (_SUBORCHESTRATION, event.name, "", event.timestamp_ms)
        if execution.open.setdefault(event.event_id, start) is start:
            self._open_starts += 1

    def _take_start(
        self, execution: _Execution, event: Event, kind: int
    ) -> tuple[int, str, str, int] | None:
        source = event.source_event_id
        start = execution.open.get(source) if source is not None else None
        if start is None or (start[0] != kind and not (kind == _ACTIVITY and start[0] == _SYSCALL)):
            return None
        del execution.open[source]  # type: ignore[arg-type]
        self._open_starts -= 1
        return start

    def _on_activity_ended(self, key: tuple[str, int], execution: _Execution, event: Event) -> None:
        details = event.details if isinstance(event, ev.ActivityFailed) else None
        outcome = activity_outcome(details)
        start = self._take_start(execution, event, _ACTIVITY)
        if start is None:
            self._unavailable_inc(Metric.ACTIVITY, Reason.MISSING_START)
            self._child(
                self.activity_executions,
                _ACTIVITY_EXEC_LABELS,
                (UNKNOWN, outcome, _RETRY_ATTEMPT, ""),
            ).inc()
            return
        kind, name, tag, start_ms = start
        if kind == _SYSCALL:
            self._child(self.system_calls, _SYSCALL_LABELS, (name, outcome)).inc()
            return
        self._child(
            self.activity_executions, _ACTIVITY_EXEC_LABELS, (name, outcome, _RETRY_ATTEMPT, tag)
        ).inc()
        seconds = self._duration(Metric.ACTIVITY, start_ms, event.timestamp_ms)
        if seconds is not None:
            self._child(self.activity_duration, _ACTIVITY_LABELS, (name, outcome, tag)).observe(
                seconds
            )

    def _on_suborchestration_ended(
        self, key: tuple[str, int], execution: _Execution, event: Event
    ) -> None:
        outcome = "success" if isinstance(event, ev.SubOrchestrationCompleted) else "failed"
        start = self._take_start(execution, event, _SUBORCHESTRATION)
        if start is None:
            self._unavailable_inc(Metric.SUBORCHESTRATION, Reason.MISSING_START)
            child_name = UNKNOWN
        else:
            child_name = start[1]
        labels = (execution.name, child_name, outcome)
        self._child(self.suborchestration_calls, _SUBORCHESTRATION_LABELS, labels).inc()
        if start is None:
            return
        seconds = self._duration(Metric.SUBORCHESTRATION, start[3], event.timestamp_ms)
        if seconds is not None:
            self._child(self.suborchestration_duration, _SUBORCHESTRATION_LABELS, labels).observe(
                seconds
            )

    def _on_system_call(self, key: tuple[str, int], execution: _Execution, event: Event) -> None:
        assert isinstance(event, ev.SystemCall)
        self._child(self.system_calls, _SYSCALL_LABELS, (event.op, "success")).inc()

    def _on_terminal(self, key: tuple[str, int], execution: _Execution, event: Event) -> None:
        status = _ORCHESTRATION_STATUS[type(event)]
        name, version = execution.name, execution.version
        self._child(
            self.orchestration_completions,
            _COMPLETIONS_LABELS,
            (name, version, status, _FINAL_TURN_COUNT),
        ).inc()
        if execution.started:
            seconds = self._duration(Metric.ORCHESTRATION, execution.start_ms, event.timestamp_ms)
            if seconds is not None:
                self._child(
                    self.orchestration_duration, _ORCHESTRATION_LABELS, (name, version, status)
                ).observe(seconds)
            self._child(self.history_size, _HISTORY_LABELS, (name,)).observe(execution.events)
        else:
            self._unavailable_inc(Metric.ORCHESTRATION, Reason.MISSING_START)
        # Nothing is appended to an ended execution: its open starts can go.
        self._open_starts -= len(execution.open)
        del self._executions[key]


_DATA_LABELS: Final = frozenset(
    {
        "orchestration_name",
        "version",
        "activity_name",
        "tag",
        "parent_orchestration",
        "child_orchestration",
        "call",
        "event_type",
    }
)
"""Labels whose values come from stored data, and are therefore capped."""

_STARTS_LABELS: Final = ("orchestration_name", "version", "initiated_by")
_COMPLETIONS_LABELS: Final = ("orchestration_name", "version", "status", "final_turn_count")
_ORCHESTRATION_LABELS: Final = ("orchestration_name", "version", "status")
_HISTORY_LABELS: Final = ("orchestration_name",)
_ACTIVITY_EXEC_LABELS: Final = ("activity_name", "outcome", "retry_attempt", "tag")
_ACTIVITY_LABELS: Final = ("activity_name", "outcome", "tag")
_SUBORCHESTRATION_LABELS: Final = ("parent_orchestration", "child_orchestration", "outcome")
_SYSCALL_LABELS: Final = ("call", "outcome")
_EVENT_TYPE_LABELS: Final = ("event_type",)

_Handler = Callable[[StoreMetrics, tuple[str, int], _Execution, Event], None]

_HANDLERS: Final[dict[type[ev.EventBase], _Handler]] = {
    ev.OrchestrationStarted: StoreMetrics._on_started,
    ev.ActivityScheduled: StoreMetrics._on_activity_scheduled,
    ev.ActivityCompleted: StoreMetrics._on_activity_ended,
    ev.ActivityFailed: StoreMetrics._on_activity_ended,
    ev.SubOrchestrationScheduled: StoreMetrics._on_suborchestration_scheduled,
    ev.SubOrchestrationCompleted: StoreMetrics._on_suborchestration_ended,
    ev.SubOrchestrationFailed: StoreMetrics._on_suborchestration_ended,
    ev.SystemCall: StoreMetrics._on_system_call,
    ev.OrchestrationCompleted: StoreMetrics._on_terminal,
    ev.OrchestrationFailed: StoreMetrics._on_terminal,
    ev.OrchestrationContinuedAsNew: StoreMetrics._on_terminal,
}
