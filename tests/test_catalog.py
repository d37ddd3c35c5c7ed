"""The execution catalog beyond the conformance suite: `eventstore ls` and
`eventstore catalog`, stores from before the catalog, rows another program
writes (raw sqlite3 here; the real duroxide runtime in test_catalog_interop.py),
and verify naming a catalog row that disagrees with the history."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

import eventstore
from eventstore import events as ev
from eventstore.cli import main
from eventstore.codec import encode
from eventstore.store.row_types import FeedRow
from eventstore.store.verify import verify
from eventstore.testing._model import CLOCK_MS, scheduled, started

DAY_MS = 86_400_000


def _start(name: str, at: int) -> ev.OrchestrationStarted:
    return msgspec.structs.replace(started(timestamp_ms=at), name=name)


def _done(event_id: int, at: int) -> ev.OrchestrationCompleted:
    return ev.OrchestrationCompleted(event_id=event_id, output='"ok"', timestamp_ms=at)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Six instances over three days; `loop` continued as new once."""
    path = tmp_path / "catalog.db"
    with eventstore.open(str(path)) as store:
        for n in range(5):
            at = CLOCK_MS + (n % 3) * DAY_MS + n
            store.append(f"order-{n}", 1, [_start("Order" if n % 2 else "Refund", at)])
            if n < 3:
                store.append(f"order-{n}", 1, [_done(2, at + 1500 + n)])
        store.append(
            "loop",
            1,
            [
                _start("Loop", CLOCK_MS),
                ev.OrchestrationContinuedAsNew(event_id=2, input="1", timestamp_ms=CLOCK_MS + 5),
            ],
        )
        store.append("loop", 2, [_start("Loop", CLOCK_MS + 10)])
    return path


