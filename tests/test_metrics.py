"""Metrics computed from stored timestamps: exact figures, unavailable durations, caps.

Expectations are computed here, independently of eventstore, from the raw JSON
rows (`expected_from_rows`), then compared with what StoreMetrics reports.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import prometheus_client
import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

import eventstore
from eventstore import events as ev
from eventstore.cli import main
from eventstore.metrics import OTHER, Metric, Reason, StoreMetrics, activity_outcome
from eventstore.metrics.exporter import FeedExporter
from eventstore.store import HistoryStore
from tests.conftest import DUROXIDE_JSONL, FIXTURES, V0A_JSONL, V0B_JSONL, StoreFactory

SYSCALL = "__duroxide_syscall:"
ORCH = "duroxide_orchestration_duration_seconds"
ACT = "duroxide_activity_duration_seconds"
SUB = "duroxide_suborchestration_duration_seconds"
UNAVAILABLE = "eventstore_durations_unavailable_total"


# --------------------------------------------------------------------------
# Independent expectations from raw rows
# --------------------------------------------------------------------------


def _body(event_data: str) -> tuple[str, dict[str, Any]]:
    """(type, fields) of a raw event of either shape: V1 flat+`type`, V0 {"Type": {...}}."""
    data = json.loads(event_data)
    if "type" in data:
        return data["type"], data
    ((name, inner),) = data.items()
    return name, inner


def _outcome(body: dict[str, Any]) -> str:
    if "error" in body:  # V0a: a plain error string is an application error
        return "app_error"
    ((variant, inner),) = body["details"].items()
    if variant == "Application":
        return (
            "cancelled"
            if isinstance(inner["kind"], dict) and "Cancelled" in inner["kind"]
            else "app_error"
        )
    return {"Infrastructure": "infra_error", "Configuration": "config_error", "Poison": "poison"}[
        variant
    ]


@dataclass
class Expected:
    # histogram name -> labels tuple -> list of observed seconds
    durations: dict[str, dict[tuple[str, ...], list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    unavailable: Tally[tuple[str, str]] = field(default_factory=Tally)
    starts: Tally[tuple[str, str, str]] = field(default_factory=Tally)
    completions: Tally[tuple[str, str, str]] = field(default_factory=Tally)
    activity_executions: Tally[tuple[str, str, str]] = field(default_factory=Tally)
    history_sizes: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    system_calls: Tally[tuple[str, str]] = field(default_factory=Tally)


def expected_from_rows(rows: Iterable[dict[str, Any]]) -> Expected:
    """What the metrics must say about whole executions given as raw rows."""
    by_execution: dict[tuple[str, int], list[tuple[int, str, dict[str, Any]]]] = defaultdict(list)
    for row in rows:
        kind, body = _body(row["event_data"])
        by_execution[(row["instance_id"], row["execution_id"])].append(
            (row["event_id"], kind, body)
        )
    out = Expected()

    def duration(metric: str, labels: tuple[str, ...], start: int, end: int) -> None:
        if not start or not end:
            out.unavailable[(metric, Reason.MISSING_TIMESTAMP)] += 1
        elif end < start:
            out.unavailable[(metric, Reason.NEGATIVE_DURATION)] += 1
        else:
            out.durations[metric][labels].append((end - start) / 1000)

    for (_, execution_id), events in by_execution.items():
        events.sort()
        scheduled = {eid: (kind, body) for eid, kind, body in events if kind.endswith("Scheduled")}
        name = version = "unknown"
        start_ms = 0
        for _eid, kind, body in events:
            ts = body.get("timestamp_ms", 0)
            if kind == "OrchestrationStarted":
                name, version, start_ms = body["name"], body["version"], ts
                how = (
                    "continueAsNew"
                    if execution_id > 1
                    else "suborchestration"
                    if body.get("parent_instance")
                    else "client"
                )
                out.starts[(name, version, how)] += 1
            elif kind in ("ActivityCompleted", "ActivityFailed"):
                outcome = "success" if kind == "ActivityCompleted" else _outcome(body)
                s_kind, s_body = scheduled[body["source_event_id"]]
                assert s_kind == "ActivityScheduled"
                if s_body["name"].startswith(SYSCALL):
                    out.system_calls[(s_body["name"][len(SYSCALL) :], outcome)] += 1
                    continue
                tag = s_body.get("tag", "")
                out.activity_executions[(s_body["name"], outcome, tag)] += 1
                duration(ACT, (s_body["name"], outcome, tag), s_body.get("timestamp_ms", 0), ts)
            elif kind in ("SubOrchestrationCompleted", "SubOrchestrationFailed"):
                outcome = "success" if kind == "SubOrchestrationCompleted" else "failed"
                _, s_body = scheduled[body["source_event_id"]]
                duration(SUB, (name, s_body["name"], outcome), s_body.get("timestamp_ms", 0), ts)
            elif kind == "SystemCall":
                out.system_calls[(body["op"], "success")] += 1
            elif kind in (
                "OrchestrationCompleted",
                "OrchestrationFailed",
                "OrchestrationContinuedAsNew",
            ):
                status = {
                    "OrchestrationCompleted": "success",
                    "OrchestrationFailed": "failed",
                    "OrchestrationContinuedAsNew": "continuedAsNew",
                }[kind]
                out.completions[(name, version, status)] += 1
                duration(ORCH, (name, version, status), start_ms, ts)
                out.history_sizes[name].append(len(events))
    return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


# --------------------------------------------------------------------------
# Comparing with a registry
# --------------------------------------------------------------------------

LABELS = {
    ORCH: ("orchestration_name", "version", "status"),
    ACT: ("activity_name", "outcome", "tag"),
    SUB: ("parent_orchestration", "child_orchestration", "outcome"),
}


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def series(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called `name`, keyed by its sorted labels."""
    out = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def assert_matches(registry: CollectorRegistry, expected: Expected) -> None:
    for metric, names in LABELS.items():
        want = {
            tuple(sorted(zip(names, labels, strict=True))): (len(v), sum(v))
            for labels, v in expected.durations[metric].items()
        }
        counts = series(registry, f"{metric}_count")
        sums = series(registry, f"{metric}_sum")
        got = {key: (counts[key], sums[key]) for key in counts if counts[key]}
        assert got.keys() == want.keys(), metric
        for key, (count, total) in want.items():
            assert got[key][0] == count, (metric, key)
            assert got[key][1] == pytest.approx(total, rel=1e-12, abs=1e-12), (metric, key)
    got_unavailable = {
        (dict(k)["metric"], dict(k)["reason"]): v
        for k, v in series(registry, UNAVAILABLE).items()
        if v
    }
    assert got_unavailable == dict(expected.unavailable)
    got_starts = {
        (d["orchestration_name"], d["version"], d["initiated_by"]): v
        for k, v in series(registry, "duroxide_orchestration_starts_total").items()
        for d in [dict(k)]
    }
    assert got_starts == dict(expected.starts)
    got_completions = {
        (d["orchestration_name"], d["version"], d["status"]): v
        for k, v in series(registry, "duroxide_orchestration_completions_total").items()
        for d in [dict(k)]
    }
    assert got_completions == dict(expected.completions)
    got_executions = {
        (d["activity_name"], d["outcome"], d["tag"]): v
        for k, v in series(registry, "duroxide_activity_executions_total").items()
        for d in [dict(k)]
    }
    assert got_executions == dict(expected.activity_executions)
    got_syscalls = {
        (d["call"], d["outcome"]): v
        for k, v in series(registry, "eventstore_system_calls_total").items()
        for d in [dict(k)]
    }
    assert got_syscalls == dict(expected.system_calls)
    for name, sizes in expected.history_sizes.items():
        labels = {"orchestration_name": name}
        assert value(registry, "duroxide_orchestration_history_size_count", **labels) == len(sizes)
        assert value(registry, "duroxide_orchestration_history_size_sum", **labels) == sum(sizes)


