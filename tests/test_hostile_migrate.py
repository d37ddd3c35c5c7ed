"""migrate, backfill and rollback over rows whose text is not UTF-8 (SQLite files).

Every good row is migrated; a bad row is reported by key and position, never
by its payload, and left byte for byte as it was, whichever batch it ends.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventstore.cli import main
from tests.conftest import V0A_JSONL

MIXED_JSONL = V0A_JSONL.parent / "mixed-history.jsonl"
RAW = (
    "SELECT rowid, typeof(instance_id), CAST(instance_id AS BLOB), typeof(event_data),"
    " CAST(event_data AS BLOB) FROM history WHERE rowid IN (6, 10) ORDER BY rowid"
)


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def hostile_legacy(tmp_path: Path) -> Path:
    """The mixed legacy history with row 6's instance_id and row 10's event_data not UTF-8."""
    db = tmp_path / "legacy.db"
    assert _run("import", str(db), str(MIXED_JSONL))[0] == 0
    con = sqlite3.connect(db)
    try:
        con.execute("UPDATE history SET instance_id = CAST(X'66FF31' AS TEXT) WHERE rowid = 6")
        (data,) = con.execute("SELECT event_data FROM history WHERE rowid = 10").fetchone()
        bad = data.encode().replace(b"Work", b"W\xffrk")
        con.execute("UPDATE history SET event_data = CAST(? AS TEXT) WHERE rowid = 10", (bad,))
        con.commit()
    finally:
        con.close()
    return db


def _raw(db: Path) -> list[tuple[object, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(RAW).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("batch", ["1", "5", "500"])
def test_eager_migrate_rewrites_the_good_rows_and_names_the_bad(
    hostile_legacy: Path, batch: str
) -> None:
    before = _raw(hostile_legacy)
    args = ("migrate", "--strategy", "eager", "--batch-size", batch, str(hostile_legacy))
    dry = _run(*args, "--dry-run")
    code, out, err = _run(*args)
    assert dry[0] == 0 and code == 0, err
    assert "95 to rewrite" in dry[1] and "rewrote 95 rows" in out
    for text in (dry[1], out):
        assert "2 undecodable" in text and "position 10" in text and "position 6" in text
        assert "b'f\\xff1'" in text and "W\\xffrk" not in text and "Traceback" not in text
    assert _raw(hostile_legacy) == before
    # A rerun has nothing left to rewrite, ends, and writes nothing, and still
    # says which rows it cannot rewrite and why.
    code, out, err = _run(*args)
    assert code == 0 and "none to rewrite" in out, err
    assert "2 undecodable" in out and "position 6" in out and "position 10" in out
    assert _raw(hostile_legacy) == before


def test_a_run_resumes_from_a_cursor_on_the_bad_row(hostile_legacy: Path, tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    code, out, err = _run(
        "migrate", "--strategy", "eager", "--batch-size", "1", str(hostile_legacy)
    )
    assert code == 0, err
    con = sqlite3.connect(hostile_legacy)
    try:
        # Pretend the run died with its cursor on the bad row (batch size 1).
        (run_id,) = con.execute("SELECT run_id FROM eventstore_migration_runs").fetchone()
        cursor = json.dumps([{"text": b"f\xff1".hex()}, 1, 2])
        con.execute(
            "UPDATE eventstore_migration_runs SET status = 'running', cursor = ?", (cursor,)
        )
        con.commit()
    finally:
        con.close()
    code, out, err = _run("migrate", "--strategy", "eager", "--log", str(log), str(hostile_legacy))
    assert code == 0, err
    assert run_id in out and "completed" in out


def test_backfill_and_rollback_leave_the_bad_rows_alone(hostile_legacy: Path) -> None:
    before = _raw(hostile_legacy)
    code, out, err = _run(
        "migrate", "--strategy", "eager", "--batch-size", "1", str(hostile_legacy)
    )
    assert code == 0, err
    run_id = out.strip().splitlines()[-1].split()[-1]
    code, out, err = _run("backfill-timestamps", "--batch-size", "1", str(hostile_legacy))
    assert code == 0, err
    assert "2 undecodable" in out and "position 6" in out and "Traceback" not in out + err
    backfill_id = out.strip().splitlines()[-1].split()[-1]
    for run in (backfill_id, run_id):
        code, out, err = _run("rollback", str(hostile_legacy), "--run", run)
        assert code == 0, err
    assert _raw(hostile_legacy) == before
