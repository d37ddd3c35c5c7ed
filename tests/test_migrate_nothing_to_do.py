"""Runs with nothing to do write nothing; backfill covers legacy rows (issue 15 items 17, 18)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from click.testing import CliRunner

import eventstore
from eventstore import events as ev
from eventstore.cli import main
from eventstore.codec import Generation
from eventstore.evolution.migrate import backfill_timestamps, list_runs, migrate, rollback
from tests.conftest import DUROXIDE_JSONL, V0B_JSONL, StoreFactory
from tests.test_migrate import MIXED_JSONL, _ms, generations, rows_of, table


def _tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as con:
        return sorted(r[0] for r in con.execute("SELECT name FROM sqlite_master"))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_nothing_to_do_on_duroxides_database_writes_nothing(duroxide_db: Path) -> None:
    tables, digest = _tables(duroxide_db), _digest(duroxide_db)
    with eventstore.open(str(duroxide_db)) as store:
        rows = store.count()
        for strategy in ("auto", "eager", "lazy"):
            report = migrate(store, strategy=strategy)  # type: ignore[arg-type]
            assert report.status == "nothing-to-do" and report.run_id is None
            assert report.changed == 0
        assert report.scanned == 0 or report.scanned == rows
        assert backfill_timestamps(store).status == "nothing-to-do"
        assert list_runs(store) == []
    assert _tables(duroxide_db) == tables
    assert not any(name.startswith("eventstore_") for name in _tables(duroxide_db))
    assert _digest(duroxide_db) == digest
    assert not Path(str(duroxide_db) + ".eventstore-lock").exists()


def test_dry_runs_count_what_they_examined(duroxide_db: Path) -> None:
    with eventstore.open(str(duroxide_db), readonly=True) as store:
        rows = store.count()
    runner = CliRunner()
    for args in (["migrate"], ["migrate", "--strategy", "eager"], ["backfill-timestamps"]):
        result = runner.invoke(main, [*args, str(duroxide_db), "--dry-run"])
        assert result.exit_code == 0, result.output
        assert f"{rows} rows examined, 0 to rewrite" in result.output
    done = runner.invoke(main, ["migrate", str(duroxide_db)])
    assert done.exit_code == 0 and f"{rows} rows examined, none to rewrite" in done.output
    assert "run id" not in done.output


def test_backfill_on_a_never_migrated_store_stamps_legacy_rows(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.import_rows(rows_of(MIXED_JSONL))
    before = table(store)
    legacy_keys = {
        (row.instance_id, row.execution_id, row.event_id)
        for page in store.scan()
        for row in page
        if store.decode_raw(row).generation != Generation.V1
    }
    found = generations(store)
    legacy = sum(n for name, n in found.items() if name != "V1" and "SystemCall" not in name)
    report = backfill_timestamps(store, batch_size=40)
    assert report.changed == legacy and report.run_id is not None
    assert set(report.by_generation) >= {"V0a", "V0b"}
    assert generations(store) == {"V1": legacy + found.get("V1", 0), "V0:SystemCall": 4}
    created = {
        (r["instance_id"], r["execution_id"], r["event_id"]): r["created_at"]
        for r in store.export_rows()
    }
    for instance in store.instances():
        for execution in store.executions(instance):
            for event in store.read(instance, execution):
                key = (instance, execution, event.event_id)
                if key in legacy_keys and type(event) is not ev.SystemCall:
                    stamp = created[(instance, execution, event.event_id)]
                    assert event.timestamp_ms == _ms(stamp)
    # One reversible run: the legacy rows come back byte for byte.
    rollback(store, report.run_id)
    assert table(store) == before


def test_a_backfill_that_changed_nothing_does_not_block_the_next(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    store.import_rows(rows_of(DUROXIDE_JSONL))  # every V1 row has its timestamp
    first = backfill_timestamps(store)
    assert first.status == "nothing-to-do" and list_runs(store) == []
    # Later rows arrive without timestamps (legacy rows imported): they get them.
    store.import_rows(
        {**row, "instance_id": "late-" + row["instance_id"]} for row in rows_of(V0B_JSONL)
    )
    second = backfill_timestamps(store)
    assert second.status == "completed" and second.changed > 0
    read = store.codec.decode_detailed
    for page in store.scan():
        for row in page:
            found = read(row.event_data, instance_id=row.instance_id, execution_id=row.execution_id)
            if type(found.event) is not ev.SystemCall:
                assert found.generation == Generation.V1 and found.event.has_timestamp
    # A later run with work to do is not blocked either once this one is undone.
    assert backfill_timestamps(store).status == "already-requested"
    rollback(store, str(second.run_id))
    assert backfill_timestamps(store).changed == second.changed