def export_all(store: HistoryStore) -> FeedExporter:
    exporter = FeedExporter(store, CollectorRegistry())
    exporter.poll()
    return exporter


# --------------------------------------------------------------------------
# The real duroxide database
# --------------------------------------------------------------------------


def test_duroxide_database_exact_figures(duroxide_db: Path) -> None:
    con = sqlite3.connect(duroxide_db)
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM history")]
    con.close()
    expected = expected_from_rows(rows)
    # The fixture is what its README says: every kind of duration is present.
    assert sum(len(v) for v in expected.durations[ORCH].values()) == 26
    assert expected.durations[ACT] and expected.durations[SUB]
    assert expected.system_calls

    with eventstore.open(str(duroxide_db), readonly=True) as store:
        exporter = export_all(store)
    registry = exporter.registry
    assert_matches(registry, expected)
    assert value(registry, "eventstore_rows_decoded_total", generation="V1") == len(rows)
    assert value(registry, "eventstore_decode_errors_total") == 0
    assert exporter.metrics.open_executions == 0
    assert exporter.metrics.open_starts == 0
    # Spot check against hand-read rows: failing-7-0 ran from ...265020 to ...265342.
    failing = series(registry, f"{ORCH}_sum")
    assert sum(v for k, v in failing.items() if ("orchestration_name", "Failing") in k) == (
        pytest.approx(sum(expected.durations[ORCH][("Failing", "1.0.0", "failed")]))
    )


