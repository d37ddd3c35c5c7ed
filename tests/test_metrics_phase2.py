"""Metrics from the phase-2 metadata: retry attempts and workers, capped like every label."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from eventstore import events as ev
from eventstore.metrics import OTHER, StoreMetrics

T0 = 1_795_000_000_000


def _samples(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == name
    }


def _activity(metrics: StoreMetrics, n: int, **scheduled: object) -> None:
    key = (f"i-{n}", 1)
    metrics.track(
        *key,
        ev.OrchestrationStarted(
            event_id=1, name="O", version="1", input="null", timestamp_ms=T0, worker_id=f"w{n}"
        ),
    )
    metrics.track(
        *key, ev.ActivityScheduled(event_id=2, name="A", input="1", timestamp_ms=T0, **scheduled)
    )
    metrics.track(
        *key,
        ev.ActivityCompleted(
            event_id=3,
            source_event_id=2,
            result="1",
            timestamp_ms=T0 + 10,
            completed_by_worker_id=f"w{n}",
        ),
    )


def test_retry_count_labels_the_activity_execution_where_present() -> None:
    registry = CollectorRegistry()
    metrics = StoreMetrics(registry)
    _activity(metrics, 1, retry_count=2)
    _activity(metrics, 2)  # no retry_count: duroxide's "0"
    found = _samples(registry, "duroxide_activity_executions_total")
    attempts = {dict(k)["retry_attempt"]: v for k, v in found.items()}
    assert attempts == {"2": 1.0, "0": 1.0}


def test_workers_are_counted_by_event_type() -> None:
    registry = CollectorRegistry()
    metrics = StoreMetrics(registry)
    _activity(metrics, 1, scheduled_by_worker_id="w9")
    found = {
        (dict(k)["worker_id"], dict(k)["event_type"]): v
        for k, v in _samples(registry, "eventstore_worker_events_total").items()
    }
    assert found == {
        ("w1", "OrchestrationStarted"): 1.0,
        ("w9", "ActivityScheduled"): 1.0,
        ("w1", "ActivityCompleted"): 1.0,
    }


def test_worker_and_retry_labels_are_capped() -> None:
    registry = CollectorRegistry()
    metrics = StoreMetrics(registry, label_limits={"worker_id": 3, "retry_attempt": 2})
    for n in range(10):
        _activity(metrics, n, retry_count=n)
    workers = {dict(k)["worker_id"] for k in _samples(registry, "eventstore_worker_events_total")}
    assert workers == {"w0", "w1", "w2", OTHER}
    attempts = {
        dict(k)["retry_attempt"] for k in _samples(registry, "duroxide_activity_executions_total")
    }
    assert attempts == {"0", "1", OTHER}
    overflow = _samples(registry, "eventstore_label_overflow_total")
    assert overflow[(("label", "worker_id"),)] > 0
