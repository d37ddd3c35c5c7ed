"""The execution catalog against the real duroxide runtime (PyPI `duroxide`).

1. duroxide writes into a file eventstore created (so it keeps a catalog): the
   runtime never touches the catalog, verify says it is behind (not wrong),
   and `catalog_catch_up` brings it level from the global feed.
2. duroxide creates the file: eventstore adds no table to it, and the catalog
   it derives from the history agrees with the runtime's own `executions`
   table on every execution and status.

The runtime runs in a child process (tests/interop_orchestrations.py says why).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

import eventstore
from eventstore.store.verify import verify
from tests import interop_orchestrations as orch
from tests.interop_orchestrations import in_runtime_process

pytestmark = pytest.mark.interop

# duroxide's status -> the catalog's; duroxide says Failed for a cancellation,
# which the catalog tells apart by the failure's details.
_STATUS = {
    "Completed": {"completed"},
    "Failed": {"failed", "cancelled"},
    "ContinuedAsNew": {"continued_as_new"},
    "Running": {"running"},
}


def _tables(path: Path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return sorted(r[0] for r in con.execute("SELECT name FROM sqlite_master"))
    finally:
        con.close()


def _runtime_executions(path: Path) -> dict[tuple[str, int], str]:
    con = sqlite3.connect(path)
    try:
        rows = con.execute("SELECT instance_id, execution_id, status FROM executions").fetchall()
    finally:
        con.close()
    return {(str(i), int(e)): str(s) for i, e, s in rows}


def test_catch_up_after_the_runtime_wrote_into_an_eventstore_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with eventstore.open(str(path)) as store:
        assert store.keeps_catalog_table
    outcomes, reading = in_runtime_process(orch.job_corpus, str(path), "c")
    assert not reading.errors
    with eventstore.open(str(path)) as store:
        report = verify(store)
        assert report.ok, report.problems
        assert report.catalog_behind_count == len(_runtime_executions(path)) > 0
        assert store.catalog_catch_up() == report.catalog_behind_count
        assert list(store.catalog_mismatches()) == []
        kept = {(r.instance_id, r.execution_id): r for r in store.catalog_executions()}
    assert kept.keys() == _runtime_executions(path).keys()
    for key, status in _runtime_executions(path).items():
        assert kept[key].status in _STATUS[status], key
    assert kept[("sleeper-c", 1)].status == "cancelled"
    assert kept[("failing-c", 1)].status == "failed"
    assert {i: o.status for i, o in outcomes.items()}["looper-c"] == "Completed"
    assert [r.status for r in sorted(
        (r for k, r in kept.items() if k[0] == "looper-c"), key=lambda r: r.execution_id
    )] == ["continued_as_new", "continued_as_new", "completed"]  # fmt: skip


def test_a_database_duroxide_created_gets_its_catalog_derived(tmp_path: Path) -> None:
    path = tmp_path / "runtime.db"
    in_runtime_process(orch.job_corpus, str(path), "d")
    before = _tables(path)
    with eventstore.open(str(path)) as store:
        assert not store.keeps_catalog_table
        assert store.rebuild_catalog() == len(_runtime_executions(path))
        assert store.catalog_catch_up() == 0
        derived = {(r.instance_id, r.execution_id): r for r in store.catalog_executions()}
        latest = store.catalog_executions(latest_only=True, status="failed")
    assert _tables(path) == before  # nothing added, by reads or by the catalog's commands
    runtime = _runtime_executions(path)
    assert derived.keys() == runtime.keys()
    for key, status in runtime.items():
        assert derived[key].status in _STATUS[status], key
        assert derived[key].started_ms is not None and derived[key].shard != "root"
    assert {r.instance_id for r in latest} >= {"failing-d"}


@pytest.mark.postgres
def test_a_postgres_schema_duroxide_created_gets_its_catalog_derived(
    postgres_target_factory: Callable[[], str],
) -> None:
    """duroxide's own PostgreSQL schema (no position column, no event types
    recorded): the derived catalog matches the runtime's statuses and no
    table is added."""
    import psycopg
    from click.testing import CliRunner

    from eventstore.cli import main

    url = postgres_target_factory()
    outcomes, reading = in_runtime_process(orch.job_corpus, url, "p")
    assert not reading.errors

    def tables() -> list[str]:
        with psycopg.connect(url) as con:
            found = con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables"
                " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            ).fetchall()
        return sorted(f"{s}.{t}" for s, t in found)

    before = tables()
    with eventstore.open(url) as store:
        assert not store.keeps_catalog_table
        latest = {r.instance_id: r for r in store.catalog_executions(latest_only=True)}
        assert list(store.catalog_mismatches()) == []
    listed = CliRunner().invoke(main, ["ls", "--json", url])
    assert listed.exit_code == 0, listed.output
    assert tables() == before
    with psycopg.connect(url) as con:
        stored = {str(r[0]) for r in con.execute("SELECT DISTINCT instance_id FROM history")}
    assert latest.keys() == stored and outcomes.keys() <= stored
    assert {json.loads(line)["instance_id"] for line in listed.stdout.splitlines()} == stored
    for instance_id, outcome in outcomes.items():
        assert latest[instance_id].status in _STATUS[outcome.status], instance_id
        assert latest[instance_id].name is not None
    assert latest["sleeper-p"].status == "cancelled"