def test_duroxide_jsonl_matches_database(store: HistoryStore) -> None:
    rows = read_jsonl(DUROXIDE_JSONL)
    store.import_rows(rows)
    exporter = export_all(store)
    assert_matches(exporter.registry, expected_from_rows(rows))


# --------------------------------------------------------------------------
# Legacy and mixed histories: nothing observed, everything counted as unavailable
# --------------------------------------------------------------------------


@pytest.mark.parametrize("path", [V0A_JSONL, V0B_JSONL], ids=["v0a", "v0b"])
def test_legacy_histories_add_no_durations(store: HistoryStore, path: Path) -> None:
    rows = read_jsonl(path)
    store.import_rows(rows)
    expected = expected_from_rows(rows)
    assert not any(expected.durations[m] for m in LABELS)  # V0 carries no timestamps
    assert expected.unavailable[(ORCH, Reason.MISSING_TIMESTAMP)] == 26
    exporter = export_all(store)
    registry = exporter.registry
    assert_matches(registry, expected)
    for metric in LABELS:
        assert not any(series(registry, f"{metric}_count").values())
        assert not any(series(registry, f"{metric}_sum").values())
    generation = "V0a" if path == V0A_JSONL else "V0b"
    decoded = series(registry, "eventstore_rows_decoded_total")
    assert sum(decoded.values()) == len(rows)
    assert dict(decoded).get((("generation", "V1"),), 0) == 0
    assert sum(v for k, v in decoded.items() if k[0][1] in ("V0", generation)) == len(rows)


def test_mixed_generation_fixture(store: HistoryStore) -> None:
    """Histories whose rows span V0, V0a, V0b and V1: only V1-to-V1 pairs are observed."""
    rows = read_jsonl(FIXTURES / "legacy" / "mixed-history.jsonl")
    store.import_rows(rows)
    expected = expected_from_rows(rows)
    assert expected.unavailable[(ORCH, Reason.MISSING_TIMESTAMP)] > 0
    assert expected.durations[ORCH] and expected.durations[ACT]
    registry = export_all(store).registry
    assert_matches(registry, expected)
    decoded = {
        dict(k)["generation"]: v
        for k, v in series(registry, "eventstore_rows_decoded_total").items()
    }
    assert sum(decoded.values()) == len(rows)
    assert decoded["V1"] > 0 and decoded["V0"] > 0


def _v1(event: ev.Event, instance_id: str, execution_id: int = 1) -> dict[str, Any]:
    event = msgspec.structs.replace(event, instance_id=instance_id, execution_id=execution_id)
    return {
        "instance_id": instance_id,
        "execution_id": execution_id,
        "event_id": event.event_id,
        "event_type": event.event_type,
        "event_data": eventstore.encode(event).decode(),
    }


