"""Rows whose text columns are not UTF-8 (hand-written) are read as bytes, never fail a scan."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import eventstore

# CAST(... AS TEXT) stores TEXT with bytes that are not UTF-8; X'..' alone stores a BLOB.
BAD_TEXT = "CAST(X'FF41' AS TEXT)"
BAD_BLOB = "X'FF42'"


def _damage(db: Path, sql: str) -> None:
    con = sqlite3.connect(db)
    try:
        con.execute(sql)
        con.commit()
    finally:
        con.close()


@pytest.fixture(params=[BAD_TEXT, BAD_BLOB], ids=["text", "blob"])
def bad_instance_db(request: pytest.FixtureRequest, duroxide_db: Path) -> Path:
    _damage(duroxide_db, f"UPDATE history SET instance_id = {request.param} WHERE rowid = 5")
    return duroxide_db


def test_scan_and_feed_yield_every_row_with_the_bad_instance_id_as_bytes(
    bad_instance_db: Path,
) -> None:
    with eventstore.open(str(bad_instance_db), readonly=True) as store:
        scanned = [row for page in store.scan(batch=7) for row in page]
        fed = list(store.read_all_raw(page=7))
        instances = store.instances()
    assert len(scanned) == len(fed) == 154
    assert sorted(r.position for r in scanned) == list(range(1, 155))
    bad = [r for r in fed if isinstance(r.instance_id, bytes)]
    assert [(r.position, bytes(r.instance_id)) for r in bad] in (
        [(5, b"\xffA")],
        [(5, b"\xffB")],
    )
    assert sum(isinstance(i, bytes) for i in instances) == 1 and len(instances) == 21


def test_ls_lists_the_good_instances_and_names_the_bad_id(bad_instance_db: Path) -> None:
    from click.testing import CliRunner

    from eventstore.cli import main

    for args in (["ls", str(bad_instance_db)], ["ls", "--json", str(bad_instance_db)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
        assert "not UTF-8" in result.stderr and "\\xff" in result.stderr
        assert "hello-7-0" in result.stdout


def test_verify_and_export_report_the_bad_row_by_position(
    bad_instance_db: Path, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from eventstore.cli import main

    verified = CliRunner().invoke(main, ["verify", str(bad_instance_db)])
    assert verified.exit_code == 1 and "position 5" in verified.output
    assert "Traceback" not in verified.output
    out = tmp_path / "out.jsonl"
    exported = CliRunner().invoke(
        main, ["export", str(bad_instance_db), "-o", str(out), "--skip-corrupt"]
    )
    assert exported.exit_code == 0, exported.output
    assert "position 5" in exported.stderr and "column instance_id" in exported.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == 153
