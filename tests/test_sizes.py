"""`eventstore sizes` and the exporter's size metrics: figures computed here from
the raw rows, against duroxide's limits; advice to continue as new."""

from __future__ import annotations

import json
import sqlite3
import tracemalloc
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

import eventstore
from eventstore import events as ev
from eventstore.cli import main
from eventstore.metrics.exporter import FeedExporter
from eventstore.sizes import MAX_HISTORY_BYTES, MAX_PAYLOAD_BYTES
from eventstore.sizes.advisor import measure

T0 = 1_795_000_000_000
KIB = 1024
MIB = 1024 * KIB


def grower(results: list[str], name: str = "Grower", end: bool = True) -> list[ev.Event]:
    """An orchestration whose activities return the given results."""
    events: list[ev.Event] = [
        ev.OrchestrationStarted(event_id=1, name=name, version="1", input='"go"', timestamp_ms=T0)
    ]
    for result in results:
        n = len(events) + 1
        events.append(ev.ActivityScheduled(event_id=n, name="Fetch", input="1", timestamp_ms=T0))
        events.append(
            ev.ActivityCompleted(event_id=n + 1, source_event_id=n, result=result, timestamp_ms=T0)
        )
    if end:
        events.append(
            ev.OrchestrationCompleted(event_id=len(events) + 1, output='"ok"', timestamp_ms=T0)
        )
    return events