def test_mixed_history_legacy_start_v1_end(store: HistoryStore) -> None:
    legacy = [
        {
            "instance_id": "mixed-1",
            "execution_id": 1,
            "event_id": 1,
            "event_type": "OrchestrationStarted",
            "event_data": json.dumps(
                {
                    "OrchestrationStarted": {
                        "event_id": 1,
                        "name": "Mixed",
                        "version": "2.0.0",
                        "input": "null",
                        "parent_instance": None,
                        "parent_id": None,
                    }
                }
            ),
        },
        {
            "instance_id": "mixed-1",
            "execution_id": 1,
            "event_id": 2,
            "event_type": "ActivityScheduled",
            "event_data": json.dumps(
                {"ActivityScheduled": {"event_id": 2, "name": "Work", "input": "1"}}
            ),
        },
    ]
    store.import_rows(legacy)
    upgraded: list[ev.Event] = [
        ev.ActivityCompleted(event_id=3, source_event_id=2, result="2", timestamp_ms=1_000_500),
        ev.ActivityScheduled(event_id=4, name="Work", input="2", timestamp_ms=1_000_600),
        ev.ActivityCompleted(event_id=5, source_event_id=4, result="3", timestamp_ms=1_001_850),
        ev.OrchestrationCompleted(event_id=6, output="3", timestamp_ms=1_002_000),
    ]
    store.append("mixed-1", 1, upgraded, expected_last_event_id=2)
    rows = legacy + [_v1(e, "mixed-1") for e in upgraded]
    expected = expected_from_rows(rows)
    assert expected.unavailable == {
        (ORCH, Reason.MISSING_TIMESTAMP): 1,
        (ACT, Reason.MISSING_TIMESTAMP): 1,
    }
    assert dict(expected.durations[ACT]) == {("Work", "success", ""): [1.25]}
    registry = export_all(store).registry
    assert_matches(registry, expected)
    assert (
        value(
            registry, f"{ORCH}_count", orchestration_name="Mixed", version="2.0.0", status="success"
        )
        == 0
    )
    assert value(registry, f"{ACT}_count", activity_name="Work", outcome="success", tag="") == 1
    assert value(registry, f"{ACT}_sum", activity_name="Work", outcome="success", tag="") == 1.25


# --------------------------------------------------------------------------
# In process: the store's observer
# --------------------------------------------------------------------------

T0 = 1_795_000_000_000


def _started(name: str, ts: int, **extra: Any) -> ev.OrchestrationStarted:
    return ev.OrchestrationStarted(
        event_id=1, name=name, version="1.0.0", input="null", timestamp_ms=ts, **extra
    )


def _app(kind: Any = "ActivityFailed") -> ev.ApplicationError:
    return ev.ApplicationError(kind=kind, message="boom", retryable=False)


