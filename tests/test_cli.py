"""The command line, through click's CliRunner and the installed console script."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import eventstore
from eventstore import events as ev
from eventstore.cli import main
from tests.conftest import V0A_JSONL, V0B_JSONL


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_init_creates_a_store(runner: CliRunner, tmp_path: Path) -> None:
    target = str(tmp_path / "s.db")
    result = runner.invoke(main, ["init", target])
    assert result.exit_code == 0, result.output
    assert "0 events" in result.output
    with eventstore.open(target) as store:
        assert store.stable_positions


def test_ls_lists_instances_with_name_status_counts(runner: CliRunner, duroxide_db: Path) -> None:
    result = runner.invoke(main, ["ls", str(duroxide_db), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    by_id = {r["instance_id"]: r for r in rows}
    assert len(rows) == 20
    assert by_id["looper-7-0"]["execution_id"] == 4
    assert by_id["looper-7-0"]["status"] == "completed"
    assert by_id["failing-7-0"]["status"] == "failed"
    assert by_id["sleeper-7-0"]["status"] == "cancelled"
    assert by_id["hello-7-0"]["name"] == "Hello"
    every = runner.invoke(main, ["ls", str(duroxide_db), "--json", "--all-executions"])
    executions = [json.loads(line) for line in every.output.splitlines()]
    assert len(executions) == 26
    assert sum(r["event_count"] for r in executions) == 154
    table = runner.invoke(main, ["ls", str(duroxide_db)])
    assert "looper-7-0" in table.output and "20 instances" in table.output


def test_show_prints_a_timeline_with_offsets(runner: CliRunner, duroxide_db: Path) -> None:
    result = runner.invoke(main, ["show", str(duroxide_db), "hello-7-0", "--json"])
    assert result.exit_code == 0, result.output
    timeline = json.loads(result.output)
    assert [t["event_id"] for t in timeline] == list(range(1, len(timeline) + 1))
    assert timeline[0]["offset_ms"] == 0
    stored = [
        json.loads(r[0])
        for r in sqlite3.connect(duroxide_db).execute(
            "SELECT event_data FROM history WHERE instance_id='hello-7-0' ORDER BY event_id"
        )
    ]
    start = stored[0]["timestamp_ms"]
    assert [t["offset_ms"] for t in timeline] == [s["timestamp_ms"] - start for s in stored]
    assert [t["event"] for t in timeline] == stored
    text = runner.invoke(main, ["show", str(duroxide_db), "looper-7-0", "--execution", "2"])
    assert text.exit_code == 0
    assert "looper-7-0 execution 2" in text.output and "+0.000s" in text.output


def test_show_leaves_time_blank_for_legacy_events(runner: CliRunner, tmp_path: Path) -> None:
    target = str(tmp_path / "s.db")
    assert runner.invoke(main, ["import", target, str(V0A_JSONL)]).exit_code == 0
    result = runner.invoke(main, ["show", target, "hello-7-0", "--json"])
    timeline = json.loads(result.output)
    assert all(t["time"] is None and t["offset_ms"] is None for t in timeline)


def test_show_errors_are_clear(runner: CliRunner, duroxide_db: Path) -> None:
    missing = runner.invoke(main, ["show", str(duroxide_db), "nope"])
    assert missing.exit_code == 1 and "no instance 'nope'" in missing.output
    bad_exec = runner.invoke(main, ["show", str(duroxide_db), "hello-7-0", "--execution", "9"])
    assert bad_exec.exit_code == 1 and "has no execution 9" in bad_exec.output


def test_export_import_round_trip_is_lossless(
    runner: CliRunner, duroxide_db: Path, tmp_path: Path
) -> None:
    exported = tmp_path / "out.jsonl"
    result = runner.invoke(main, ["export", str(duroxide_db), "-o", str(exported)])
    assert result.exit_code == 0, result.output
    lines = exported.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 154
    original = (
        sqlite3.connect(duroxide_db)
        .execute(
            "SELECT instance_id, execution_id, event_id, event_type, event_data, created_at"
            " FROM history ORDER BY rowid"
        )
        .fetchall()
    )
    assert [tuple(json.loads(line).values()) for line in lines] == original
    copy = str(tmp_path / "copy.db")
    imported = runner.invoke(main, ["import", copy, str(exported)])
    assert imported.exit_code == 0, imported.output
    assert "imported 154 rows" in imported.output
    again = runner.invoke(main, ["export", copy])
    assert again.output.splitlines() == lines


def test_import_of_a_bad_file_is_all_or_nothing(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    lines = V0B_JSONL.read_text(encoding="utf-8").splitlines()
    bad.write_text("\n".join([*lines[:10], "{not json", *lines[10:]]) + "\n", encoding="utf-8")
    target = str(tmp_path / "s.db")
    result = runner.invoke(main, ["import", target, str(bad)])
    assert result.exit_code == 1
    assert "line 11" in result.output and "Traceback" not in result.output
    with eventstore.open(target) as store:
        assert store.count() == 0


def test_stats_counts_types_generations_and_timestamps(runner: CliRunner, tmp_path: Path) -> None:
    target = str(tmp_path / "s.db")
    runner.invoke(main, ["import", target, str(V0A_JSONL)])
    with eventstore.open(target) as store:
        store.append(
            "fresh", 1, [ev.OrchestrationStarted(event_id=1, name="O", version="1", input="0")]
        )
    result = runner.invoke(main, ["stats", target, "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    legacy_rows = len(V0A_JSONL.read_text(encoding="utf-8").splitlines())
    assert stats["rows"] == legacy_rows + 1
    assert stats["with_timestamp"] == 1
    assert stats["by_generation"]["V1"] == 1
    assert stats["by_generation"]["V0a"] == 6
    assert stats["by_generation"]["V0"] == legacy_rows - 6
    assert stats["by_type_and_generation"]["OrchestrationStarted/V1"] == 1
    text = runner.invoke(main, ["stats", target])
    assert "timestamp" in text.output and "V0a" in text.output


def test_verify_reports_problems_and_exits_1(runner: CliRunner, duroxide_db: Path) -> None:
    clean = runner.invoke(main, ["verify", str(duroxide_db)])
    assert clean.exit_code == 0, clean.output
    assert "verified 154 rows in 26 executions" in clean.output
    con = sqlite3.connect(duroxide_db)
    con.execute(
        "UPDATE history SET event_data = '{\"oops' WHERE instance_id='kv-7-0' AND event_id=2"
    )
    con.execute(
        "UPDATE history SET event_data = replace(event_data, '\"source_event_id\":2', "
        "'\"source_event_id\":1') WHERE instance_id='failing-7-0' AND event_id=3"
    )
    con.execute("DELETE FROM history WHERE instance_id='fanout-7-1' AND event_id=1")
    con.commit()
    con.close()
    result = runner.invoke(main, ["verify", str(duroxide_db), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    kinds = {(p["kind"], p["where"].split(",")[0]) for p in report["problems"]}
    assert ("undecodable", "instance 'kv-7-0'") in kinds
    assert ("orphan-completion", "instance 'failing-7-0'") in kinds
    assert ("ordering", "instance 'fanout-7-1'") in kinds
    assert any("event 2" in p["where"] for p in report["problems"] if p["kind"] == "undecodable")


def test_expected_failures_never_show_a_traceback(runner: CliRunner, tmp_path: Path) -> None:
    for args in (
        ["ls", str(tmp_path / "missing.db")],
        ["show", "sqlite://bad", "x"],
        ["verify", str(tmp_path)],
        ["import", str(tmp_path / "s.db"), str(tmp_path)],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code in (1, 2), args
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), args


def test_demo_is_the_main_job(runner: CliRunner, tmp_path: Path) -> None:
    target = str(tmp_path / "demo.db")
    result = runner.invoke(main, ["demo", target])
    assert result.exit_code == 0, result.output
    assert "legacy V0 rows" in result.output
    assert "greeting-1 execution 1" in result.output
    assert "OK" in result.output
    with eventstore.open(target) as store:
        generations = {e.has_timestamp for i in store.instances() for e in store.read(i)}
        assert generations == {True, False}
    again = runner.invoke(main, ["demo", target])
    assert again.exit_code == 1 and "empty store" in again.output


def test_installed_console_script(tmp_path: Path) -> None:
    script = shutil.which("eventstore", path=os.path.dirname(sys.executable))
    assert script, "the eventstore console script is not installed in this environment"
    target = str(tmp_path / "s.db")
    done = subprocess.run(
        [script, "import", target, str(V0B_JSONL)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    shown = subprocess.run([script, "verify", target], capture_output=True, text=True, check=False)
    assert shown.returncode == 0 and "OK" in shown.stdout
    failed = subprocess.run(
        [script, "show", target, "missing"], capture_output=True, text=True, check=False
    )
    assert failed.returncode == 1
    assert "no instance 'missing'" in failed.stderr and "Traceback" not in failed.stderr
    version = subprocess.run([script, "--version"], capture_output=True, text=True, check=True)
    assert eventstore.__version__ in version.stdout
