"""Lifecycle beyond the conformance suite: the CLI, rebase after a backfill,
verbatim archives of hostile rows, and `migrations prune`."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import eventstore
from eventstore import events as ev
from eventstore.cli import main
from eventstore.errors import (
    ArchiveMissingError,
    EventStoreError,
    MigrationLockedError,
    StoreError,
    ValidationError,
)
from eventstore.evolution.migrate import backfill_timestamps, list_runs, migrate, rollback
from eventstore.evolution.prune import prune_runs
from eventstore.lifecycle.archived import verify_archives
from eventstore.lifecycle.census import census, shard_census
from eventstore.lifecycle.manifest import shard_view
from eventstore.lifecycle.relocate import relocate_archives
from eventstore.lifecycle.retention import RetentionPolicy, run_retention
from eventstore.lifecycle.shards import rebase_shards
from eventstore.testing.conformance import HOSTILE_INSTANCE_IDS
from eventstore.testing.lifecycle_conformance import FIRST_DAY_MS, fill_days, newer
from tests.conftest import V0A_JSONL, V0B_JSONL, StoreFactory


def rows_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_archives_hold_hostile_rows_verbatim(store_factory: StoreFactory, tmp_path: Path) -> None:
    store = store_factory()
    for n, instance in enumerate(HOSTILE_INSTANCE_IDS):
        started = ev.OrchestrationStarted(
            event_id=1,
            name="N",
            version="1.0.0",
            input=json.dumps(instance),
            timestamp_ms=FIRST_DAY_MS + n,
        )
        store.append(
            instance, 1, [started, ev.OrchestrationCompleted(event_id=2, output='"\\u2028"')]
        )
    exported = {(r["instance_id"], r["event_id"]): r for r in store.export_rows()}
    reads = {i: store.read(i, 1) for i in HOSTILE_INSTANCE_IDS}
    newer(store)  # a running execution holds the newest row: every hostile one goes
    run_retention(store, RetentionPolicy(dt.date(2025, 11, 22), tmp_path / "a"))
    assert store.count() == 1
    (archive,) = store.lifecycle.archives()
    with gzip.open(archive.location, "rt", encoding="utf-8") as f:
        archived = {(r["instance_id"], r["event_id"]): r for r in map(json.loads, f)}
    assert archived == exported
    assert {i: store.read(i) for i in HOSTILE_INSTANCE_IDS} == reads


def test_root_executions_are_rebased_after_backfill(
    store_factory: StoreFactory, tmp_path: Path
) -> None:
    store = store_factory()
    store.import_rows(rows_of(V0B_JSONL))
    assert [s["shard"] for s in shard_view(store)] == ["root"]
    report = run_retention(store, RetentionPolicy(dt.date(2100, 1, 1), tmp_path / "a"))
    assert report.rows == 0 and report.root_executions > 0
    rebase_shards(store)  # records root
    migrate(store)
    backfill_timestamps(store)
    before, now = rebase_shards(store)
    assert before and before > 0 and now == 0
    days = {s.shard for s in store.lifecycle.shards()}
    assert "root" not in days and days == {"2026-11-21"}
    reads = {(i, e): store.read(i, e) for i in store.instances() for e in store.executions(i)}
    report = run_retention(store, RetentionPolicy(dt.date(2026, 11, 22), tmp_path / "a"))
    assert report.rows > 0
    assert {(i, e): store.read(i, e) for (i, e) in reads} == reads


def test_cli_shards_retention_export_verify(tmp_path: Path) -> None:
    target = str(tmp_path / "s.db")
    with eventstore.open(target) as store:
        fill_days(store, 3, 3)
        everything = sorted(json.dumps(r, sort_keys=True) for r in store.export_rows())
    runner = CliRunner()
    shown = runner.invoke(main, ["shards", target, "--json"])
    assert shown.exit_code == 0, shown.output
    shards = json.loads(shown.output)["shards"]
    assert [(s["shard"], s["state"], s["rows"], s["executions"]) for s in shards] == [
        ("2025-11-21", "active", 11, 3),
        ("2025-11-22", "active", 11, 3),
        ("2025-11-23", "active", 11, 3),
    ]
    archive = str(tmp_path / "archive")
    dry = runner.invoke(
        main,
        [
            "retention",
            target,
            "--before",
            "2025-11-23",
            "--archive",
            archive,
            "--dry-run",
            "--json",
        ],
    )
    assert json.loads(dry.output)["rows"] == 16 and not os.path.exists(archive)
    done = runner.invoke(
        main, ["retention", target, "--before", "2025-11-23", "--archive", archive, "--json"]
    )
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["purged_rows"] == 16 and [s["shard"] for s in report["shards"]] == [
        "2025-11-21",
        "2025-11-22",
    ]
    states = {
        s["shard"]: s["state"]
        for s in json.loads(runner.invoke(main, ["shards", target, "--json"]).output)["shards"]
    }
    assert states == {"2025-11-21": "archived", "2025-11-22": "archived", "2025-11-23": "active"}
    out = tmp_path / "all.jsonl"
    assert (
        runner.invoke(main, ["export", target, "--include-archived", "-o", str(out)]).exit_code == 0
    )
    lines = sorted(
        json.dumps(json.loads(line), sort_keys=True) for line in out.read_text().splitlines()
    )
    assert lines == everything
    shown = runner.invoke(main, ["show", target, "i-0-0", "--json"])
    assert shown.exit_code == 0 and len(json.loads(shown.output)) == 4
    verified = runner.invoke(main, ["verify", target, "--include-archived", "--json"])
    assert verified.exit_code == 0 and all(a["ok"] for a in json.loads(verified.output)["archives"])
    (Path(report["shards"][0]["archive"])).write_bytes(b"not gzip")
    broken = runner.invoke(main, ["verify", target, "--include-archived"])
    assert broken.exit_code == 1 and "2025-11-21" in broken.output
    os.remove(report["shards"][0]["archive"])
    missing = runner.invoke(main, ["show", target, "i-0-0"])
    assert missing.exit_code == 1 and "gone" in missing.output and "Traceback" not in missing.output


def test_retention_needs_a_cut(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["retention", str(tmp_path / "s.db"), "--archive", "a"])
    assert result.exit_code == 2 and "--before" in result.output
    bad = CliRunner().invoke(
        main, ["retention", str(tmp_path / "s.db"), "--archive", "a", "--older-than", "3x"]
    )
    assert bad.exit_code == 2 and "30d" in bad.output


def test_migrations_prune_reclaims_the_archive(tmp_path: Path) -> None:
    target = str(tmp_path / "m.db")
    with eventstore.open(target) as store:
        for copy in range(30):
            store.import_rows(
                {**r, "instance_id": f"{r['instance_id']}-{copy}"} for r in rows_of(V0A_JSONL)
            )
        report = migrate(store)
        assert report.changed > 0 and report.run_id
    size_migrated = os.path.getsize(target)
    runner = CliRunner()
    dry = runner.invoke(main, ["migrations", "prune", target, "--dry-run", "--json"])
    assert json.loads(dry.output)["rows"] == report.changed
    kept = tmp_path / "kept"
    pruned = runner.invoke(main, ["migrations", "prune", target, "--archive", str(kept), "--json"])
    assert pruned.exit_code == 0, pruned.output
    result = json.loads(pruned.output)
    assert result["runs"] == [report.run_id] and result["reclaimed"]
    with gzip.open(result["archives"][report.run_id], "rt") as f:
        assert sum(1 for _ in f) == report.changed
    assert os.path.getsize(target) < size_migrated
    with eventstore.open(target) as store:
        assert store.evolution.archived_rows(report.run_id, ("", -1, -1), 10) == []
        assert [r.status for r in list_runs(store)] == ["pruned"]
        with pytest.raises(EventStoreError, match="originals are in"):
            rollback(store, report.run_id)
        assert prune_runs(store).runs == []  # nothing left to prune
    listed = runner.invoke(main, ["migrations", target])
    assert "pruned" in listed.output


def test_one_lifecycle_job_at_a_time(tmp_path: Path) -> None:
    target = str(tmp_path / "s.db")
    with eventstore.open(target) as store, eventstore.open(target) as other:
        fill_days(store, 2, 2)
        with store.evolution.run_lock("a migration"):
            with pytest.raises(MigrationLockedError):
                run_retention(other, RetentionPolicy(dt.date(2025, 11, 22), tmp_path / "a"))
            with pytest.raises(MigrationLockedError):
                prune_runs(other)
        assert run_retention(other, RetentionPolicy(dt.date(2025, 11, 22), tmp_path / "a")).rows


def test_a_store_without_a_kept_catalog_takes_the_history_scan(tmp_path: Path) -> None:
    """Where the catalog is derived (a store from before it; a database
    duroxide created), retention and `shards` scan the history instead, with
    the same outcome as the catalog route on a store that keeps one."""
    kept, derived = tmp_path / "kept.db", tmp_path / "derived.db"
    for path in (kept, derived):
        with eventstore.open(str(path)) as store:
            fill_days(store, 3, 3)
    with sqlite3.connect(derived) as con:  # a store from before the catalog
        con.execute("DROP TABLE eventstore_executions")
    views, reports = [], []
    for path in (kept, derived):
        with eventstore.open(str(path)) as store:
            assert store.lifecycle.has_catalog_census() == (path == kept)
            policy = RetentionPolicy(dt.date(2025, 11, 23), tmp_path / f"archive-{path.stem}")
            report = run_retention(store, policy)
            reports.append([(s.shard, s.executions, s.rows, s.purged_rows) for s in report.shards])
            views.append(
                [
                    {k: v for k, v in s.items() if not k.startswith("archive")}
                    for s in shard_view(store)
                ]
            )
    assert reports[0] == reports[1] and reports[0]
    assert views[0] == views[1]


def test_a_duroxide_database_takes_the_history_scan(duroxide_db: Path) -> None:
    with eventstore.open(str(duroxide_db), readonly=True) as store:
        assert not store.lifecycle.has_catalog_census()
        assert list(shard_census(store)) == list(census(store))
        assert sum(s["executions"] for s in shard_view(store)) == len(list(census(store))) > 0


def test_relocate_archive_after_the_directory_moved(
    store_factory: StoreFactory, tmp_path: Path
) -> None:
    store = store_factory()
    fill_days(store, 3, 2)
    before = {i: store.read(i, 1) for i in ("i-0-0", "i-1-0")}
    old, new = tmp_path / "archive", tmp_path / "elsewhere" / "archive"
    run_retention(store, RetentionPolicy(dt.date(2025, 11, 23), old))
    new.parent.mkdir()
    shutil.move(old, new)
    with pytest.raises(ArchiveMissingError, match="relocate-archive") as caught:
        store.read("i-0-0", 1)
    assert str(old) in str(caught.value)

    with pytest.raises(ValidationError, match=f"they are under {old}"):
        relocate_archives(store, tmp_path / "nowhere", new)
    one = next(new.rglob("*.jsonl.gz"))
    one.rename(one.with_suffix(".away"))
    recorded = store.lifecycle.archives()
    with pytest.raises(StoreError, match=r"nothing relocated: 1 of 2 archives"):
        relocate_archives(store, old, new)
    assert store.lifecycle.archives() == recorded  # all or nothing
    one.with_suffix(".away").rename(one)
    assert len(relocate_archives(store, old, new, dry_run=True)) == 2
    assert store.lifecycle.archives() == recorded

    moves = relocate_archives(store, old, new)
    assert sorted(m.shard for m in moves) == ["2025-11-21", "2025-11-22"]
    assert all(m.new.startswith(str(new.resolve())) for m in moves)
    for instance, events in before.items():
        assert store.read(instance, 1) == events
    assert all(
        s["archive"].startswith(str(new.resolve())) for s in shard_view(store) if s["archive"]
    )
    assert all(check.ok for check in verify_archives(store))


def test_cli_relocate_archive(tmp_path: Path) -> None:
    target = str(tmp_path / "s.db")
    with eventstore.open(target) as store:
        fill_days(store, 2, 2)
        run_retention(store, RetentionPolicy(dt.date(2025, 11, 22), tmp_path / "a"))
    shutil.move(tmp_path / "a", tmp_path / "b")
    runner = CliRunner()
    failed = runner.invoke(
        main, ["shards", "relocate-archive", target, str(tmp_path / "x"), str(tmp_path)]
    )
    assert failed.exit_code != 0 and "Traceback" not in failed.output
    assert "no archive the shard manifest records" in failed.output
    done = runner.invoke(
        main,
        ["shards", "relocate-archive", target, str(tmp_path / "a"), str(tmp_path / "b"), "--json"],
    )
    assert done.exit_code == 0, done.output
    (moved,) = json.loads(done.output)["relocated"]
    assert moved["shard"] == "2025-11-21" and moved["new"].startswith(
        str((tmp_path / "b").resolve())
    )
    shown = runner.invoke(main, ["show", target, "i-0-0", "--execution", "1"])
    assert shown.exit_code == 0, shown.output


def test_an_archive_index_from_before_positions_gains_the_column(tmp_path: Path) -> None:
    target = tmp_path / "s.db"
    with eventstore.open(str(target)) as store:
        fill_days(store, 2, 2)
    with sqlite3.connect(target) as con:  # the index as the first release made it
        con.execute(
            "CREATE TABLE eventstore_archived_executions (instance_id TEXT NOT NULL,"
            " execution_id INTEGER NOT NULL, archive_id TEXT NOT NULL, shard TEXT NOT NULL,"
            " rows INTEGER NOT NULL, member_offset INTEGER NOT NULL,"
            " PRIMARY KEY (instance_id, execution_id))"
        )
        con.execute(
            "INSERT INTO eventstore_archived_executions VALUES ('gone', 1, 'a', '2025-01-01', 3, 0)"
        )
    with eventstore.open(str(target)) as store:
        before = store.read("i-0-0", 1)
        report = run_retention(store, RetentionPolicy(dt.date(2025, 11, 22), tmp_path / "a"))
        assert report.purged_rows == 4
        assert store.read("i-0-0", 1) == before
        assert store.lifecycle.archived_execution("gone", 1) is not None
        where = store.lifecycle.archived_execution("i-0-0", 1)
        assert where is not None and where.last_position


def test_retention_on_a_duroxide_database(duroxide_db: Path, tmp_path: Path) -> None:
    """duroxide's table has no `position` column (its rowid is the feed's
    position): retention archives and deletes there too, every read returns
    what it returned before, and a second run finds nothing new to retire."""
    with eventstore.open(str(duroxide_db)) as store:
        keys = sorted({(r.instance_id, r.execution_id) for p in store.scan() for r in p})
        before = {k: store.read(*k) for k in keys}
        newest = store.read_last_raw(1)[0]
        report = run_retention(store, RetentionPolicy(dt.date(2030, 1, 1), tmp_path / "a"))
        assert report.purged_rows > 0
        assert report.kept_newest == f"{newest.instance_id}/{newest.execution_id}"
        assert {k: store.read(*k) for k in keys} == before
        again = run_retention(store, RetentionPolicy(dt.date(2030, 1, 1), tmp_path / "a"))
        assert again.rows == 0 and again.kept_newest == report.kept_newest


def test_retention_never_hands_a_position_out_again(tmp_path: Path) -> None:
    """SQLite gives a new row max(rowid) + 1, so retiring the execution that
    holds the newest row would give its position to the next append, and a
    feed reader resuming after it would miss that append for good."""
    with eventstore.open(str(tmp_path / "s.db")) as store:
        fill_days(store, 2, 2)
        store.append(
            "last",
            1,
            [
                ev.OrchestrationStarted(
                    event_id=1, name="Order", version="1", input="7", timestamp_ms=FIRST_DAY_MS
                ),
                ev.OrchestrationCompleted(event_id=2, output='"ok"'),
            ],
        )
        head = store.head_position()
        report = run_retention(store, RetentionPolicy(dt.date(2030, 1, 1), tmp_path / "a"))
        assert report.kept_newest == "last/1" and report.purged_rows > 0
        assert store.read("last", 1)  # still in the table
        store.append(
            "next",
            1,
            [
                ev.OrchestrationStarted(
                    event_id=1, name="Order", version="1", input="7", timestamp_ms=FIRST_DAY_MS
                )
            ],
        )
        after = [(r.instance_id, r.position > head) for r in store.read_all(after=head)]
        assert after == [("next", True)]
        # With a newer row there, the next run retires it.
        assert (
            run_retention(store, RetentionPolicy(dt.date(2030, 1, 1), tmp_path / "a")).kept_newest
            is None
        )
        assert store.read("last", 1)  # now from the archive
