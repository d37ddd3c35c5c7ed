"""Eager migrations, rollback and timestamp backfill, on every backend."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from eventstore import events as ev
from eventstore.cli import main
from eventstore.codec import Generation
from eventstore.errors import EventStoreError, SchemaEvolutionError
from eventstore.evolution.migrate import backfill_timestamps, list_runs, migrate, rollback
from eventstore.store import HistoryStore
from tests.conftest import DUROXIDE_JSONL, V0A_JSONL, V0B_JSONL, StoreFactory

MIXED_JSONL = V0A_JSONL.parent / "mixed-history.jsonl"
LEGACY = [V0A_JSONL, V0B_JSONL, MIXED_JSONL]


def rows_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def table(store: HistoryStore) -> list[tuple[Any, ...]]:
    """Every row's key, type and data, in key order (what a rollback must restore)."""
    return sorted(
        (r["instance_id"], r["execution_id"], r["event_id"], r["event_type"], r["event_data"])
        for r in store.export_rows()
    )


def generations(store: HistoryStore) -> dict[str, int]:
    found: dict[str, int] = {}
    for page in store.scan():
        for row in page:
            decoded = store.codec.decode_detailed(
                row.event_data, instance_id=row.instance_id, execution_id=row.execution_id
            )
            name = f"{decoded.generation}:{type(decoded.event).__name__}"
            if decoded.generation == Generation.V1:
                name = "V1"
            found[name] = found.get(name, 0) + 1
    return found


def started(event_id: int = 1) -> ev.OrchestrationStarted:
    return ev.OrchestrationStarted(event_id=event_id, name="N", version="1.0.0", input="null")


@pytest.mark.parametrize("fixture", LEGACY, ids=lambda p: p.stem)
def test_dry_run_changes_nothing(store_factory: StoreFactory, fixture: Path) -> None:
    store = store_factory()
    store.import_rows(rows_of(fixture))
    before = table(store)
    log = io.StringIO()
    report = migrate(store, dry_run=True, batch_size=25, log=log)
    assert report.run_id is None and report.status == "dry-run"
    assert report.changed > 0 and report.kept["SystemCall (no V1 form)"] == 4
    assert table(store) == before
    assert list_runs(store) == []
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert sum(len(line["changes"]) for line in lines) == report.changed
    # Legacy rows get their timestamp by an upcast (issue 15 item 17).
    assert backfill_timestamps(store, dry_run=True).changed == report.changed
    assert table(store) == before


@pytest.mark.parametrize("fixture", LEGACY, ids=lambda p: p.stem)
def test_migrate_to_v1_then_rollback_restores_exactly(
    store_factory: StoreFactory, fixture: Path
) -> None:
    store = store_factory()
    store.import_rows(rows_of(fixture))
    before = table(store)
    legacy_reads = {
        (i, e): store.read(i, e) for i in store.instances() for e in store.executions(i)
    }
    report = migrate(store, batch_size=40)
    assert report.strategy == "eager" and report.status == "completed" and report.run_id
    assert report.changed == len(before) - 4 - report.current
    # Every row is V1 now, except the four SystemCall events, kept as they were.
    assert generations(store) == {"V1": len(before) - 4, "V0:SystemCall": 4}
    kept = {row for row in table(store) if row[3] == "SystemCall"}
    assert kept == {row for row in before if row[3] == "SystemCall"}
    # The events read the same as before (upcasting on read == rewriting).
    for (instance, execution), events in legacy_reads.items():
        assert store.read(instance, execution) == events
    (run,) = list_runs(store)
    assert (run.run_id, run.status, run.rows, run.strategy) == (
        report.run_id,
        "completed",
        report.changed,
        "eager",
    )
    log = store.backend.migration_log(report.run_id)
    assert sum(json.loads(entry.changes)["rows"] for entry in log) == report.changed
    assert {(e.instance_id, e.execution_id) for e in log} <= set(legacy_reads)
    # A second run finds nothing to do.
    again = migrate(store, strategy="eager")
    assert again.changed == 0 and again.run_id is None and again.status == "nothing-to-do"
    restored = rollback(store, report.run_id, batch_size=7)
    assert restored.restored == report.changed
    assert table(store) == before
    assert rollback(store, report.run_id).already
    assert [r.status for r in list_runs(store)] == ["rolled_back"]