def payload(size: int, char: str = "x") -> str:
    """A JSON string document of `size` bytes in UTF-8."""
    body = char * ((size - 2) // len(char.encode()))
    return f'"{body}"'


@pytest.fixture
def sized_db(tmp_path: Path) -> Path:
    path = tmp_path / "sizes.db"
    with eventstore.open(str(path)) as store:
        store.append("big-1", 1, grower([payload(400 * KIB)] * 3))  # past 1 MiB
        store.append("huge-1", 1, grower([payload(3 * MIB + 10), payload(2 * MIB + 512 * KIB)]))
        store.append("small-1", 1, grower(['"s"'], name="Small"))
        store.append("utf-1", 1, grower([payload(3000, "é")], name="Accents"))
        store.append("running-1", 1, grower([payload(700 * KIB)] * 2, name="Runner", end=False))
    return path


def raw(path: Path) -> list[tuple[str, int, dict[str, Any], int]]:
    con = sqlite3.connect(path)
    rows = [
        (i, e, json.loads(d), len(d.encode()))
        for i, e, d in con.execute(
            "SELECT instance_id, execution_id, event_data FROM history ORDER BY rowid"
        )
    ]
    con.close()
    return rows


def test_sizes_against_the_raw_rows(sized_db: Path) -> None:
    rows = raw(sized_db)
    by_execution: dict[tuple[str, int], int] = defaultdict(int)
    for i, e, _, size in rows:
        by_execution[(i, e)] += size
    result = CliRunner().invoke(main, ["sizes", str(sized_db), "--json", "--top", "3"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["limits"]["history_bytes"] == 5 * MIB == MAX_HISTORY_BYTES
    assert report["limits"]["payload_bytes"] == 3 * MIB == MAX_PAYLOAD_BYTES
    executions = report["executions"]
    assert executions["count"] == 5 and executions["events"] == len(rows)
    assert executions["bytes"] == sum(by_execution.values())
    largest = executions["largest"]
    expected = sorted(by_execution.items(), key=lambda kv: -kv[1])[:3]
    assert [(e["instance_id"], e["bytes"]) for e in largest] == [(k[0], v) for k, v in expected]
    assert largest[0]["instance_id"] == "huge-1" and largest[0]["percent_of_limit"] > 100
    assert executions["over_limit"] == 1
    assert executions["over_threshold"] == 3  # huge, big, running (1 MiB default)

    payloads = report["payloads"]
    assert payloads["over_limit"] == 1
    top = payloads["largest"][0]
    assert (top["kind"], top["name"], top["field"], top["bytes"]) == (
        "activity",
        "Fetch",
        "result",
        3 * MIB + 10,
    )
    assert (top["instance_id"], top["event_id"]) == ("huge-1", 3)
    by_name = {(n["kind"], n["name"]): n for n in payloads["by_name"]}
    assert by_name[("activity", "Fetch")]["max_bytes"] == 3 * MIB + 10
    fetches = [d["result"] for _, _, d, _ in rows if d["type"] == "ActivityCompleted"]
    assert by_name[("activity", "Fetch")]["payloads"] == 2 * len(fetches)  # inputs and results
    assert by_name[("orchestration", "Accents")]["max_bytes"] == len(b'"go"')
    everything = json.loads(
        CliRunner().invoke(main, ["sizes", str(sized_db), "--json", "--top", "50"]).output
    )
    accents = next(
        p
        for p in everything["payloads"]["largest"]
        if p["instance_id"] == "utf-1" and p["field"] == "result"
    )
    assert accents["bytes"] == 3000  # bytes in UTF-8: 1,499 characters


def test_the_advice_names_what_should_continue_as_new(sized_db: Path) -> None:
    report = json.loads(CliRunner().invoke(main, ["sizes", str(sized_db), "--json"]).output)
    advice = {o["name"]: o["advice"] for o in report["orchestrations"]}
    assert "past duroxide's history limit" in advice["Grower"]
    assert "grew past 1,048,576 bytes: continue as new" in advice["Runner"]
    assert advice["Small"] is None and advice["Accents"] is None
    runner = {o["name"]: o for o in report["orchestrations"]}["Runner"]
    assert runner["running"] == 1
    relaxed = json.loads(
        CliRunner().invoke(main, ["sizes", str(sized_db), "--json", "--threshold", "2MiB"]).output
    )
    advice = {o["name"]: o["advice"] for o in relaxed["orchestrations"]}
    assert advice["Runner"] is None and relaxed["threshold_bytes"] == 2 * MIB
    text = CliRunner().invoke(main, ["sizes", str(sized_db)], terminal_width=200)
    assert text.exit_code == 0, text.output
    assert "Largest executions" in text.output and "Orchestrations" in text.output
    assert "continue as" in text.output
    bad = CliRunner().invoke(main, ["sizes", str(sized_db), "--threshold", "lots"])
    assert bad.exit_code == 2 and "not a size" in bad.output


def test_the_exporter_exports_the_same_figures(sized_db: Path) -> None:
    with eventstore.open(str(sized_db), readonly=True) as store:
        report = measure(store)
        for page in (3, 5000):  # many pages, and the store in one
            registry = CollectorRegistry()
            exporter = FeedExporter(store, registry, page=page)
            exporter.poll()

            def value(metric: str, **labels: str) -> float | None:
                return registry.get_sample_value(metric, labels)  # noqa: B023

            for o in report.orchestrations.values():
                if o.running == o.executions:
                    continue  # the exporter observes a history when it ends
                assert value("eventstore_history_max_bytes", orchestration_name=o.name) == (
                    o.max_bytes
                )
            for n in report.by_name.values():
                assert value("eventstore_payload_max_bytes", kind=n.kind, name=n.name) == (
                    n.max_bytes
                ), n
            assert value(
                "eventstore_size_limit_exceeded_total", orchestration_name="Grower", limit="history"
            ) == (1)
            assert value(
                "eventstore_size_limit_exceeded_total", orchestration_name="Grower", limit="payload"
            ) == (1)
            assert value("eventstore_history_bytes_count", orchestration_name="Grower") == 2
            big = report.orchestrations["Grower"]
            assert value("eventstore_history_bytes_sum", orchestration_name="Grower") == (
                big.total_bytes
            )


def test_an_undecodable_row_still_counts_its_bytes(sized_db: Path) -> None:
    con = sqlite3.connect(sized_db)
    with con:
        con.execute(
            "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
            " VALUES ('small-1', 1, 99, 'OrchestrationCompleted', '{oops')"
        )
    con.close()
    result = CliRunner().invoke(main, ["sizes", str(sized_db), "--json"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any("'small-1'" in line and "bytes counted" in line for line in lines)
    report = json.loads(lines[-1])
    assert report["undecodable"] == 1
    con = sqlite3.connect(sized_db)
    stored = con.execute("SELECT sum(length(CAST(event_data AS BLOB))) FROM history").fetchone()
    con.close()
    assert report["executions"]["bytes"] == stored[0]


def _peak(path: Path) -> int:
    with eventstore.open(str(path), readonly=True) as store:
        tracemalloc.start()
        try:
            measure(store)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


def test_memory_does_not_grow_with_the_store(tmp_path: Path) -> None:
    """Both stores span several scan pages (2,000 rows): the peak is one page's."""
    peaks = {}
    for count in (700, 7000):
        path = tmp_path / f"{count}.db"
        with eventstore.open(str(path)) as store, store.transaction():
            for n in range(count):
                store.append(f"i-{n:06}", 1, grower(['"r"'] * 2))
        peaks[count] = _peak(path)
    assert peaks[7000] < peaks[700] * 1.2, peaks


def test_sizes_says_each_status_as_the_catalog_does(tmp_path: Path) -> None:
    """One status rule: a cancelled, a failed, a running and a completed
    execution read the same in `sizes` as in the catalog (`ls`, the viewer)."""
    path = tmp_path / "sample.db"
    assert CliRunner().invoke(main, ["demo", str(path)]).exit_code == 0
    with eventstore.open(str(path)) as store:
        report = measure(store, top=100)
        catalog = {(r.instance_id, r.execution_id): r.status for r in store.catalog_executions()}
    sized = {(e.instance_id, e.execution_id): e.status for e in report.largest_executions}
    assert sized == catalog
    assert {"cancelled", "failed", "running", "completed"} <= set(sized.values())
