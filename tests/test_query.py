"""The es_* SQL functions: in sqlite-utils (its plugin) and in `eventstore query`."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import eventstore
from eventstore.sqlite_plugin import register_functions
from tests.conftest import DUROXIDE_DB, V0A_JSONL, V0B_JSONL

BIN = Path(sys.executable).parent


def legacy_store(path: Path) -> Path:
    """A store of V0a and V0b rows, plus one row that is not an event."""
    with eventstore.open(str(path)) as store:
        for tag, source in (("a", V0A_JSONL), ("b", V0B_JSONL)):
            rows = (json.loads(line) for line in source.read_text().splitlines())
            store.import_rows({**r, "instance_id": f"{r['instance_id']}-{tag}"} for r in rows)
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
            " VALUES ('broken', 1, 1, 'ActivityScheduled', '{not json')"
        )
    connection.close()
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sqlite_utils_query_groups_a_legacy_store_by_type(tmp_path: Path) -> None:
    db = legacy_store(tmp_path / "history.db")
    sql = "select es_type(event_data) t, count(*) n from history group by 1 order by 1"
    result = run(str(BIN / "sqlite-utils"), "query", str(db), sql)
    # "no such function" here: the environment predates the plugin's entry
    # point; reinstall eventstore (pip install -e .) so sqlite-utils finds it.
    assert result.returncode == 0, result.stderr
    counts = {row["t"]: row["n"] for row in json.loads(result.stdout)}
    assert counts[None] == 1  # the broken row: NULL, and the query went on
    expected: dict[str, int] = {}
    for source in (V0A_JSONL, V0B_JSONL):
        for line in source.read_text().splitlines():
            kind = json.loads(line)["event_type"]
            expected[kind] = expected.get(kind, 0) + 1
    assert {k: v for k, v in counts.items() if k is not None} == expected


def test_the_functions_agree_with_the_codec(tmp_path: Path) -> None:
    db = tmp_path / "runtime.db"
    db.write_bytes(DUROXIDE_DB.read_bytes())
    legacy_store(db)
    with eventstore.open(str(db), readonly=True) as store:
        wanted = {
            (r.instance_id, r.execution_id, r.event_id): store.codec.decode_detailed(
                r.event_data, instance_id=r.instance_id, execution_id=r.execution_id
            )
            for page in store.scan()
            for r in page
            if r.instance_id != "broken"
        }
    connection = sqlite3.connect(db)
    register_functions(connection)
    rows = connection.execute(
        "select instance_id, execution_id, event_id, es_type(event_data),"
        " es_generation(event_data), es_timestamp_ms(event_data),"
        " es_v1(event_data, instance_id, execution_id) from history"
    ).fetchall()
    connection.close()
    generations = set()
    for instance_id, execution_id, event_id, kind, generation, ms, v1 in rows:
        if instance_id == "broken":
            assert (kind, generation, ms, v1) == (None, None, None, None)
            continue
        found = wanted[(instance_id, execution_id, event_id)]
        assert kind == found.event.event_type
        assert generation == str(found.generation)
        assert ms == (found.event.timestamp_ms if found.event.has_timestamp else 0)
        assert eventstore.decode(v1) == found.event  # upcast to V1, identity filled
        assert eventstore.detect_version(v1) == eventstore.Generation.V1
        generations.add(generation)
    assert {"V1", "V0a", "V0b"} <= generations


def test_eventstore_query_json_and_csv(tmp_path: Path) -> None:
    db = legacy_store(tmp_path / "pct%41.db")  # a plain path, % and all
    sql = "select es_generation(event_data) g, count(*) n from history group by 1 order by 1"
    as_json = run(str(BIN / "eventstore"), "query", str(db), sql, "--json")
    assert as_json.returncode == 0, as_json.stderr
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert rows[0] == {"g": None, "n": 1}
    assert {r["g"] for r in rows[1:]} >= {"V0a", "V0b"}
    as_csv = run(str(BIN / "eventstore"), "query", str(db), sql, "--csv")
    assert as_csv.returncode == 0, as_csv.stderr
    lines = as_csv.stdout.splitlines()
    assert lines[0] == "g,n" and lines[1] == ",1"
    assert len(lines) == len(rows) + 1


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM history",
        "UPDATE history SET event_id = 7",
        "INSERT INTO history (instance_id) VALUES ('x')",
        "DROP TABLE history",
        "CREATE TABLE t (x)",
        "ATTACH 'other.db' AS other",
        "VACUUM INTO 'copy.db'",
        "PRAGMA query_only = OFF",
        "PRAGMA user_version = 3",
    ],
)
def test_eventstore_query_refuses_anything_that_writes(tmp_path: Path, sql: str) -> None:
    db = legacy_store(tmp_path / "history.db")
    before = digest(db)
    os.chdir(tmp_path)  # where ATTACH and VACUUM INTO would create their files
    result = run(str(BIN / "eventstore"), "query", str(db), sql)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()  # one line, no traceback
    assert line.startswith("Error: refused: this statement would write")
    assert "store is unchanged" in line
    assert digest(db) == before
    # Nothing but the store and its WAL companions (a reader of WAL may add them).
    assert {p.name for p in tmp_path.iterdir()} <= {
        "history.db",
        "history.db-wal",
        "history.db-shm",
    }


def test_eventstore_query_reads_pragmas_and_names_its_limits(tmp_path: Path) -> None:
    db = legacy_store(tmp_path / "history.db")
    info = run(str(BIN / "eventstore"), "query", str(db), "PRAGMA table_info(history)", "--json")
    assert info.returncode == 0, info.stderr
    assert "event_data" in {json.loads(line)["name"] for line in info.stdout.splitlines()}
    bad_sql = run(str(BIN / "eventstore"), "query", str(db), "select * from nope")
    assert (bad_sql.returncode, bad_sql.stderr.strip()) == (
        1,
        "Error: SQL error: no such table: nope",
    )
    pg = run(str(BIN / "eventstore"), "query", "postgresql://u@localhost/db", "select 1")
    assert pg.returncode == 1 and "query works on SQLite stores" in pg.stderr
    missing = run(str(BIN / "eventstore"), "query", str(tmp_path / "none.db"), "select 1")
    assert missing.returncode == 1 and "no SQLite store at" in missing.stderr
    assert not (tmp_path / "none.db").exists()