def observed_histories() -> Iterator[tuple[str, int, list[list[ev.Event]]]]:
    """Executions as batches of appends, with explicit timestamps."""
    # Every activity outcome, a tag, a system call, across several appends.
    yield (
        "orders-1",
        1,
        [
            [
                _started("Order", T0),
                ev.ActivityScheduled(event_id=2, name="Charge", input="1", timestamp_ms=T0 + 10),
                ev.ActivityScheduled(
                    event_id=3, name="Ship", input="1", tag="gpu", timestamp_ms=T0 + 10
                ),
                ev.ActivityScheduled(
                    event_id=4, name=SYSCALL + "new_guid", input="", timestamp_ms=T0 + 10
                ),
            ],
            [
                ev.ActivityCompleted(
                    event_id=5, source_event_id=4, result='"g"', timestamp_ms=T0 + 11
                ),
                ev.ActivityCompleted(
                    event_id=6, source_event_id=2, result="ok", timestamp_ms=T0 + 260
                ),
            ],
            [
                ev.ActivityFailed(
                    event_id=7, source_event_id=3, details=_app(), timestamp_ms=T0 + 2_010
                ),
                ev.ActivityScheduled(event_id=8, name="Charge", input="2", timestamp_ms=T0 + 2_020),
                ev.ActivityScheduled(event_id=9, name="Charge", input="3", timestamp_ms=T0 + 2_020),
                ev.ActivityScheduled(
                    event_id=10, name="Charge", input="4", timestamp_ms=T0 + 2_020
                ),
                ev.ActivityScheduled(
                    event_id=11, name="Charge", input="5", timestamp_ms=T0 + 2_020
                ),
            ],
            [
                ev.ActivityFailed(
                    event_id=12,
                    source_event_id=8,
                    details=ev.InfrastructureError(operation="fetch", message="x", retryable=True),
                    timestamp_ms=T0 + 2_030,
                ),
                ev.ActivityFailed(
                    event_id=13,
                    source_event_id=9,
                    details=ev.ConfigurationError(kind="Nondeterminism", resource="Order"),
                    timestamp_ms=T0 + 2_040,
                ),
                ev.ActivityFailed(
                    event_id=14,
                    source_event_id=10,
                    details=_app(ev.Cancelled(reason="stop")),
                    timestamp_ms=T0 + 2_050,
                ),
                # Clock skew: completed "before" it was scheduled.
                ev.ActivityCompleted(
                    event_id=15, source_event_id=11, result="x", timestamp_ms=T0 + 1_000
                ),
                ev.OrchestrationCompleted(event_id=16, output="done", timestamp_ms=T0 + 4_500),
            ],
        ],
    )
    # A parent with a sub-orchestration, then continue-as-new, then failure.
    yield (
        "parent-1",
        1,
        [
            [
                _started("Parent", T0 + 100),
                ev.SubOrchestrationScheduled(
                    event_id=2, name="Child", instance="child-1", input="1", timestamp_ms=T0 + 100
                ),
            ],
            [
                ev.SubOrchestrationCompleted(
                    event_id=3, source_event_id=2, result="1", timestamp_ms=T0 + 3_100
                ),
                ev.SubOrchestrationScheduled(
                    event_id=4, name="Child", instance="child-2", input="2", timestamp_ms=T0 + 3_200
                ),
            ],
            [
                ev.SubOrchestrationFailed(
                    event_id=5, source_event_id=4, details=_app(), timestamp_ms=T0 + 3_700
                ),
                ev.OrchestrationContinuedAsNew(event_id=6, input="2", timestamp_ms=T0 + 3_800),
            ],
        ],
    )
    yield (
        "child-1",
        1,
        [
            [
                _started("Child", T0 + 150, parent_instance="parent-1", parent_id=2),
                ev.OrchestrationCompleted(event_id=2, output="1", timestamp_ms=T0 + 3_050),
            ]
        ],
    )
    yield (
        "parent-1",
        2,
        [
            [_started("Parent", T0 + 3_900)],
            [
                ev.OrchestrationFailed(
                    event_id=2,
                    details=_app(ev.Cancelled(reason="operator")),
                    timestamp_ms=T0 + 63_900,
                )
            ],
        ],
    )


def _rows_of(histories: Iterable[tuple[str, int, list[list[ev.Event]]]]) -> list[dict[str, Any]]:
    return [
        _v1(event, instance_id, execution_id)
        for instance_id, execution_id, batches in histories
        for batch in batches
        for event in batch
    ]


def test_observer_exact_figures(store_factory: StoreFactory) -> None:
    registry = CollectorRegistry()
    metrics = StoreMetrics(registry)
    store = store_factory(observer=metrics)
    appends = 0
    events_by_type: Tally[str] = Tally()
    for instance_id, execution_id, batches in observed_histories():
        last = 0
        for batch in batches:
            last = store.append(
                instance_id, execution_id, batch, expected_last_event_id=last
            ).last_event_id
            appends += 1
            events_by_type.update(e.event_type for e in batch)
    expected = expected_from_rows(_rows_of(observed_histories()))
    # What the hand-built histories contain, so a wrong expectation cannot pass.
    assert dict(expected.durations[ACT]) == {
        ("Charge", "success", ""): [0.25],
        ("Ship", "app_error", "gpu"): [2.0],
        ("Charge", "infra_error", ""): [0.01],
        ("Charge", "config_error", ""): [0.02],
        ("Charge", "cancelled", ""): [0.03],
    }
    assert dict(expected.durations[SUB]) == {
        ("Parent", "Child", "success"): [3.0],
        ("Parent", "Child", "failed"): [0.5],
    }
    assert dict(expected.durations[ORCH]) == {
        ("Order", "1.0.0", "success"): [4.5],
        ("Parent", "1.0.0", "continuedAsNew"): [3.7],
        ("Child", "1.0.0", "success"): [2.9],
        ("Parent", "1.0.0", "failed"): [60.0],
    }
    assert expected.unavailable == {(ACT, Reason.NEGATIVE_DURATION): 1}
    assert_matches(registry, expected)
    # The 60 s cancelled execution lands in the 60 s bucket, not the 30 s one.
    labels = {"orchestration_name": "Parent", "version": "1.0.0", "status": "failed"}
    assert value(registry, f"{ORCH}_bucket", le="30.0", **labels) == 0
    assert value(registry, f"{ORCH}_bucket", le="60.0", **labels) == 1
    # The store's own metrics.
    assert value(registry, "eventstore_append_duration_seconds_count") == appends
    for event_type, count in events_by_type.items():
        assert value(registry, "eventstore_events_appended_total", event_type=event_type) == count
    assert metrics.open_executions == 0 and metrics.open_starts == 0


