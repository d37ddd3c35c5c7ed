"""`eventstore dashboard`: every panel's query, loaded into a real Prometheus that
scrapes a running exporter while another process keeps writing, returns data."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import eventstore
from eventstore import events as ev
from eventstore.cli import main
from eventstore.metrics.dashboard import PANELS, QUANTILES, queries
from tests.test_metrics_exporter import (  # noqa: F401  (exporter_factory is a fixture)
    Exporter,
    exporter_factory,
    free_port,
    require_binary,
    wait_for,
)

WRITER = textwrap.dedent(
    """
    import sqlite3, sys, time
    import eventstore
    from eventstore import events as ev

    path = sys.argv[1]
    with eventstore.open(path) as store:
        i = 0
        while True:
            now = int(time.time() * 1000)
            parent, child = f"live-{i}", f"live-{i}::sub::4"
            store.append(parent, 1, [
                ev.OrchestrationStarted(event_id=1, name="Live", version="1", input="0",
                                        timestamp_ms=now),
                ev.ActivityScheduled(event_id=2, name="Step", input="1", timestamp_ms=now + 1),
                ev.ActivityCompleted(event_id=3, source_event_id=2, result="2",
                                     timestamp_ms=now + 30),
                ev.SubOrchestrationScheduled(event_id=4, name="Child", instance="sub::4",
                                             input="3", timestamp_ms=now + 31),
            ])
            store.append(child, 1, [
                ev.OrchestrationStarted(event_id=1, name="Child", version="1", input="3",
                                        parent_instance=parent, parent_id=4,
                                        timestamp_ms=now + 32),
                ev.OrchestrationCompleted(event_id=2, output="4", timestamp_ms=now + 80),
            ])
            store.append(parent, 1, [
                ev.SubOrchestrationCompleted(event_id=5, source_event_id=4, result="4",
                                             timestamp_ms=now + 90),
                # stamped before its start: a duration the metrics cannot give
                ev.ActivityScheduled(event_id=6, name="Skewed", input="5", timestamp_ms=now + 100),
                ev.ActivityCompleted(event_id=7, source_event_id=6, result="6",
                                     timestamp_ms=now + 50),
                ev.OrchestrationCompleted(event_id=8, output="7", timestamp_ms=now + 120),
            ], expected_last_event_id=4)
            if i % 5 == 0:
                con = sqlite3.connect(path)
                with con:
                    con.execute(
                        "INSERT INTO history (instance_id, execution_id, event_id, event_type,"
                        " event_data) VALUES (?, 1, 1, 'OrchestrationStarted', '{oops')",
                        (f"broken-{i}",),
                    )
                con.close()
            i += 1
            time.sleep(0.1)
    """
)


def test_the_dashboard_is_grafana_json_generated_from_the_definitions() -> None:
    result = CliRunner().invoke(main, ["dashboard", "--title", "Ours", "--uid", "ours"])
    assert result.exit_code == 0, result.output
    board = json.loads(result.output)
    assert board["title"] == "Ours" and board["uid"] == "ours"
    assert len(board["panels"]) == len(PANELS)
    ids = [p["id"] for p in board["panels"]]
    assert ids == sorted(set(ids))
    variables = {v["name"] for v in board["templating"]["list"]}
    assert variables == {"datasource", "orchestration", "activity"}
    for panel in board["panels"]:
        assert panel["targets"] and panel["description"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
    exprs = queries(board)
    wanted = [
        "duroxide_orchestration_completions_total",
        "duroxide_orchestration_duration_seconds_bucket",
        "duroxide_activity_duration_seconds_bucket",
        "eventstore_durations_unavailable_total",
        "duroxide_orchestration_history_size_bucket",
        "eventstore_history_bytes_bucket",
        "eventstore_decode_errors_total",
        "eventstore_feed_lag_seconds",
    ]
    for name in wanted:
        assert any(name in e for e in exprs), name
    quantiles = [e for e in exprs if "duroxide_orchestration_duration_seconds" in e]
    assert [e.split(",")[0] for e in quantiles] == [f"histogram_quantile({q}" for q in QUANTILES]
    assert all("by (le, orchestration_name, status)" in e for e in quantiles)


def _concrete(expr: str) -> str:
    """What Grafana would send: its variables filled in."""
    return (
        expr.replace("$__rate_interval", "15s")
        .replace("$orchestration", ".*")
        .replace("$activity", ".*")
    )


def _finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(r["value"][1])) for r in result)


def test_every_panel_returns_data_from_a_real_prometheus(
    tmp_path: Path,
    exporter_factory: Callable[..., Exporter],  # noqa: F811
) -> None:
    prometheus = require_binary("prometheus")
    db = tmp_path / "live.db"
    with eventstore.open(str(db)) as store:  # one history past duroxide's payload limit
        store.append(
            "big",
            1,
            [
                ev.OrchestrationStarted(event_id=1, name="Big", version="1", input="0"),
                ev.OrchestrationCompleted(event_id=2, output='"' + "x" * (3 * 1024 * 1024) + '"'),
            ],
        )
    writer_script = tmp_path / "writer.py"
    writer_script.write_text(WRITER)
    writer = subprocess.Popen(
        [sys.executable, str(writer_script), str(db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    exporter = exporter_factory(db)
    config = tmp_path / "prometheus.yml"
    target = urllib.parse.urlsplit(exporter.url).netloc
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        f"scrape_configs:\n  - job_name: eventstore\n    static_configs:\n"
        f'      - targets: ["{target}"]\n'
    )
    port = free_port()
    server = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    board = json.loads(CliRunner().invoke(main, ["dashboard"]).output)
    try:

        def query(promql: str) -> list[dict[str, Any]]:
            for process, what in ((server, "prometheus"), (writer, "the writer")):
                if process.poll() is not None:
                    stderr = process.stderr.read() if process.stderr else ""
                    raise RuntimeError(f"{what} exited: {stderr}")
            url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode(
                {"query": promql}
            )
            with urllib.request.urlopen(url, timeout=10) as response:
                answer = json.load(response)
            assert answer["status"] == "success", (promql, answer)
            result: list[dict[str, Any]] = answer["data"]["result"]
            return result

        pending = [_concrete(e) for e in queries(board)]

        def all_answer() -> bool | None:
            still = [q for q in pending if not _finite(query(q))]
            pending[:] = still
            return True if not still else None

        try:
            wait_for("every panel's query to return data", all_answer)
        except pytest.fail.Exception:
            pytest.fail(f"no data for: {pending}")
    finally:
        for process in (server, writer):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stderr is not None:
                process.stderr.close()
    assert exporter.stop() == 0
