"""verify runs the database's own integrity check and compares row counts (issue 15 item 5).

Real damaged SQLite files: bytes of an index page are changed on disk, the
way a bad disk or a torn write would, and verify must exit non-zero naming
what is wrong, even when every row it can still reach decodes.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

import eventstore
from eventstore import events as ev
from eventstore.cli import main
from eventstore.store.protocol import IntegrityCheckable
from eventstore.store.verify import verify
from tests.conftest import StoreFactory

ROWS = 600
INDEX = "sqlite_autoindex_history_1"


def _store(path: Path) -> None:
    with eventstore.open(str(path)) as store:
        for i in range(ROWS):
            store.append(
                f"inst-{i:05d}",
                1,
                [ev.OrchestrationStarted(event_id=1, name="N", version="1", input="null")],
            )
    with sqlite3.connect(path) as con:  # everything into the main file
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _index_leaf(data: bytes, page_size: int, root: int) -> tuple[int, int]:
    """(page, header offset) of the right-most leaf page of the b-tree at `root`."""
    page = root
    while True:
        header = (page - 1) * page_size + (100 if page == 1 else 0)
        if data[header] == 0x0A:  # a leaf page of an index b-tree
            return page, header
        assert data[header] == 0x02, "not an index b-tree page"
        page = int.from_bytes(data[header + 8 : header + 12], "big")  # right-most child


def _damage(path: Path, how: str) -> None:
    with sqlite3.connect(path) as con:
        (root,) = con.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (INDEX,)
        ).fetchone()
        (page_size,) = con.execute("PRAGMA page_size").fetchone()
    data = bytearray(path.read_bytes())
    page, header = _index_leaf(data, page_size, root)
    if how == "drop-entry":
        # One fewer cell on the page: the index loses its last entry.
        cells = int.from_bytes(data[header + 3 : header + 5], "big")
        data[header + 3 : header + 5] = (cells - 1).to_bytes(2, "big")
    else:
        # One bit of a key: the entry no longer matches its row.
        cell = (page - 1) * page_size + int.from_bytes(data[header + 8 : header + 10], "big")
        at = data.index(b"inst-", cell)
        data[at + 7] ^= 0x01
    path.write_bytes(bytes(data))


def test_an_index_that_lost_a_row_fails_verify(tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    _store(path)
    _damage(path, "drop-entry")
    result = CliRunner().invoke(main, ["verify", str(path)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"verified {ROWS - 1} rows" in result.output  # every reachable row decodes
    assert f"missing from index {INDEX}" in result.output
    assert f"{ROWS - 1} rows counted via {INDEX} but {ROWS} in the table" in result.output
    assert f"verify's scan read {ROWS - 1} rows but the table holds {ROWS}" in result.output


def test_a_flipped_key_bit_fails_verify_with_the_checks_message(tmp_path: Path) -> None:
    path = tmp_path / "flipped.db"
    _store(path)
    _damage(path, "flip-bit")
    result = CliRunner().invoke(main, ["verify", str(path), "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["ok"] is False
    integrity = report["integrity"]
    assert integrity["tool"] == "PRAGMA integrity_check" and integrity["ran"] is True
    assert any(f"missing from index {INDEX}" in p for p in integrity["problems"])
    assert any(p["kind"] == "integrity" for p in report["problems"])


def test_a_healthy_store_passes_with_the_counts(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.append("i", 1, [ev.OrchestrationStarted(event_id=1, name="N", version="1", input="")])
    report = verify(store)
    assert report.ok, report.problems
    assert report.integrity is not None
    assert report.integrity.table_rows == 1 and report.integrity.scanned_rows == 1
    assert set(report.integrity.index_rows.values()) == {1}


@pytest.mark.parametrize("backend_name", ["postgres"], indirect=True)
def test_postgres_runs_amcheck_only_when_installed(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.append("i", 1, [ev.OrchestrationStarted(event_id=1, name="N", version="1", input="")])
    first = verify(store)
    assert first.ok and first.integrity is not None
    assert not first.integrity.ran
    assert first.integrity.note.startswith("amcheck not available: the extension is not installed")
    with psycopg.connect(_url(store), autocommit=True) as con:
        try:
            con.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        except psycopg.Error as exc:  # the server build lacks contrib
            pytest.skip(f"amcheck is not available: {exc}")
    second = verify(store)
    assert second.ok, second.problems
    assert second.integrity is not None and second.integrity.ran
    assert second.integrity.table_rows == 1


@pytest.mark.parametrize("backend_name", ["postgres"], indirect=True)
def test_postgres_amcheck_a_role_may_not_run_is_a_note(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.append("i", 1, [ev.OrchestrationStarted(event_id=1, name="N", version="1", input="")])
    url = _url(store)
    role = f"verifier_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as con:
        try:
            con.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        except psycopg.Error as exc:
            pytest.skip(f"amcheck is not available: {exc}")
        con.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw'")
        con.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        con.execute(f"REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC, {role}")
    try:
        limited = url.replace(url.split("://", 1)[1].split("@", 1)[0], f"{role}:pw")
        with eventstore.open(limited, readonly=True) as as_role:
            report = verify(as_role)
        assert report.ok, report.problems
        assert report.integrity is not None and not report.integrity.ran
        assert report.integrity.note.startswith("amcheck not available to this role")
        result = CliRunner().invoke(main, ["verify", limited, "--json"])
        assert result.exit_code == 0, result.output
        assert "amcheck not available" in json.loads(result.output)["integrity"]["note"]
    finally:
        with psycopg.connect(url, autocommit=True) as con:
            con.execute(f"DROP OWNED BY {role}")
            con.execute(f"DROP ROLE {role}")


def test_a_backend_without_a_checker_still_compares_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "plain.db"
    _store(path)
    with eventstore.open(str(path), readonly=True) as store:
        # None in a class blocks a protocol member: the backend is no IntegrityCheckable.
        plain = type("Plain", (type(store.backend),), {"__slots__": (), "integrity_check": None})
        monkeypatch.setattr(store.backend, "__class__", plain)
        assert not isinstance(store.backend, IntegrityCheckable)
        report = verify(store)
    assert report.ok, report.problems
    assert report.integrity is not None and not report.integrity.ran
    assert "no integrity check" in report.integrity.note
    assert report.integrity.table_rows == ROWS == report.integrity.scanned_rows


def test_the_text_report_says_what_ran(tmp_path: Path) -> None:
    path = tmp_path / "clean.db"
    _store(path)
    result = CliRunner().invoke(main, ["verify", str(path)])
    assert result.exit_code == 0, result.output
    assert (
        f"integrity: PRAGMA integrity_check: ok; {ROWS} rows in the table ({ROWS} via {INDEX})"
    ) in result.output


def _url(store: eventstore.HistoryStore) -> str:
    return str(store.backend._conninfo)  # type: ignore[attr-defined]