def test_in_flight_state_is_kept_then_dropped(store_factory: StoreFactory) -> None:
    metrics = StoreMetrics()
    store = store_factory(observer=metrics)
    store.append(
        "i",
        1,
        [_started("O", T0), ev.ActivityScheduled(event_id=2, name="A", input="", timestamp_ms=T0)],
    )
    assert (metrics.open_executions, metrics.open_starts) == (1, 1)
    assert (
        value(metrics.registry, f"{ACT}_count", activity_name="A", outcome="success", tag="") == 0
    )
    store.append(
        "i",
        1,
        [
            ev.ActivityScheduled(event_id=3, name="A", input="", timestamp_ms=T0 + 5),
            ev.ActivityCompleted(event_id=4, source_event_id=2, result="", timestamp_ms=T0 + 40),
        ],
        expected_last_event_id=2,
    )
    assert (metrics.open_executions, metrics.open_starts) == (1, 1)
    assert (
        value(metrics.registry, f"{ACT}_sum", activity_name="A", outcome="success", tag="") == 0.04
    )
    # The execution ends with event 3 never completed: its state goes with it.
    store.append(
        "i",
        1,
        [ev.OrchestrationCompleted(event_id=5, output="", timestamp_ms=T0 + 50)],
        expected_last_event_id=4,
    )
    assert (metrics.open_executions, metrics.open_starts) == (0, 0)
    assert value(metrics.registry, "eventstore_metrics_open_starts") == 0


