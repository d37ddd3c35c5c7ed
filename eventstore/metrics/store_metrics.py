"""StoreMetrics: duroxide's metrics computed from stored timestamps, and the store's own.

Every duration is the difference of two stored timestamps (the scheduling
event and the event that ends it). A duration is observed only when both ends
carry a timestamp; anything else is counted in
`eventstore_durations_unavailable_total{metric,reason}`, never observed as
zero seconds. Labels from stored data are capped per label and every metric
per series (`eventstore.metrics.limits`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric as Metric_

from .. import events as ev
from ..codec import Generation, encode
from ..errors import Location
from ..events import SYSTEM_CALL_PREFIX, Event
from .durations import (
    FINAL_TURN_COUNT,
    ORCHESTRATION_STATUS,
    RETRY_ATTEMPT,
    Metric,
    Reason,
    activity_outcome,
)
from .limits import DEFAULT_MAX_LABEL_VALUES, DEFAULT_MAX_SERIES, OTHER, UNKNOWN, LabelLimiter
from .size_metrics import ExecutionState as _Execution
from .size_metrics import SizeMetrics
from .size_metrics import Start as _Start

__all__ = ["StoreMetrics"]

# What an open start remembers: kind, name, tag, timestamp_ms, retry attempt.
_ACTIVITY: Final = 0
_SYSCALL: Final = 1
_SUBORCHESTRATION: Final = 2


class StoreMetrics(SizeMetrics):
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
        max_series: int = DEFAULT_MAX_SERIES,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._lock = threading.RLock()
        self._executions: dict[tuple[str, int], _Execution] = {}
        self._open_starts = 0
        overflow_children: dict[str, Any] = {}

        def overflowed(label: str) -> None:
            child = overflow_children.get(label)
            if child is None:
                child = overflow_children[label] = self.label_overflow.labels(label)
            child.inc()

        series_children: dict[str, Any] = {}

        def series_overflowed(metric: str) -> None:
            child = series_children.get(metric)
            if child is None:
                child = series_children[metric] = self.series_overflow.labels(metric)
            child.inc()

        self._define(max_series, series_overflowed)
        self.limiter = LabelLimiter(max_label_values, label_limits, overflowed)
        self._children: dict[tuple[Any, ...], Any] = {}
        self._largest_payloads: dict[tuple[str, str], Any] = {}
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
        child, folded = metric.child(capped)
        # Only a child of the raw values themselves is cached: a folded one is
        # looked up again each time so every folded observation is counted,
        # and the cache stays as small as the metric.
        if not folded and (OTHER not in capped or capped == values):
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
                self._track(event.instance_id, event.execution_id, event, len(encode(event)))

    def decoded(self, generation: Generation, count: int) -> None:
        if count:
            self._generation_children[Generation(generation)].inc(count)

    def decode_failed(self, location: Location) -> None:
        self.decode_errors.inc()

    # -- tracking --------------------------------------------------------------

    def track(
        self, instance_id: str, execution_id: int, event: Event, size: int | None = None
    ) -> None:
        """Feed one event of the given execution (events of an execution in order).

        `size`: its stored bytes (event_data), for the history-size metrics;
        without it, the bytes of its encoding.
        """
        with self._lock:
            self._track(
                instance_id, execution_id, event, len(encode(event)) if size is None else size
            )

    @contextlib.contextmanager
    def batch(self) -> Iterator[Callable[[str, int, Event, int], None]]:
        """Hold the lock for a batch; yields `track(instance_id, execution_id, event, size)`."""
        with self._lock:
            yield self._track

    def track_page(
        self,
        instance_ids: Sequence[str],
        execution_ids: Sequence[int],
        events: Sequence[Event],
        sizes: Sequence[int],
    ) -> None:
        """Feed a page of events, each of the execution at the same index, with
        its stored size in bytes.

        `_track` inlined: a catch-up applies every stored event here, and the
        call per event was a tenth of its cost.
        """
        with self._lock:
            executions = self._executions
            handlers = _HANDLERS
            keys = zip(instance_ids, execution_ids, strict=True)
            for key, event, size in zip(keys, events, sizes, strict=True):
                execution = executions.get(key)
                if execution is None:
                    execution = executions[key] = _Execution()
                execution.events += 1
                execution.bytes += size
                handler = handlers.get(type(event))
                if handler is not None:
                    handler(self, key, execution, event)

    def _track(self, instance_id: str, execution_id: int, event: Event, size: int) -> None:
        key = (instance_id, execution_id)
        execution = self._executions.get(key)
        if execution is None:
            execution = self._executions[key] = _Execution()
        execution.events += 1
        execution.bytes += size
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, key, execution, event)

    def _on_external_event(self, key: tuple[str, int], execution: _Execution, event: Event) -> None:
        assert isinstance(event, ev.ExternalEvent | ev.ExternalEventPersistent)
        self._payload(execution, event, event.name)

    def _on_started(self, key: tuple[str, int], execution: _Execution, event: Event) -> None:
        assert isinstance(event, ev.OrchestrationStarted)
        execution.started = True
        execution.name = event.name
        execution.version = event.version
        execution.start_ms = event.timestamp_ms
        self._payload(execution, event, event.name)
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
        self._by_worker(event, "worker_id")

    def _by_worker(self, event: Event, field: str) -> None:
        """Phase 2: count an event that names the worker that wrote it (when it does)."""
        worker = getattr(event, field)
        if isinstance(worker, str):
            self._child(self.worker_events, _WORKER_LABELS, (worker, event.event_type)).inc()

    def _on_activity_scheduled(
        self, key: tuple[str, int], execution: _Execution, event: Event
    ) -> None:
        assert isinstance(event, ev.ActivityScheduled)
        name = event.name
        start: _Start
        if name.startswith(SYSTEM_CALL_PREFIX):
            call = name[len(SYSTEM_CALL_PREFIX) :]
            start = (_SYSCALL, call, "", event.timestamp_ms, RETRY_ATTEMPT)
        else:
            tag = event.tag if isinstance(event.tag, str) else ""
            # Phase 2: the attempt the writer recorded, where it did (else "0").
            retry = event.retry_count
            attempt = str(retry) if isinstance(retry, int) else RETRY_ATTEMPT
            start = (_ACTIVITY, name, tag, event.timestamp_ms, attempt)
            self._by_worker(event, "scheduled_by_worker_id")
            self._payload(execution, event, name)
        if execution.open.setdefault(event.event_id, start) is start:
            self._open_starts += 1

    def _on_suborchestration_scheduled(
        self, key: tuple[str, int], execution: _Execution, event: Event
    ) -> None:
        assert isinstance(event, ev.SubOrchestrationScheduled)
        start = (_SUBORCHESTRATION, event.name, "", event.timestamp_ms, RETRY_ATTEMPT)
        self._by_worker(event, "scheduled_by_worker_id")
        self._payload(execution, event, event.name)
        if execution.open.setdefault(event.event_id, start) is start:
            self._open_starts += 1

    def _take_start(self, execution: _Execution, event: Event, kind: int) -> _Start | None:
        source = event.source_event_id
        start = execution.open.get(source) if source is not None else None
        if start is None or (start[0] != kind and not (kind == _ACTIVITY and start[0] == _SYSCALL)):
            return None
        del execution.open[source]  # type: ignore[arg-type]
        self._open_starts -= 1
        return start

    def _on_activity_ended(self, key: tuple[str, int], execution: _Execution, event: Event) -> None:
        outcome = (
            activity_outcome(event.details) if isinstance(event, ev.ActivityFailed) else "success"
        )
        # `_take_start`, inlined for the most frequent end.
        source = event.source_event_id
        start = execution.open.get(source) if source is not None else None
        if start is None or start[0] == _SUBORCHESTRATION:
            self._unavailable_inc(Metric.ACTIVITY, Reason.MISSING_START)
            self._child(
                self.activity_executions,
                _ACTIVITY_EXEC_LABELS,
                (UNKNOWN, outcome, RETRY_ATTEMPT, ""),
            ).inc()
            if outcome == "success":
                self._payload(execution, event, UNKNOWN)
            return
        del execution.open[source]  # type: ignore[arg-type]
        self._open_starts -= 1
        kind, name, tag, start_ms, retry = start
        if kind == _SYSCALL:
            self._child(self.system_calls, _SYSCALL_LABELS, (name, outcome)).inc()
            return
        self._child(
            self.activity_executions, _ACTIVITY_EXEC_LABELS, (name, outcome, retry, tag)
        ).inc()
        self._by_worker(event, "completed_by_worker_id")
        if outcome == "success":
            self._payload(execution, event, name)
        end_ms = event.timestamp_ms
        if start_ms > 0 and end_ms >= start_ms:  # else `_duration` says why not
            seconds: float | None = (end_ms - start_ms) / 1000.0
        else:
            seconds = self._duration(Metric.ACTIVITY, start_ms, end_ms)
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
        if outcome == "success":
            self._payload(execution, event, child_name)
        if start is None:
            return
        start_ms, end_ms = start[3], event.timestamp_ms
        if start_ms > 0 and end_ms >= start_ms:  # else `_duration` says why not
            seconds: float | None = (end_ms - start_ms) / 1000.0
        else:
            seconds = self._duration(Metric.SUBORCHESTRATION, start_ms, end_ms)
        if seconds is not None:
            self._child(self.suborchestration_duration, _SUBORCHESTRATION_LABELS, labels).observe(
                seconds
            )

    def _on_system_call(self, key: tuple[str, int], execution: _Execution, event: Event) -> None:
        assert isinstance(event, ev.SystemCall)
        self._child(self.system_calls, _SYSCALL_LABELS, (event.op, "success")).inc()

    def _on_terminal(self, key: tuple[str, int], execution: _Execution, event: Event) -> None:
        status = ORCHESTRATION_STATUS[type(event)]
        name, version = execution.name, execution.version
        self._child(
            self.orchestration_completions,
            _COMPLETIONS_LABELS,
            (name, version, status, FINAL_TURN_COUNT),
        ).inc()
        if execution.started:
            start_ms, end_ms = execution.start_ms, event.timestamp_ms
            if start_ms > 0 and end_ms >= start_ms:  # else `_duration` says why not
                seconds: float | None = (end_ms - start_ms) / 1000.0
            else:
                seconds = self._duration(Metric.ORCHESTRATION, start_ms, end_ms)
            if seconds is not None:
                self._child(
                    self.orchestration_duration, _ORCHESTRATION_LABELS, (name, version, status)
                ).observe(seconds)
            self._child(self.history_size, _HISTORY_LABELS, (name,)).observe(execution.events)
        else:
            self._unavailable_inc(Metric.ORCHESTRATION, Reason.MISSING_START)
        self._ended_sizes(execution, event)
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
        "retry_attempt",
        "worker_id",
        "name",
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
_WORKER_LABELS: Final = ("worker_id", "event_type")

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
    ev.ExternalEvent: StoreMetrics._on_external_event,
    ev.ExternalEventPersistent: StoreMetrics._on_external_event,
    ev.OrchestrationCompleted: StoreMetrics._on_terminal,
    ev.OrchestrationFailed: StoreMetrics._on_terminal,
    ev.OrchestrationContinuedAsNew: StoreMetrics._on_terminal,
}
