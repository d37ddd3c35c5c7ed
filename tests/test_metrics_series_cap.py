"""Every metric is capped in series, across label combinations (issue 15 item 7).

Capping each label's values does not bound a metric: 150 names x 150
versions stay under a 200-value label cap and still make 22,500 series of one
histogram. These tests feed exactly that and count what is rendered.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import eventstore
from eventstore import events as ev
from eventstore.cli import main
from eventstore.metrics import DEFAULT_MAX_SERIES, OTHER, StoreMetrics

T0 = 1_795_000_000_000
NAMES = 150
VERSIONS = 150
DURATION = "duroxide_orchestration_duration_seconds"


def _execution(metrics: StoreMetrics, name: str, version: str, n: int) -> None:
    instance = f"i-{n}"
    metrics.track(
        instance,
        1,
        ev.OrchestrationStarted(
            event_id=1, name=name, version=version, input="null", timestamp_ms=T0
        ),
    )
    metrics.track(
        instance, 1, ev.OrchestrationCompleted(event_id=2, output="null", timestamp_ms=T0 + 1500)
    )


def _label_sets(registry: CollectorRegistry, family_name: str) -> set[tuple[tuple[str, str], ...]]:
    """The distinct label combinations (series) of one family, `le` aside."""
    found = set()
    for family in registry.collect():
        if family.name == family_name:
            for sample in family.samples:
                labels = {k: v for k, v in sample.labels.items() if k != "le"}
                found.add(tuple(sorted(labels.items())))
    return found


def test_series_are_capped_per_metric_across_label_combinations() -> None:
    registry = CollectorRegistry()
    metrics = StoreMetrics(registry)
    n = 0
    for name in range(NAMES):
        for version in range(VERSIONS):
            _execution(metrics, f"Orch{name}", f"{version}.0.0", n)
            n += 1
    # Under the per-label cap (200), so only the series cap can bound this.
    assert metrics.limiter.distinct("orchestration_name") == NAMES
    for family in ("duroxide_orchestration_starts", DURATION):
        found = _label_sets(registry, family)
        assert len(found) == DEFAULT_MAX_SERIES
        # The overflow series: every label "other".
        assert {labels for labels in found if dict(labels)["version"] == OTHER} == {
            tuple((name, OTHER) for name, _ in next(iter(found)))
        }
    # Totals are preserved: every execution is counted once, folded or not.
    assert registry.get_sample_value(f"{DURATION}_count", {}) is None
    total = sum(
        s.value
        for f in registry.collect()
        if f.name == DURATION
        for s in f.samples
        if s.name == f"{DURATION}_count"
    )
    assert total == NAMES * VERSIONS
    starts = sum(
        s.value
        for f in registry.collect()
        if f.name == "duroxide_orchestration_starts"
        for s in f.samples
        if s.name.endswith("_total")
    )
    assert starts == NAMES * VERSIONS
    folded = NAMES * VERSIONS - (DEFAULT_MAX_SERIES - 1)
    assert (
        registry.get_sample_value("eventstore_series_overflow_total", {"metric": DURATION})
        == folded
    )
    # Every family, not only the two above, stays within the cap.
    for family in registry.collect():
        series = {
            frozenset((k, v) for k, v in x.labels.items() if k != "le") for x in family.samples
        }
        assert len(series) <= DEFAULT_MAX_SERIES, family.name
    # What a scrape or `metrics dump` renders follows the cap, not the data:
    # uncapped, these executions rendered 47 MB (384,000 lines); capped, ~4.3 MB.
    assert len(generate_latest(registry)) < 6_000_000


def test_the_cap_is_configurable_and_validated() -> None:
    metrics = StoreMetrics(max_series=10)
    for n in range(40):
        _execution(metrics, f"O{n}", "1", n)
    assert len(_label_sets(metrics.registry, DURATION)) == 10
    with pytest.raises(ValueError, match="max_series"):
        StoreMetrics(max_series=1)


def test_metrics_dump_respects_the_series_cap(tmp_path: Path) -> None:
    target = str(tmp_path / "cap.db")

    with eventstore.open(target) as store:
        for n in range(12):
            for version in range(5):
                instance = f"o{n}-v{version}"
                store.append(
                    instance,
                    1,
                    [
                        ev.OrchestrationStarted(
                            event_id=1,
                            name=f"O{n}",
                            version=f"{version}.0",
                            input="null",
                            timestamp_ms=T0,
                        ),
                        ev.OrchestrationCompleted(event_id=2, output="null", timestamp_ms=T0 + 10),
                    ],
                )
    result = CliRunner().invoke(main, ["metrics", "dump", target, "--max-series", "7"])
    assert result.exit_code == 0, result.output
    families = {f.name: f for f in text_string_to_metric_families(result.output)}
    duration = families[DURATION]
    combos = {
        tuple(sorted((k, v) for k, v in s.labels.items() if k != "le")) for s in duration.samples
    }
    assert len(combos) == 7
    counts = [s.value for s in duration.samples if s.name == f"{DURATION}_count"]
    assert sum(counts) == 60
