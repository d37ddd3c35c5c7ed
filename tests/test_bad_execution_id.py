"""A hand-written row whose execution id is not an integer hides no good row
(issue 15, item 3): read, last_event_id, executions, ls and show reach
execution 1; read_all and verify name the bad row by its location.

SQLite only: PostgreSQL's execution_id column is typed BIGINT, so such a row
cannot be stored there at all.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import eventstore
from eventstore import DecodeError
from eventstore import events as ev
from eventstore.cli import main
from eventstore.store.verify import verify

LOCATION = "instance 'i', execution x, event 1, position 3"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "s.db"
    with eventstore.open(str(path)) as store:
        store.append(
            "i",
            1,
            [
                ev.OrchestrationStarted(event_id=1, name="O", version="1", input="0"),
                ev.ActivityScheduled(event_id=2, name="A", input="1"),
            ],
        )
    con = sqlite3.connect(path)
    try:
        con.execute(
            "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
            " SELECT instance_id, 'x', event_id, event_type, event_data FROM history"
            " WHERE event_id = 1"
        )
        con.commit()
    finally:
        con.close()
    return path


def test_read_last_event_id_and_executions_reach_the_good_execution(db: Path) -> None:
    with eventstore.open(str(db), readonly=True) as store:
        assert [e.event_id for e in store.read("i")] == [1, 2]
        assert store.last_event_id("i") == 2
        assert store.executions("i") == [1]
        assert [(s.executions, s.latest_execution, s.events) for s in store.summaries()] == [
            (1, 1, 2)
        ]


def test_read_all_and_verify_name_the_bad_row(db: Path) -> None:
    with eventstore.open(str(db), readonly=True) as store:
        with pytest.raises(DecodeError, match=LOCATION):
            list(store.read_all())
        report = verify(store)
    assert [str(p.location) for p in report.problems] == [LOCATION]


def test_ls_lists_the_instance_and_warns_of_the_bad_row(db: Path) -> None:
    result = CliRunner().invoke(main, ["ls", "--json", str(db)])
    assert result.exit_code == 0, result.output
    assert result.exception is None
    assert '"instance_id": "i"' in result.stdout
    assert '"execution_id": 1' in result.stdout
    assert "1 row with an execution id that is not an integer" in result.stderr
    assert "verify names them" in result.stderr


def test_show_prints_the_good_execution(db: Path) -> None:
    result = CliRunner().invoke(main, ["show", str(db), "i"])
    assert result.exit_code == 0, result.output
    assert result.exception is None
    assert "OrchestrationStarted" in result.output
    assert "ActivityScheduled" in result.output