def test_end_without_start_is_unavailable(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    with eventstore.open(path) as plain:
        plain.append(
            "i",
            1,
            [
                _started("O", T0),
                ev.ActivityScheduled(event_id=2, name="A", input="", timestamp_ms=T0),
            ],
        )
    metrics = StoreMetrics()
    with eventstore.open(path, observer=metrics) as observed:
        observed.append(
            "i",
            1,
            [
                ev.ActivityCompleted(event_id=3, source_event_id=2, result="", timestamp_ms=T0 + 9),
                ev.OrchestrationCompleted(event_id=4, output="", timestamp_ms=T0 + 10),
            ],
            expected_last_event_id=2,
        )
    r = metrics.registry
    assert value(r, UNAVAILABLE, metric=Metric.ACTIVITY, reason=Reason.MISSING_START) == 1
    assert value(r, UNAVAILABLE, metric=Metric.ORCHESTRATION, reason=Reason.MISSING_START) == 1
    assert not any(series(r, f"{ACT}_count").values())
    assert not any(series(r, f"{ORCH}_count").values())
    assert (
        value(
            r,
            "duroxide_orchestration_completions_total",
            orchestration_name="unknown",
            version="unknown",
            status="success",
            final_turn_count="unknown",
        )
        == 1
    )
    assert metrics.open_executions == 0


def test_events_across_polls_equal_one_catch_up(store_factory: StoreFactory) -> None:
    """State carries over between polls: a start now, its completion later."""
    store = store_factory()
    incremental = FeedExporter(store, CollectorRegistry(), page=3)
    for instance_id, execution_id, batches in observed_histories():
        last = 0
        for batch in batches:
            last = store.append(
                instance_id, execution_id, batch, expected_last_event_id=last
            ).last_event_id
            incremental.poll()
    once = export_all(store)
    assert_matches(incremental.registry, expected_from_rows(_rows_of(observed_histories())))
    for name in (f"{ORCH}_sum", f"{ACT}_sum", f"{SUB}_sum", UNAVAILABLE):
        assert series(incremental.registry, name) == series(once.registry, name)
    assert incremental.position == once.position
    assert incremental.poll().rows == 0


# --------------------------------------------------------------------------
# Labels, registries, outcomes
# --------------------------------------------------------------------------


def test_label_values_are_capped(store_factory: StoreFactory) -> None:
    metrics = StoreMetrics(max_label_values=2)
    store = store_factory(observer=metrics)
    names = ["A", "B", "C", "D", "C"]
    batch: list[ev.Event] = [_started("O", T0)]
    for n, name in enumerate(names):
        batch.append(ev.ActivityScheduled(event_id=2 + 2 * n, name=name, input="", timestamp_ms=T0))
        batch.append(
            ev.ActivityCompleted(
                event_id=3 + 2 * n, source_event_id=2 + 2 * n, result="", timestamp_ms=T0 + 100
            )
        )
    store.append("i", 1, batch)
    r = metrics.registry
    got = {
        dict(k)["activity_name"]: v
        for k, v in series(r, "duroxide_activity_executions_total").items()
    }
    assert got == {"A": 1, "B": 1, OTHER: 3}
    assert value(r, f"{ACT}_count", activity_name=OTHER, outcome="success", tag="") == 3
    # Each folded occurrence is counted, per metric that folded it.
    assert value(r, "eventstore_label_overflow_total", label="activity_name") == 6
    assert metrics.limiter.distinct("activity_name") == 2


def test_label_limits_per_label_and_validation() -> None:
    metrics = StoreMetrics(max_label_values=5, label_limits={"tag": 1})
    assert metrics.limiter("tag", "a") == "a"
    assert metrics.limiter("tag", "b") == OTHER
    assert metrics.limiter("activity_name", "b") == "b"
    with pytest.raises(ValueError, match="at least 1"):
        StoreMetrics(max_label_values=0)


def test_no_payload_in_labels(store_factory: StoreFactory) -> None:
    metrics = StoreMetrics()
    store = store_factory(observer=metrics)
    secret = "s3cr3t-payload"
    store.append(
        "i",
        1,
        [
            ev.OrchestrationStarted(
                event_id=1, name="O", version="1.0.0", input=secret, timestamp_ms=T0
            ),
            ev.ActivityScheduled(event_id=2, name="A", input=secret, timestamp_ms=T0),
            ev.ActivityFailed(
                event_id=3,
                source_event_id=2,
                details=ev.ApplicationError(kind="ActivityFailed", message=secret, retryable=False),
                timestamp_ms=T0 + 1,
            ),
            ev.OrchestrationCompleted(event_id=4, output=secret, timestamp_ms=T0 + 2),
        ],
    )
    text = generate_latest(metrics.registry).decode()
    assert secret not in text
    assert '"i"' not in text  # nor instance ids


def test_global_registry_untouched() -> None:
    before = set(prometheus_client.REGISTRY._names_to_collectors)
    metrics = StoreMetrics()
    exporter = FeedExporter(eventstore.open(":memory:"), CollectorRegistry())
    assert set(prometheus_client.REGISTRY._names_to_collectors) == before
    assert metrics.registry is not prometheus_client.REGISTRY
    assert exporter.registry is not prometheus_client.REGISTRY
    exporter.store.close()


@pytest.mark.parametrize(
    ("details", "outcome"),
    [
        (None, "success"),
        (_app(), "app_error"),
        (_app("Panicked"), "app_error"),
        (_app(ev.Cancelled(reason="r")), "cancelled"),
        (ev.InfrastructureError(operation="o", message="m", retryable=False), "infra_error"),
        (ev.ConfigurationError(kind="Nondeterminism", resource="r"), "config_error"),
        (
            ev.PoisonError(
                attempt_count=5,
                max_attempts=5,
                message_type=ev.OrchestrationMessage(instance="i", execution_id=1),
                message="m",
            ),
            "poison",
        ),
        (ev.UnknownErrorDetails(name="Future", value={}), "unknown_error"),
    ],
)
def test_activity_outcomes(details: ev.ErrorDetails | None, outcome: str) -> None:
    assert activity_outcome(details) == outcome


def test_observer_counts_decodes_and_failures() -> None:
    metrics = StoreMetrics()
    metrics.decoded(eventstore.Generation.V0A, 3)
    metrics.decode_failed(eventstore.errors.Location(instance_id="i"))
    assert value(metrics.registry, "eventstore_rows_decoded_total", generation="V0a") == 3
    assert value(metrics.registry, "eventstore_decode_errors_total") == 1


# --------------------------------------------------------------------------
# Undecodable rows
# --------------------------------------------------------------------------


def test_undecodable_row_is_counted_logged_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.db"
    with eventstore.open(str(path)) as store:
        store.append("good", 1, [_started("O", T0)])
    con = sqlite3.connect(path)
    con.execute(
        "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
        " VALUES ('bad', 1, 1, 'OrchestrationStarted', '{\"not\": an event')"
    )
    con.commit()
    con.close()
    with eventstore.open(str(path)) as store:
        store.append(
            "good",
            1,
            [ev.OrchestrationCompleted(event_id=2, output="", timestamp_ms=T0 + 700)],
            expected_last_event_id=1,
        )
    with eventstore.open(str(path), readonly=True) as store, caplog.at_level(logging.WARNING):
        exporter = FeedExporter(store, CollectorRegistry())
        result = exporter.poll()
    assert (result.rows, result.undecodable) == (3, 1)
    r = exporter.registry
    assert value(r, "eventstore_decode_errors_total") == 1
    assert value(r, f"{ORCH}_sum", orchestration_name="O", version="1.0.0", status="success") == 0.7
    assert any("'bad'" in m and "position 2" in m for m in caplog.messages)


# --------------------------------------------------------------------------
# The exposition and the CLI
# --------------------------------------------------------------------------


def require_binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed: run `sudo bash scripts/system-deps.sh`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_exposition_passes_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    store = eventstore.open(str(tmp_path / "all.db"))
    store.import_rows(read_jsonl(V0A_JSONL))
    store.import_rows(_rows_of(observed_histories()))
    exporter = export_all(store)
    text = exporter.exposition()
    assert b"eventstore_durations_unavailable_total" in text
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    store.close()


def test_cli_dump(duroxide_db: Path) -> None:
    result = CliRunner().invoke(main, ["metrics", "dump", str(duroxide_db)])
    assert result.exit_code == 0, result.output
    assert "duroxide_orchestration_duration_seconds_bucket" in result.stdout
    assert 'duroxide_orchestration_starts_total{initiated_by="continueAsNew"' in result.stdout


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["metrics", "dump", str(tmp_path / "nope.db")])
    assert missing.exit_code == 1
    assert "Traceback" not in missing.output and "Error:" in missing.output
    bad = runner.invoke(main, ["metrics", "serve", str(tmp_path / "nope.db"), "--interval", "soon"])
    assert bad.exit_code == 2
    assert "is not a duration" in bad.output


