"""stats, the metrics exporter, replay and query over rows whose text is not UTF-8.

Each finishes, counts the bad rows and names them by position; nothing fails
the whole command. (ls, verify and export: tests/test_hostile_rows.py.)
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import eventstore
from eventstore.cli import main
from eventstore.metrics.exporter import FeedExporter


def _damage(db: Path) -> Path:
    """Row 5's instance_id, row 9's event_data and the last row's instance_id not UTF-8."""
    con = sqlite3.connect(db)
    try:
        con.execute("UPDATE history SET instance_id = CAST(X'FF41' AS TEXT) WHERE rowid = 5")
        con.execute("UPDATE history SET event_data = CAST(X'7BFF22' AS TEXT) WHERE rowid = 9")
        con.execute(
            "UPDATE history SET instance_id = CAST(X'FF43' AS TEXT)"
            " WHERE rowid = (SELECT max(rowid) FROM history)"
        )
        con.commit()
    finally:
        con.close()
    return db


@pytest.fixture
def hostile_db(duroxide_db: Path) -> Path:
    return _damage(duroxide_db)


def test_stats_counts_the_bad_rows_and_names_each_by_position(hostile_db: Path) -> None:
    result = CliRunner().invoke(main, ["stats", str(hostile_db)])
    assert result.exit_code == 0, result.output
    assert "154 rows" in result.stdout and "3 undecodable" in result.stdout
    named = [line for line in result.stderr.splitlines() if line.startswith("undecodable")]
    assert len(named) == 3
    for position in (5, 9, 154):
        assert f"position {position}:" in result.stderr
    assert "not UTF-8" in result.stderr and "\\xff" in result.stderr
    assert "Traceback" not in result.output


def test_stats_json_lists_the_undecodable_rows(hostile_db: Path) -> None:
    result = CliRunner().invoke(main, ["stats", "--json", str(hostile_db)])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["rows"] == 154 and figures["undecodable"] == 3
    assert sorted(r["position"] for r in figures["undecodable_rows"]) == [5, 9, 154]
    reasons = {r["position"]: r["reason"] for r in figures["undecodable_rows"]}
    assert "instance_id column is not UTF-8 text" in reasons[5]
    assert "position 9" in result.stderr


def test_the_exporter_counts_decode_failures_and_polls_on_after_a_bad_last_row(
    hostile_db: Path,
) -> None:
    # The last row is bad: the next poll checks the key at that position
    # (rowids may be renumbered), which read the bad instance_id as an error.
    with eventstore.open(str(hostile_db), readonly=True) as store:
        exporter = FeedExporter(store, page=5)
        first = exporter.poll()
        second = exporter.poll()
        text = exporter.exposition().decode()
    assert (first.rows, first.undecodable, first.position) == (154, 3, 154)
    assert second.rows == 0
    assert "eventstore_decode_errors_total 3.0" in text


def test_metrics_dump_names_each_bad_row_on_stderr(hostile_db: Path) -> None:
    result = CliRunner().invoke(main, ["metrics", "dump", str(hostile_db)])
    assert result.exit_code == 0, result.output
    assert "eventstore_decode_errors_total 3.0" in result.stdout
    for position in (5, 9, 154):
        assert f"position {position}:" in result.stderr
    assert "Traceback" not in result.output


def test_replay_reports_an_instance_id_that_is_not_text(hostile_db: Path) -> None:
    result = CliRunner().invoke(
        main, ["replay", str(hostile_db), "-o", "tests.orchestrations.corpus"]
    )
    assert result.exit_code == 1
    assert "b'\\xffA'" in result.output and "is not UTF-8 text" in result.output
    assert "b'\\xffC'" in result.output and "Traceback" not in result.output


def test_query_shows_bad_bytes_escaped(hostile_db: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "query",
            "--json",
            str(hostile_db),
            "select rowid, instance_id, event_data from history where rowid in (5, 9)",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[0]["rowid"] == 5 and rows[0]["instance_id"] == "\\xffA"
    assert rows[1]["event_data"] == '{\\xff"'