def test_auto_is_lazy_for_a_v1_store(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.import_rows(rows_of(DUROXIDE_JSONL))
    before = table(store)
    report = migrate(store)
    assert report.strategy == "lazy" and "auto chose lazy" in report.note
    assert table(store) == before
    # Nothing to do: nothing written, not even a run (issue 15 item 18).
    assert report.status == "nothing-to-do" and report.run_id is None
    assert report.scanned == store.count() and list_runs(store) == []


def test_explicit_lazy_rewrites_nothing(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.import_rows(rows_of(V0A_JSONL))
    before = table(store)
    report = migrate(store, strategy="lazy")
    assert report.changed == 0 and table(store) == before
    assert migrate(store, dry_run=True).strategy == "eager"


def test_events_appended_during_a_migration_survive(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.import_rows(rows_of(MIXED_JSONL))
    legacy_count = store.count()
    appended: list[str] = []

    def append_between_batches(batch: int) -> None:
        instance = f"live-{batch}"
        store.append(instance, 1, [started()], expected_last_event_id=0)
        store.append(
            instance,
            1,
            [ev.ActivityScheduled(event_id=2, name="A", input="1")],
            expected_last_event_id=1,
        )
        appended.append(instance)

    report = migrate(store, batch_size=20, on_batch=append_between_batches)
    assert report.batches >= 5 and len(appended) == report.batches
    assert store.count() == legacy_count + 2 * len(appended)
    for instance in appended:
        events = store.read(instance, 1)
        assert [e.event_type for e in events] == ["OrchestrationStarted", "ActivityScheduled"]
        assert all(e.has_timestamp for e in events)
    assert generations(store) == {"V1": store.count() - 4, "V0:SystemCall": 4}
    rollback(store, str(report.run_id))
    # The rollback restores the legacy rows and leaves the appended ones alone.
    assert store.count() == legacy_count + 2 * len(appended)
    for instance in appended:
        assert len(store.read(instance, 1)) == 2


def test_log_file_records_every_change(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.import_rows(rows_of(V0A_JSONL))
    log = io.StringIO()
    report = migrate(store, batch_size=30, log=log)
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert lines[0]["run_id"] == report.run_id and lines[0]["strategy"] == "eager"
    changes = [c for line in lines[1:-1] for c in line["changes"]]
    assert len(changes) == report.changed
    failures = [c for c in changes if c["from"] == "V0a"]
    assert failures and all(c["via"] == ["V0a", "V0b"] for c in failures)
    assert lines[-1]["status"] == "completed"
    assert lines[-1]["kept"] == {"SystemCall (no V1 form)": 4}


def test_backfill_timestamps_is_a_reversible_run(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.import_rows(rows_of(V0B_JSONL))
    before = table(store)
    migrated = migrate(store)
    after_migration = table(store)
    dry = backfill_timestamps(store, dry_run=True)
    assert dry.changed == migrated.changed and table(store) == after_migration
    report = backfill_timestamps(store, batch_size=50)
    assert report.changed == migrated.changed
    assert "second precision" in report.note
    created = {
        (r["instance_id"], r["execution_id"], r["event_id"]): r["created_at"]
        for r in store.export_rows()
    }
    for instance in store.instances():
        for execution in store.executions(instance):
            for event in store.read(instance, execution):
                if type(event) is ev.SystemCall:
                    assert not event.has_timestamp
                    continue
                stamp = created[(instance, execution, event.event_id)]
                assert event.timestamp_ms % 1000 == 0 and event.has_timestamp
                assert event.timestamp_ms == _ms(stamp)
    # Asked again: the request is recorded, nothing is done twice.
    again = backfill_timestamps(store)
    assert again.status == "already-requested" and again.run_id == report.run_id
    forced = backfill_timestamps(store, force=True)
    assert forced.changed == 0
    # Newest first: the migration cannot be undone under the backfill.
    with pytest.raises(EventStoreError, match="roll those back first"):
        rollback(store, str(migrated.run_id))
    rollback(store, str(report.run_id))
    assert table(store) == after_migration
    rollback(store, str(migrated.run_id))
    assert table(store) == before


def _ms(created_at: str) -> int:
    from datetime import UTC, datetime

    moment = datetime.strptime(created_at[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1000


def test_errors_name_what_is_wrong(store_factory: StoreFactory) -> None:
    store = store_factory()
    with pytest.raises(SchemaEvolutionError, match="only be migrated to V1"):
        migrate(store, to="V0a")
    with pytest.raises(EventStoreError, match="no migration run 'nope'"):
        rollback(store, "nope")
    with pytest.raises(EventStoreError, match="batch size"):
        migrate(store, batch_size=0)


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def test_cli_migrate_migrations_rollback(tmp_path: Path) -> None:
    runner = CliRunner()
    target = str(tmp_path / "s.db")
    assert runner.invoke(main, ["import", target, str(MIXED_JSONL)]).exit_code == 0
    with_legacy = sorted(json.dumps(r) for r in _export(target))
    dry = runner.invoke(main, ["migrate", target, "--dry-run"])
    assert dry.exit_code == 0 and "nothing was written" in dry.output
    assert "4 SystemCall (no V1 form)" in dry.output
    log = tmp_path / "run.jsonl"
    result = runner.invoke(
        main, ["migrate", target, "--to", "V1", "--batch-size", "25", "--log", str(log)]
    )
    assert result.exit_code == 0, result.output
    run_id = result.output.strip().splitlines()[-1].removeprefix("run id: ")
    assert run_id.startswith("mig-")
    assert json.loads(log.read_text().splitlines()[0])["run_id"] == run_id
    listed = runner.invoke(main, ["migrations", target, "--json"])
    (run,) = [json.loads(line) for line in listed.output.splitlines()]
    assert {k: run[k] for k in ("run_id", "strategy", "status")} == {
        "run_id": run_id,
        "strategy": "eager",
        "status": "completed",
    }
    assert run["rows"] == 97
    assert run_id in runner.invoke(main, ["migrations", target]).output
    verify = runner.invoke(main, ["verify", target])
    assert verify.exit_code == 0, verify.output
    back = runner.invoke(main, ["rollback", target, "--run", run_id])
    assert back.exit_code == 0 and "restored 97 rows" in back.output
    assert sorted(json.dumps(r) for r in _export(target)) == with_legacy
    missing = runner.invoke(main, ["rollback", target, "--run", "nope"])
    assert missing.exit_code == 1 and "no migration run 'nope'" in missing.output
    bad = runner.invoke(main, ["migrate", target, "--to", "V9"])
    assert bad.exit_code == 1 and "Traceback" not in bad.output


def test_cli_backfill(tmp_path: Path) -> None:
    runner = CliRunner()
    target = str(tmp_path / "s.db")
    runner.invoke(main, ["import", target, str(V0B_JSONL)])
    runner.invoke(main, ["migrate", target])
    result = runner.invoke(main, ["backfill-timestamps", target, "--batch-size", "40"])
    assert result.exit_code == 0, result.output
    assert "second precision" in result.output
    run_id = result.output.strip().splitlines()[-1].removeprefix("run id: ")
    assert run_id.startswith("bf-")
    again = runner.invoke(main, ["backfill-timestamps", target])
    assert again.exit_code == 0 and "already done by run " + run_id in again.output


def _export(target: str) -> list[dict[str, Any]]:
    import eventstore

    with eventstore.open(target, readonly=True) as store:
        return list(store.export_rows())


# --------------------------------------------------------------------------
# Tables duroxide created (no position column of ours)
# --------------------------------------------------------------------------


def test_migrate_a_postgres_table_duroxide_created(
    postgres_target_factory: Callable[[], str],
) -> None:
    import psycopg

    import eventstore

    url = postgres_target_factory()
    with psycopg.connect(url) as con:
        con.execute(
            "CREATE TABLE history (instance_id TEXT NOT NULL,"
            " execution_id BIGINT NOT NULL, event_id BIGINT NOT NULL, event_type TEXT NOT NULL,"
            " event_data TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL,"
            " PRIMARY KEY (instance_id, execution_id, event_id))"
        )  # as duroxide's PostgreSQL provider creates it
        with con.cursor() as cur:
            cur.executemany(
                "INSERT INTO history VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (
                        r["instance_id"],
                        r["execution_id"],
                        r["event_id"],
                        r["event_type"],
                        r["event_data"],
                        r["created_at"] + "+00",
                    )
                    for r in rows_of(MIXED_JSONL)
                ],
            )
        columns_before = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = 'history' ORDER BY ordinal_position"
        ).fetchall()
    with eventstore.open(url) as store:
        assert not store.stable_positions
        before = table(store)
        report = migrate(store, batch_size=17)
        assert report.changed == 97
        assert generations(store) == {"V1": len(before) - 4, "V0:SystemCall": 4}
        rollback(store, str(report.run_id))
        assert table(store) == before
    with psycopg.connect(url) as con:
        assert (
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_name = 'history' ORDER BY ordinal_position"
            ).fetchall()
            == columns_before
        )


def test_migrate_the_real_duroxide_sqlite_database(duroxide_db: Path) -> None:
    import sqlite3

    import eventstore

    con = sqlite3.connect(duroxide_db)
    schema_before = con.execute("SELECT sql FROM sqlite_master WHERE name = 'history'").fetchall()
    con.close()
    with eventstore.open(str(duroxide_db)) as store:
        # legacy rows next to the runtime's own V1 rows
        store.import_rows(
            {**r, "instance_id": "legacy-" + r["instance_id"]} for r in rows_of(V0A_JSONL)
        )
        before = table(store)
        report = migrate(store)
        assert report.strategy == "eager" and report.current == 154
        rollback(store, str(report.run_id))
        assert table(store) == before
    con = sqlite3.connect(duroxide_db)
    assert (
        con.execute("SELECT sql FROM sqlite_master WHERE name = 'history'").fetchall()
        == schema_before
    )
    con.close()


def test_progress_counts_every_row_once(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.import_rows(rows_of(MIXED_JSONL))
    seen: list[int] = []
    batches: list[int] = []
    report = migrate(store, batch_size=11, progress=seen.append, on_batch=batches.append)
    assert sum(seen) == report.scanned == store.count()
    assert max(seen) <= 11 and batches == list(range(1, report.batches + 1))
    dry: list[int] = []
    migrate(store, dry_run=True, strategy="eager", progress=dry.append)
    assert sum(dry) == store.count()


def test_rows_whose_columns_disagree_are_kept_and_reported(tmp_path: Path) -> None:
    import sqlite3

    import eventstore

    target = tmp_path / "s.db"
    with eventstore.open(str(target)) as store:
        store.import_rows(rows_of(V0B_JSONL))
    con = sqlite3.connect(target)
    con.execute(
        "UPDATE history SET event_type = 'TimerFired'"
        " WHERE instance_id = 'failing-7-0' AND event_id = 2"
    )
    con.commit()
    con.close()
    with eventstore.open(str(target)) as store:
        report = migrate(store)
        assert report.kept["columns disagree with the event"] == 1
        assert report.samples["columns disagree with the event"] == [
            "failing-7-0 execution 1 event 2 position 2"
        ]
        (row,) = [
            r
            for r in store.export_rows()
            if r["instance_id"] == "failing-7-0" and r["event_id"] == 2
        ]
        assert row["event_type"] == "TimerFired" and row["event_data"].startswith('{"Activity')


def test_an_unfinished_rollback_blocks_new_runs(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.import_rows(rows_of(V0A_JSONL))
    before = table(store)
    first = migrate(store)
    (run,) = list_runs(store)
    with store.backend.writing() as writer:  # as a rollback killed midway leaves it
        writer.save_migration_run(run._replace(status="rolling_back"))
    with pytest.raises(EventStoreError, match=f"rollback of run {first.run_id} did not finish"):
        migrate(store)
    rollback(store, str(first.run_id))
    assert table(store) == before
    assert migrate(store).changed == first.changed


def test_backfill_reads_created_at_with_an_offset_as_that_instant(tmp_path: Path) -> None:
    import eventstore

    rows = rows_of(DUROXIDE_JSONL)[:1]
    data = json.loads(rows[0]["event_data"])
    data["timestamp_ms"] = 0
    rows[0] |= {"event_data": json.dumps(data), "created_at": "2026-01-02 12:00:00.900+02:00"}
    with eventstore.open(str(tmp_path / "s.db")) as store:
        store.import_rows(rows)
        assert backfill_timestamps(store).changed == 1
        (event,) = store.read(rows[0]["instance_id"], rows[0]["execution_id"])
        assert event.timestamp_ms == _ms("2026-01-02 10:00:00")