def test_renumbered_positions_restart_the_feed(duroxide_db: Path) -> None:
    """VACUUM may renumber a duroxide-created table's rowids: detected, re-read, counted."""
    with eventstore.open(str(duroxide_db), readonly=True) as store:
        assert not store.stable_positions
        exporter = FeedExporter(store, CollectorRegistry())
        exporter.poll()
        before = value(
            exporter.registry,
            "duroxide_orchestration_starts_total",
            orchestration_name="Failing",
            version="1.0.0",
            initiated_by="client",
        )
        assert before == 2
        # Maintenance that renumbers rowids, as VACUUM may: rows rewritten without one
        # execution, so every later row moves to a lower rowid.
        con = sqlite3.connect(duroxide_db)
        with con:
            con.execute(
                "CREATE TEMP TABLE kept AS SELECT instance_id, execution_id, event_id,"
                " event_type, event_data, created_at FROM history"
                " WHERE instance_id != 'failing-7-0' ORDER BY rowid"
            )
            con.execute("DELETE FROM history")
            con.execute("INSERT INTO history SELECT * FROM kept")
        con.close()
        exporter.poll()
        registry = exporter.registry
        con = sqlite3.connect(duroxide_db)
        con.row_factory = sqlite3.Row
        rows = [dict(r) for r in con.execute("SELECT * FROM history")]
        con.close()
        assert_matches(registry, expected_from_rows(rows))
        assert value(registry, "eventstore_exporter_feed_resets_total") == 1
        assert value(registry, "eventstore_rows_decoded_total", generation="V1") == len(rows)