def _ls(*args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(main, ["ls", "--json", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_ls_lists_each_instance_newest_first_with_times(db: Path) -> None:
    rows = _ls(str(db))
    assert [r["instance_id"] for r in rows] == [
        "order-2", "order-4", "order-1", "loop", "order-3", "order-0"
    ]  # fmt: skip
    first = {r["instance_id"]: r for r in rows}
    assert first["loop"]["execution_id"] == 2
    assert first["order-0"]["status"] == "completed"
    assert first["order-0"]["duration_ms"] == 1500
    assert first["order-4"]["ended_ms"] is None
    table = CliRunner().invoke(main, ["ls", str(db)])
    header = table.stdout.splitlines()[0].split()
    assert header == [
        "instance", "execution", "orchestration", "status", "started", "ended", "duration",
        "events",
    ]  # fmt: skip
    line = next(line for line in table.stdout.splitlines() if line.startswith("order-0 "))
    assert "2023-11-14 22:13:20" in line and "1.500s" in line and "completed" in line
    assert table.stdout.splitlines()[-1] == "6 instances"


def test_ls_filters_combine(db: Path) -> None:
    target = str(db)
    assert {r["instance_id"] for r in _ls(target, "--status", "completed")} == {
        "order-0", "order-1", "order-2"
    }  # fmt: skip
    assert {r["instance_id"] for r in _ls(target, "--status", "running", "--name", "Order")} == {
        "order-3"
    }
    day_two = _ls(target, "--since", "2023-11-15", "--until", "2023-11-16T00:00:00Z")
    assert {r["instance_id"] for r in day_two} == {"order-1", "order-4"}
    assert [r["instance_id"] for r in _ls(target, "--limit", "2", "--offset", "1")] == [
        "order-4",
        "order-1",
    ]
    assert [r["instance_id"] for r in _ls(target, "--instance", "order-_")][:1] == ["order-2"]
    chain = _ls(target, "--all-executions", "--instance", "loop")
    assert [(r["execution_id"], r["status"]) for r in chain] == [
        (2, "running"),
        (1, "continued_as_new"),
    ]
    assert _ls(target, "--status", "continued_as_new") == []  # the latest is running
    assert len(_ls(target, "--shard", "2023-11-14")) == 3


def test_ls_csv_has_a_header_and_every_field(db: Path) -> None:
    result = CliRunner().invoke(main, ["ls", "--csv", "--status", "completed", str(db)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 3
    assert set(rows[0]) >= {"instance_id", "status", "started_ms", "duration_ms", "shard"}
    assert {r["duration_ms"] for r in rows} == {"1500", "1501", "1502"}


def test_ls_refuses_bad_options_clearly(db: Path) -> None:
    for args, message in (
        (["--since", "yesterday"], "is not an ISO date"),
        (["--status", "done"], "'done' is not one of"),
        (["--json", "--csv"], "exclude each other"),
        (["--limit", "-1"], "-1 is not in the range"),
    ):
        result = CliRunner().invoke(main, ["ls", *args, str(db)])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output


def _drop_catalog(path: Path) -> None:
    con = sqlite3.connect(path)
    with con:
        con.execute("DROP TABLE eventstore_executions")
        con.execute("DROP TABLE eventstore_catalog_state")
    con.close()


def test_a_store_from_before_the_catalog_lists_from_the_history_until_rebuilt(db: Path) -> None:
    kept = _ls(str(db), "--all-executions")
    _drop_catalog(db)
    assert _ls(str(db), "--all-executions") == kept  # derived from the history
    with eventstore.open(str(db)) as store:
        store.append("order-3", 1, [_done(2, CLOCK_MS + 9)])  # nothing to keep yet
    rebuilt = CliRunner().invoke(main, ["catalog", "rebuild", str(db)])
    assert rebuilt.exit_code == 0 and "catalog rebuilt: 7 executions" in rebuilt.output
    with eventstore.open(str(db)) as store:
        assert store.catalog_record("order-3", 1).status == "completed"  # type: ignore[union-attr]
        store.append("order-4", 1, [_done(2, CLOCK_MS + 9)])  # kept from now on
        assert store.catalog_record("order-4", 1).status == "completed"  # type: ignore[union-attr]
        assert verify(store).ok


def _foreign_insert(
    path: Path, instance_id: str, execution_id: int, events: list[ev.Event]
) -> None:
    """Rows inserted the way another program does: plain SQL, no catalog."""
    con = sqlite3.connect(path)
    with con:
        con.executemany(
            "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (instance_id, execution_id, e.event_id, e.event_type, encode(e).decode())
                for e in (
                    msgspec.structs.replace(e, instance_id=instance_id, execution_id=execution_id)
                    for e in events
                )
            ],
        )
    con.close()


def test_catch_up_takes_in_rows_another_program_wrote(db: Path) -> None:
    _foreign_insert(db, "order-3", 1, [_done(2, CLOCK_MS + 7)])
    _foreign_insert(db, "foreign", 1, [_start("Foreign", CLOCK_MS), scheduled(2)])
    verified = CliRunner().invoke(main, ["verify", "--json", str(db)])
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["catalog_behind"] == 2
    text = CliRunner().invoke(main, ["verify", str(db)])
    assert "execution catalog behind the history for 2 executions" in text.output
    assert "catalog catch-up TARGET" in text.output
    with eventstore.open(str(db)) as store:
        report = verify(store)
        assert report.ok  # behind, not wrong
        assert sorted((p.location.instance_id, p.kind) for p in report.catalog_behind) == [
            ("foreign", "catalog-behind"),
            ("order-3", "catalog-behind"),
        ]
        assert store.catalog_catch_up() == 2
        assert store.catalog_catch_up() == 0
        assert list(store.catalog_mismatches()) == []
        assert store.catalog_record("order-3", 1).status == "completed"  # type: ignore[union-attr]
    # An append after foreign rows recomputes the row in its own transaction.
    _foreign_insert(db, "foreign", 1, [scheduled(3)])
    with eventstore.open(str(db)) as store:
        store.append("foreign", 1, [scheduled(4)])
        record = store.catalog_record("foreign", 1)
        assert record is not None and (record.event_count, record.last_event_id) == (4, 4)
        assert list(store.catalog_mismatches()) == []
    caught = CliRunner().invoke(main, ["catalog", "catch-up", str(db)])
    assert caught.exit_code == 0 and "0 executions changed" in caught.output


def test_verify_names_a_catalog_row_that_disagrees(db: Path) -> None:
    con = sqlite3.connect(db)
    with con:
        con.execute(
            "UPDATE eventstore_executions SET status = 'failed', bytes = 1"
            " WHERE instance_id = 'order-1'"
        )
    con.close()
    result = CliRunner().invoke(main, ["verify", str(db)])
    assert result.exit_code == 1
    assert "catalog: instance 'order-1', execution 1: the catalog says" in result.output
    assert "status 'failed' (history: 'completed')" in result.output
    assert "catalog rebuild" in result.output
    assert CliRunner().invoke(main, ["catalog", "rebuild", str(db)]).exit_code == 0
    assert CliRunner().invoke(main, ["verify", str(db)]).exit_code == 0


def test_migrations_keep_the_catalog(tmp_path: Path) -> None:
    """backfill-timestamps gives legacy rows times: their catalog rows follow,
    in the migration's own transaction (shard 'root' becomes a day)."""
    from eventstore.evolution.migrate import backfill_timestamps
    from eventstore.samples import legacy_rows

    path = tmp_path / "legacy.db"
    with eventstore.open(str(path)) as store:
        store.import_rows(legacy_rows())
        assert {r.shard for r in store.catalog_executions()} == {"root"}
        backfill_timestamps(store)
        assert list(store.catalog_mismatches()) == []
        assert {r.shard for r in store.catalog_executions()} != {"root"}


@pytest.mark.postgres
def test_postgres_appends_after_foreign_rows_recompute_side_by_side(
    postgres_target_factory: Callable[[], str],
) -> None:
    """Appends whose catalog row another program left behind recompute it
    under their own execution's lock: several at once neither deadlock nor
    wait for the table."""
    import psycopg

    target = postgres_target_factory()
    writers = 6
    with eventstore.open(target) as store:
        for n in range(writers):
            store.append(f"pg-{n}", 1, [_start("Pg", CLOCK_MS)])
    with psycopg.connect(target, autocommit=True) as con:
        for n in range(writers):
            event = msgspec.structs.replace(scheduled(2), instance_id=f"pg-{n}", execution_id=1)
            con.execute(
                "INSERT INTO history (instance_id, execution_id, event_id, event_type,"
                " event_data, created_at) VALUES (%s, 1, 2, %s, %s, now())",
                (f"pg-{n}", event.event_type, encode(event).decode()),
            )
    with eventstore.open(target, pool_max_size=writers + 2) as store:
        barrier = threading.Barrier(writers)

        def append(n: int) -> None:
            barrier.wait()
            store.append(f"pg-{n}", 1, [scheduled(3)], expected_last_event_id=2)

        threads = [threading.Thread(target=append, args=(n,)) for n in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
        assert list(store.catalog_mismatches()) == []
        assert {r.event_count for r in store.catalog_executions()} == {3}


def test_catch_up_stops_at_the_feed_end_it_began_with(db: Path) -> None:
    """Another program writing all along (here: a new execution after every
    feed page the catch-up reads) does not keep it going: it takes in what
    was there when it began, and the next catch-up takes in the rest."""
    _foreign_insert(db, "foreign-0", 1, [_start("Foreign", CLOCK_MS), scheduled(2)])
    with eventstore.open(str(db)) as store:
        original = store.backend.feed
        written = 0

        def feed_while_writing(after: int, limit: int) -> list[FeedRow]:
            nonlocal written
            page = original(after, limit)
            written += 1
            assert written < 50, "the catch-up chased the writer"
            _foreign_insert(db, f"foreign-{written}", 1, [_start("Foreign", CLOCK_MS)])
            return page

        store.backend.feed = feed_while_writing  # type: ignore[method-assign]
        changed = store.catalog_catch_up()
        store.backend.feed = original  # type: ignore[method-assign]
        # foreign-0 was there when it began; it reads at most one page past.
        assert store.catalog_record("foreign-0", 1) is not None
        assert 1 <= changed <= 2 and written <= 3
        assert store.catalog_catch_up() == written + 1 - changed
        assert list(store.catalog_mismatches()) == []


@pytest.mark.postgres
def test_postgres_catch_up_finds_behind_and_missing_executions(
    postgres_target_factory: Callable[[], str],
) -> None:
    """One lookup per feed page (catalog_last_ids) tells the executions whose
    row is behind or missing from those the store's appends keep current."""
    import psycopg

    target = postgres_target_factory()
    odd = "pg 'quoted' \\ é"
    with eventstore.open(target) as store:
        for name in ("pg-current", "pg-behind", odd):
            store.append(name, 1, [_start("Pg", CLOCK_MS)])
    with psycopg.connect(target, autocommit=True) as con:
        for name, execution, event in (
            ("pg-behind", 1, scheduled(2)),
            (odd, 1, scheduled(2)),
            ("pg-missing", 1, _start("Pg", CLOCK_MS)),
        ):
            event = msgspec.structs.replace(event, instance_id=name, execution_id=execution)
            con.execute(
                "INSERT INTO history (instance_id, execution_id, event_id, event_type,"
                " event_data, created_at) VALUES (%s, %s, %s, %s, %s, now())",
                (name, execution, event.event_id, event.event_type, encode(event).decode()),
            )
    with eventstore.open(target) as store:
        assert store.catalog_catch_up() == 3
        assert store.catalog_catch_up() == 0
        assert list(store.catalog_mismatches()) == []
        assert store.catalog_record("pg-missing", 1) is not None
        assert store.catalog_record(odd, 1).event_count == 2  # type: ignore[union-attr]
