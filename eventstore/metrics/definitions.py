"""The metrics StoreMetrics keeps: duroxide's names and labels, and the store's own.

Declared here, apart from the code that updates them, so that each list of
families reads as the metrics specification it follows. Every family gets
the same series cap (`eventstore.metrics.limits`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from .durations import (
    ACTIVITY_BUCKETS,
    APPEND_LATENCY_BUCKETS,
    HISTORY_BYTES_BUCKETS,
    HISTORY_SIZE_BUCKETS,
    ORCHESTRATION_BUCKETS,
    SUBORCHESTRATION_BUCKETS,
)
from .families import CounterFamily, Family, HistogramFamily, MaxGaugeFamily

__all__ = ["MetricDefinitions"]

_F = TypeVar("_F", bound=Family)


class MetricDefinitions:
    """Declares every family as an attribute; StoreMetrics updates them."""

    def _define(self, max_series: int, on_overflow: Callable[[str], None]) -> None:
        self._families: list[Family] = []
        self._max_series = max_series
        self._on_series_overflow = on_overflow
        # Defined first: the other families count their overflow in it.
        self.series_overflow = self._add(
            capped=False,
            family=CounterFamily(
                "eventstore_series_overflow",
                "Observations folded into the all-'other' series because the metric "
                "reached its series cap, by metric.",
                ["metric"],
            ),
        )
        self._define_orchestrations()
        self._define_activities()
        self._define_own()
        self._define_metadata()
        self._define_sizes()

    def _add(self, family: _F, *, capped: bool = True) -> _F:
        # The two overflow counters are labelled by our own names (metric and
        # label names, a fixed set); capping them would fold the overflow of
        # the overflow counter into itself.
        if capped:
            family.limit(self._max_series, self._on_series_overflow)
        self._families.append(family)
        return family

    def _define_orchestrations(self) -> None:
        self.orchestration_starts = self._add(
            CounterFamily(
                "duroxide_orchestration_starts",
                "Orchestration executions started (from OrchestrationStarted events).",
                ["orchestration_name", "version", "initiated_by"],
            )
        )
        self.orchestration_completions = self._add(
            CounterFamily(
                "duroxide_orchestration_completions",
                "Orchestration executions ended (Completed, Failed, ContinuedAsNew).",
                ["orchestration_name", "version", "status", "final_turn_count"],
            )
        )
        self.orchestration_duration = self._add(
            HistogramFamily(
                "duroxide_orchestration_duration_seconds",
                "OrchestrationStarted to the execution's terminal event, from stored timestamps.",
                ["orchestration_name", "version", "status"],
                ORCHESTRATION_BUCKETS,
            )
        )
        self.history_size = self._add(
            HistogramFamily(
                "duroxide_orchestration_history_size",
                "Events in an execution's history when it ended.",
                ["orchestration_name"],
                HISTORY_SIZE_BUCKETS,
            )
        )

    def _define_activities(self) -> None:
        self.activity_executions = self._add(
            CounterFamily(
                "duroxide_activity_executions",
                "Activity executions ended (ActivityCompleted / ActivityFailed).",
                ["activity_name", "outcome", "retry_attempt", "tag"],
            )
        )
        self.activity_duration = self._add(
            HistogramFamily(
                "duroxide_activity_duration_seconds",
                "ActivityScheduled to its ActivityCompleted / ActivityFailed, "
                "from stored timestamps.",
                ["activity_name", "outcome", "tag"],
                ACTIVITY_BUCKETS,
            )
        )
        self.suborchestration_calls = self._add(
            CounterFamily(
                "duroxide_suborchestration_calls",
                "Sub-orchestration calls ended (SubOrchestrationCompleted / Failed).",
                ["parent_orchestration", "child_orchestration", "outcome"],
            )
        )
        self.suborchestration_duration = self._add(
            HistogramFamily(
                "duroxide_suborchestration_duration_seconds",
                "SubOrchestrationScheduled to its SubOrchestrationCompleted / Failed, "
                "from stored timestamps.",
                ["parent_orchestration", "child_orchestration", "outcome"],
                SUBORCHESTRATION_BUCKETS,
            )
        )

    def _define_own(self) -> None:
        self.events_appended = self._add(
            CounterFamily(
                "eventstore_events_appended",
                "Events appended through this store, by event type.",
                ["event_type"],
            )
        )
        self.append_duration = self._add(
            HistogramFamily(
                "eventstore_append_duration_seconds",
                "Wall time of one append call (validate, encode, write).",
                (),
                APPEND_LATENCY_BUCKETS,
            )
        )
        self.rows_decoded = self._add(
            CounterFamily(
                "eventstore_rows_decoded",
                "Stored rows decoded, by the generation they were stored in.",
                ["generation"],
            )
        )
        self.decode_errors = self._add(
            CounterFamily(
                "eventstore_decode_errors",
                "Stored rows that could not be decoded.",
            )
        )
        self.durations_unavailable = self._add(
            CounterFamily(
                "eventstore_durations_unavailable",
                "Durations that could not be computed, by histogram and reason.",
                ["metric", "reason"],
            )
        )
        self.system_calls = self._add(
            CounterFamily(
                "eventstore_system_calls",
                "duroxide system calls (reserved activity names, legacy SystemCall events); "
                "kept out of the duroxide_activity_* metrics.",
                ["call", "outcome"],
            )
        )
        self.label_overflow = self._add(
            capped=False,
            family=CounterFamily(
                "eventstore_label_overflow",
                "Label values folded into 'other' because the label reached its cap.",
                ["label"],
            ),
        )

    def _define_metadata(self) -> None:
        """From the phase-2 metadata, where events carry it."""
        self.worker_events = self._add(
            CounterFamily(
                "eventstore_worker_events",
                "Events that name the worker that wrote them (phase-2 worker_id on "
                "OrchestrationStarted, scheduled_by_worker_id, completed_by_worker_id), "
                "by worker and event type.",
                ["worker_id", "event_type"],
            )
        )

    def _define_sizes(self) -> None:
        """What `eventstore sizes` reports, against duroxide's limits (eventstore.sizes)."""
        self.history_bytes = self._add(
            HistogramFamily(
                "eventstore_history_bytes",
                "Stored bytes of an execution's history when it ended (duroxide's "
                "MAX_HISTORY_BYTES is 5 MiB).",
                ["orchestration_name"],
                HISTORY_BYTES_BUCKETS,
            )
        )
        self.history_max_bytes = self._add(
            MaxGaugeFamily(
                "eventstore_history_max_bytes",
                "The largest history an execution of the orchestration ended with, in bytes.",
                ["orchestration_name"],
            )
        )
        self.payload_max_bytes = self._add(
            MaxGaugeFamily(
                "eventstore_payload_max_bytes",
                "The largest payload seen, in bytes, by kind and name.",
                ["kind", "name"],
            )
        )
        self.size_limit_exceeded = self._add(
            CounterFamily(
                "eventstore_size_limit_exceeded",
                "Histories (limit=history) and payloads (limit=payload, or small_value for "
                "external event data) past duroxide's size limits, by orchestration.",
                ["orchestration_name", "limit"],
            )
        )
