"""The metrics exporter reads plain V1 pages as the store packs them
(`HistoryStore.plain_feed_page`, one decode per page) and every other page
row by row through the one row check; its metrics must not depend on which
route a page took."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

import eventstore
from eventstore import events as ev
from eventstore.metrics import StoreMetrics
from eventstore.metrics.exporter import FeedExporter
from eventstore.store import HistoryStore

T0 = 1_795_000_000_000
INSERT = (
    "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
    " VALUES (?, ?, ?, ?, ?)"
)


def _fill(path: Path, executions: int) -> None:
    """Executions appended through the store, interleaved one event at a time."""
    with eventstore.open(str(path)) as store:
        for n in range(executions):
            store.append(
                f"i{n}",
                1,
                [ev.OrchestrationStarted(event_id=1, name="O", version="1", input="0")],
            )
        for n in range(executions):
            store.append(f"i{n}", 1, [ev.ActivityScheduled(event_id=2, name="A", input="1")])
        for n in range(executions):
            failed = ev.ActivityFailed(
                event_id=3,
                source_event_id=2,
                details=ev.ApplicationError(kind="ActivityFailed", message="x", retryable=False),
            )
            store.append(f"i{n}", 1, [failed if n % 2 else ev.ActivityCompleted(
                event_id=3, source_event_id=2, result="r")])  # fmt: skip
        for n in range(executions):
            store.append(f"i{n}", 1, [ev.OrchestrationCompleted(event_id=4, output="o")])


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    _fill(tmp_path / "pages.db", 6)
    return eventstore.open(str(tmp_path / "pages.db"))


def test_a_plain_page_is_the_feed_in_one_piece(store: HistoryStore) -> None:
    page = store.plain_feed_page(0, 100)
    assert page is not None
    records = list(store.read_all())
    assert len(records) == 24
    assert list(zip(*page, strict=True)) == [
        (r.position, r.instance_id, r.execution_id, r.event) for r in records
    ]
    assert store.plain_feed_page(records[-1].position, 100) == ([], [], [], [])


def test_a_page_holding_a_legacy_row_is_not_plain(store: HistoryStore, tmp_path: Path) -> None:
    store.close()
    con = sqlite3.connect(tmp_path / "pages.db", isolation_level=None)
    con.execute(INSERT, ("legacy", 1, 2, "ActivityScheduled", LEGACY.decode()))
    con.close()
    with eventstore.open(str(tmp_path / "pages.db")) as reopened:
        assert reopened.plain_feed_page(0, 100) is None
        assert reopened.plain_feed_page(0, 24) is not None  # the page before it is plain


LEGACY = b'{"ActivityScheduled":{"event_id":2,"name":"A","input":"1"}}'


def _metrics_row_by_row(store: HistoryStore) -> StoreMetrics:
    """What the exporter computed before pages: every row through the row check."""
    metrics = StoreMetrics(CollectorRegistry())
    for row in store.read_all_raw():
        try:
            decoded = store.decode_raw(row)
        except eventstore.DecodeError as exc:
            assert exc.location is not None
            metrics.decode_failed(exc.location)
            continue
        metrics.decoded(decoded.generation, 1)
        metrics.track(row.instance_id, row.execution_id, decoded.event, len(row.event_data))
    return metrics


def _samples(metrics: StoreMetrics) -> list[tuple[str, list[tuple[str, str]], float]]:
    return sorted(
        (s.name, sorted(s.labels.items()), s.value)
        for family in metrics.collect()
        for s in family.samples
    )


@pytest.mark.parametrize("page", [5, 7, 5000])
def test_exporter_metrics_do_not_depend_on_the_route(tmp_path: Path, page: int) -> None:
    path = tmp_path / "mixed.db"
    _fill(path, 8)
    con = sqlite3.connect(path, isolation_level=None)
    # A legacy execution and a corrupt row among the V1 pages.
    con.execute(INSERT, ("legacy", 1, 1, "OrchestrationStarted",
                         '{"OrchestrationStarted":{"event_id":1,"name":"O","version":"1",'
                         '"input":"0"}}'))  # fmt: skip
    con.execute(INSERT, ("legacy", 1, 2, "ActivityScheduled", LEGACY.decode()))
    con.execute(INSERT, ("legacy", 1, 3, "ActivityCompleted", "<html>"))
    con.close()
    with eventstore.open(str(path)) as store:
        exporter = FeedExporter(store, CollectorRegistry(), page=page)
        result = exporter.poll()
        assert (result.rows, result.undecodable) == (35, 1)
        expected = _samples(_metrics_row_by_row(store))
        assert _samples(exporter.metrics) == expected
        counts = {dict(s[1]).get("generation"): s[2] for s in expected if "rows_decoded" in s[0]}
        assert counts["V1"] == 32 and counts["V0"] == 2
