"""Export is verbatim, byte for byte; import applies append's rules, alike on both backends."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import eventstore
from eventstore.cli import main
from tests.conftest import DUROXIDE_JSONL, V0A_JSONL, V0B_JSONL

Rows = list[tuple[Any, ...]]


def _blob_rows(db: Path) -> Rows:
    """Every row with its text columns as the stored bytes (never decoded)."""
    con = sqlite3.connect(db)
    try:
        return con.execute(
            "SELECT CAST(instance_id AS BLOB), execution_id, event_id,"
            " CAST(event_type AS BLOB), CAST(event_data AS BLOB), CAST(created_at AS BLOB)"
            " FROM history ORDER BY rowid"
        ).fetchall()
    finally:
        con.close()


def _sql(db: Path, *statements: str) -> None:
    con = sqlite3.connect(db)
    try:
        for statement in statements:
            con.execute(statement)
        con.commit()
    finally:
        con.close()


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_then_import_is_byte_exact(tmp_path: Path) -> None:
    source = tmp_path / "source.db"
    # Every generation; the legacy files share instance ids, renamed apart.
    rows = _jsonl(DUROXIDE_JSONL) + [
        dict(row, instance_id=f"{prefix}-{row['instance_id']}")
        for prefix, path in (("a", V0A_JSONL), ("b", V0B_JSONL))
        for row in _jsonl(path)
    ]
    with eventstore.open(str(source)) as store:
        store.import_rows(rows)
    # Hand-written rows that a careless decode would change: escapes and
    # non-ASCII text, a valid-UTF-8 BLOB, and one byte 0xFF.
    _sql(
        source,
        'UPDATE history SET event_data = replace(event_data, \'"input":"\','
        ' \'"input":"caf\u00e9 \\u00e9 \U0001f642 \') WHERE rowid = 3',
        "UPDATE history SET event_data = CAST(event_data AS BLOB) WHERE rowid = 4",
        "UPDATE history SET event_data = CAST(X'7BFF7D' AS TEXT) WHERE rowid = 7",
    )
    original = _blob_rows(source)
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["export", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    exported = _jsonl(out)
    assert len(exported) == len(original)
    # The 0xFF row is carried as its bytes, marked, never as U+FFFD ...
    assert exported[6]["event_data"] == {"base64": base64.b64encode(b"{\xff}").decode()}
    assert "\ufffd" not in out.read_text(encoding="utf-8")
    # ... named on stderr as a row that will not import ...
    assert "line 7" in result.stderr and "not UTF-8" in result.stderr
    assert "1 exported row will not import" in result.stderr
    # ... and refused by import, with nothing written, unless skipped.
    back = tmp_path / "back.db"
    refused = CliRunner().invoke(main, ["import", str(back), str(out)])
    assert refused.exit_code == 1 and "line 7" in refused.output
    assert "column event_data" in refused.output
    with eventstore.open(str(back)) as store:
        assert store.count() == 0
    skipped = CliRunner().invoke(main, ["import", str(back), str(out), "--skip-corrupt"])
    assert skipped.exit_code == 0, skipped.output
    assert "skipped 1 corrupt row" in skipped.stderr and "line 7" in skipped.stderr
    assert _blob_rows(back) == original[:6] + original[7:]


def test_export_writes_a_blob_created_at_and_import_names_the_column(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with eventstore.open(str(db)) as store:
        store.import_rows(_jsonl(V0B_JSONL))
    _sql(
        db,
        "UPDATE history SET created_at = X'FF00' WHERE rowid = 2",
        "UPDATE history SET created_at = 1700000000 WHERE rowid = 3",
    )
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["export", str(db), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    rows = _jsonl(out)
    assert rows[1]["created_at"] == {"base64": base64.b64encode(b"\xff\x00").decode()}
    assert rows[2]["created_at"] == 1700000000
    assert "line 2" in result.stderr and "line 3" in result.stderr
    refused = CliRunner().invoke(main, ["import", str(tmp_path / "b.db"), str(out)])
    assert refused.exit_code == 1
    assert "line 2" in refused.output and "column created_at" in refused.output


BAD_IDENTITIES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("nul", lambda r: r.update(instance_id="a\x00b"), "column instance_id"),
    ("empty", lambda r: r.update(instance_id=""), "column instance_id"),
    ("int instance", lambda r: r.update(instance_id=7), "column instance_id"),
    ("huge execution", lambda r: r.update(execution_id=2**63), "column execution_id"),
    ("huge event", lambda r: r.update(event_id=2**64), "column event_id"),
    ("zero execution", lambda r: r.update(execution_id=0), "column execution_id"),
    ("int created_at", lambda r: r.update(created_at=1700000000), "column created_at"),
    ("bad created_at", lambda r: r.update(created_at="yesterday"), "column created_at"),
    ("missing", lambda r: r.pop("event_type"), "missing event_type"),
    ("bad base64", lambda r: r.update(event_data={"base64": "!!"}), "column event_data"),
]


@pytest.mark.parametrize(
    ("label", "damage", "needle"), BAD_IDENTITIES, ids=[b[0] for b in BAD_IDENTITIES]
)
def test_import_refuses_what_append_refuses_naming_line_and_column(
    store_factory: Callable[..., eventstore.HistoryStore],
    label: str,
    damage: Callable[[dict[str, Any]], None],
    needle: str,
) -> None:
    rows = _jsonl(V0B_JSONL)
    damage(rows[4])
    store = store_factory()
    with pytest.raises(eventstore.EventStoreError) as caught:
        store.import_rows(rows)
    assert "line 5" in str(caught.value) and needle in str(caught.value)
    assert store.count() == 0
    report = store.import_rows(rows, skip_corrupt=True)
    assert report.inserted == len(rows) - 1
    assert [str(e.location) for e in report.corrupt] == [str(caught.value.location)]


def test_cli_import_of_an_oversized_execution_id_is_one_line(tmp_path: Path) -> None:
    rows = _jsonl(V0B_JSONL)
    rows[2]["execution_id"] = 2**63
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = CliRunner().invoke(main, ["import", str(tmp_path / "s.db"), str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "line 3" in result.output and "column execution_id" in result.output


def test_copy_names_corrupt_rows_by_position_never_line(duroxide_db: Path, tmp_path: Path) -> None:
    _sql(duroxide_db, "UPDATE history SET event_data = '{\"nope\":1}' WHERE rowid = 42")
    dest = tmp_path / "dest.db"
    refused = CliRunner().invoke(main, ["copy", str(duroxide_db), str(dest)])
    assert refused.exit_code == 1 and "position 42" in refused.output
    assert "line" not in refused.output
    with eventstore.open(str(dest)) as store:
        assert store.count() == 0
    skipped = CliRunner().invoke(main, ["copy", str(duroxide_db), str(dest), "--skip-corrupt"])
    assert skipped.exit_code == 0, skipped.output
    assert "copied 153 rows" in skipped.stdout
    assert "position 42" in skipped.stderr and "line" not in skipped.stderr
    assert "skipped 1 corrupt row of 154" in skipped.stderr
