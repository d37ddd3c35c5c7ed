"""The execution catalog's indexes on SQLite: one on `started_ms`, and a
listing by shard that goes through it (the index on `shard` earlier versions
made costs every new execution's append and is dropped when such a store is
opened for writing)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec

import eventstore
from eventstore.backends.sqlite.catalog import CATALOG_DDL, query_sql
from eventstore.store.row_types import CatalogQuery
from eventstore.store.shard_key import derive_shard_key, shard_start_bounds
from eventstore.testing._model import CLOCK_MS, started

DAY_MS = 86_400_000
_OLD_INDEX = "CREATE INDEX eventstore_executions_shard ON eventstore_executions (shard)"


def _indexes(path: Path) -> set[str]:
    con = sqlite3.connect(path)
    try:
        rows = con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'"
            " AND tbl_name = 'eventstore_executions' AND sql IS NOT NULL"
        ).fetchall()
    finally:
        con.close()
    return {name for (name,) in rows}


def _store(path: Path) -> None:
    """Executions started over four days, the last one past 9999-12-31."""
    with eventstore.open(str(path)) as store:
        for n in range(12):
            at = CLOCK_MS + (n % 4) * DAY_MS + (n * 3_600_000) % DAY_MS
            if n == 11:
                at = 2**62  # far past the last day a key names: its shard is 9999-12-31
            store.append(f"run-{n}", 1, [msgspec.structs.replace(started(), timestamp_ms=at)])


def test_a_new_store_has_only_the_start_index(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    _store(path)
    assert _indexes(path) == {"eventstore_executions_started"}


def test_an_older_stores_shard_index_goes_on_opening_for_writing(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _store(path)
    con = sqlite3.connect(path)
    con.execute(_OLD_INDEX)
    con.close()
    eventstore.open(str(path), readonly=True).close()
    assert "eventstore_executions_shard" in _indexes(path)  # read-only: nothing changes
    busy = sqlite3.connect(path, isolation_level=None)
    busy.execute("BEGIN IMMEDIATE")  # another writer holds the lock: the open still works
    with eventstore.open(str(path), busy_timeout_ms=50) as store:
        assert len(store.catalog_executions()) == 12
    busy.execute("ROLLBACK")
    busy.close()
    assert "eventstore_executions_shard" in _indexes(path)  # left for the next open
    eventstore.open(str(path)).close()
    assert _indexes(path) == {"eventstore_executions_started"}


def test_listing_by_shard_is_exactly_the_shards_executions(tmp_path: Path) -> None:
    path = tmp_path / "shards.db"
    _store(path)
    with eventstore.open(str(path)) as store:
        every = store.catalog_executions()
        shards = {r.shard for r in every}
        assert len(shards) >= 5 and "9999-12-31" in shards
        for shard in sorted(shards):
            assert store.catalog_executions(shard=shard) == [r for r in every if r.shard == shard]
        day = derive_shard_key(CLOCK_MS + DAY_MS)
        lo, hi = shard_start_bounds(day) or (0, 0)
        assert hi is not None
        # combined with a time filter: both apply
        since = lo + 6 * 3_600_000
        assert store.catalog_executions(shard=day, since_ms=since) == [
            r for r in every if r.shard == day and (r.started_ms or 0) >= since
        ]
        assert store.catalog_executions(shard=day, until_ms=lo) == []
        assert store.catalog_executions(shard="2026-02-30") == []
        assert store.catalog_executions(shard="root") == []


def test_a_listing_by_shard_searches_the_start_index(tmp_path: Path) -> None:
    lo, hi = shard_start_bounds("2026-12-08") or (0, None)
    sql, args = query_sql(CatalogQuery(shard="2026-12-08", since_ms=lo, until_ms=hi))
    con = sqlite3.connect(tmp_path / "plan.db")
    try:
        for ddl in CATALOG_DDL:
            con.execute(ddl)
        plan = " ".join(row[3] for row in con.execute("EXPLAIN QUERY PLAN " + sql, args))
    finally:
        con.close()
    assert "USING INDEX eventstore_executions_started" in plan, plan
