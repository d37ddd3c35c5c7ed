"""`eventstore copy`: SQLite -> PostgreSQL -> SQLite gives back identical rows."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

import eventstore
from tests.conftest import DUROXIDE_JSONL, V0A_JSONL, V0B_JSONL

pytestmark = pytest.mark.postgres

Row = tuple[str, int, int, str, str, str | None]


def sqlite_rows(path: Path) -> list[Row]:
    """Every history row of a SQLite file, straight from SQL, in rowid order."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [
            (str(r[0]), int(r[1]), int(r[2]), str(r[3]), str(r[4]), r[5])
            for r in con.execute(
                "SELECT instance_id, execution_id, event_id, event_type, event_data, created_at"
                " FROM history ORDER BY rowid"
            )
        ]
    finally:
        con.close()


def postgres_rows(url: str) -> list[Row]:
    with psycopg.connect(url) as con:
        return [
            (str(r[0]), int(r[1]), int(r[2]), str(r[3]), str(r[4]), r[5])
            for r in con.execute(
                "SELECT instance_id, execution_id, event_id, event_type, event_data,"
                " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
                " FROM history ORDER BY eventstore_position"
            )
        ]


def copy(runner: CliRunner, source: str, dest: str) -> str:
    result = runner.invoke(main_group(), ["copy", source, dest])
    assert result.exit_code == 0, result.output
    return result.output


def main_group() -> Any:
    from eventstore.cli import main

    return main


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_duroxide_database_round_trips_through_postgres(
    duroxide_db: Path, postgres_target_factory: Callable[[], str], tmp_path: Path
) -> None:
    original = sqlite_rows(duroxide_db)
    assert len(original) > 50 and all(r[5] for r in original)
    url = postgres_target_factory()
    runner = CliRunner()
    output = copy(runner, str(duroxide_db), url)
    assert f"copied {len(original)} rows" in output
    assert "test-secret-pw" not in output
    # In PostgreSQL: the same rows, in the same (commit) order, same timestamps.
    assert postgres_rows(url) == original
    back = tmp_path / "back.db"
    copy(runner, url, str(back))
    assert sqlite_rows(back) == original
    # Every row still reads through the store on both sides.
    with eventstore.open(url, readonly=True) as pg, eventstore.open(str(back)) as lite:
        for instance_id in pg.instances():
            for execution_id in pg.executions(instance_id):
                assert pg.read(instance_id, execution_id) == lite.read(instance_id, execution_id)
    # Running the copy again writes nothing.
    again = copy(runner, str(duroxide_db), url)
    assert "copied 0 rows" in again and f"({len(original)} already present)" in again


@pytest.mark.parametrize("fixture", [V0A_JSONL, V0B_JSONL, DUROXIDE_JSONL], ids=lambda p: p.name)
def test_jsonl_rows_round_trip_through_postgres(
    fixture: Path, postgres_target_factory: Callable[[], str], tmp_path: Path
) -> None:
    source = tmp_path / "source.db"
    rows = load_jsonl(fixture)
    with eventstore.open(str(source)) as store:
        assert store.import_rows(rows).inserted == len(rows)
    original = sqlite_rows(source)
    assert [r[:5] for r in original] == [
        (r["instance_id"], r["execution_id"], r["event_id"], r["event_type"], r["event_data"])
        for r in rows
    ]
    url = postgres_target_factory()
    runner = CliRunner()
    copy(runner, str(source), url)
    back = tmp_path / "back.db"
    copy(runner, url, f"sqlite:///{back}")
    assert sqlite_rows(back) == original


def test_a_clashing_destination_aborts_with_a_clear_error_and_writes_nothing(
    duroxide_db: Path, postgres_target_factory: Callable[[], str]
) -> None:
    url = postgres_target_factory()
    first = load_jsonl(DUROXIDE_JSONL)[0]
    clash = dict(first, event_data=first["event_data"].replace('"input":', '"input": '))
    with eventstore.open(url) as store:
        store.import_rows([clash])
    result = CliRunner().invoke(main_group(), ["copy", str(duroxide_db), url])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "a different event is already stored under this key" in result.output
    with eventstore.open(url, readonly=True) as store:
        assert store.count() == 1


def test_copy_errors_are_one_line_without_passwords(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main_group(),
        ["copy", str(tmp_path / "missing.db"), "postgresql://u:sekrit-pw@127.0.0.1:1/x"],
    )
    assert result.exit_code == 1
    assert "no database at" in result.output and "Traceback" not in result.output
    source = tmp_path / "s.db"
    eventstore.open(str(source)).close()
    result = runner.invoke(
        main_group(), ["copy", str(source), "postgresql://u:sekrit-pw@127.0.0.1:1/x"]
    )
    assert result.exit_code == 1
    assert "sekrit-pw" not in result.output and "Traceback" not in result.output
    assert "cannot connect to postgresql://u@127.0.0.1:1/x" in result.output
