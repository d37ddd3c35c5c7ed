"""What is particular to the SQLite backend: files, duroxide's databases, races."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
from pathlib import Path

import pytest

import eventstore
from eventstore import (
    ConcurrencyError,
    DecodeError,
    PositionsRenumberedError,
    StoreBusyError,
    StoreError,
    StoreNotFoundError,
    TargetError,
)
from eventstore import events as ev
from eventstore.store.verify import verify


def started(event_id: int = 1) -> ev.OrchestrationStarted:
    return ev.OrchestrationStarted(event_id=event_id, name="O", version="1.0.0", input="0")


def schema(path: Path) -> list[tuple[str, str]]:
    """duroxide's tables and indexes (eventstore may add its own, prefixed eventstore_)."""
    con = sqlite3.connect(path)
    try:
        return sorted(
            con.execute(
                "SELECT name, sql FROM sqlite_master"
                " WHERE sql IS NOT NULL AND name NOT LIKE 'eventstore\\_%' ESCAPE '\\'"
            )
        )
    finally:
        con.close()


# -- targets ---------------------------------------------------------------------


def test_targets_in_every_spelling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for target, path in [
        ("plain.db", tmp_path / "plain.db"),
        ("sqlite:///relative.db", tmp_path / "relative.db"),
        (f"sqlite:///{tmp_path.name}-x.db".replace(tmp_path.name + "-", ""), tmp_path / "x.db"),
        ("sqlite:///" + str(tmp_path / "absolute.db"), tmp_path / "absolute.db"),
    ]:
        with eventstore.open(target) as store:
            store.append("i", 1, [started()])
        assert path.exists(), target
    with eventstore.open(":memory:") as store:
        assert store.count() == 0
    with pytest.raises(TargetError):
        eventstore.open("sqlite://host/db")
    with pytest.raises(TargetError):
        eventstore.open("")


def test_readonly_open_of_a_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="no database"):
        eventstore.open(str(tmp_path / "missing.db"), readonly=True)
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).execute("CREATE TABLE other (x)").connection.close()
    with pytest.raises(StoreNotFoundError, match="no history table"):
        eventstore.open(str(empty), readonly=True)


def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database file at all" * 100)
    with pytest.raises(StoreError):
        eventstore.open(str(junk))


def test_created_store_uses_wal_and_duroxide_columns(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with eventstore.open(str(path)) as store:
        con = store.backend.connection  # type: ignore[attr-defined]
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert con.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        columns = [r[1] for r in con.execute("PRAGMA table_info(history)")]
        assert columns[1:] == [
            "instance_id", "execution_id", "event_id", "event_type", "event_data", "created_at"
        ]  # fmt: skip
        assert store.stable_positions
    with eventstore.open(str(path), synchronous="full") as store:
        con = store.backend.connection  # type: ignore[attr-defined]
        assert con.execute("PRAGMA synchronous").fetchone()[0] == 2


# -- duroxide's own database -------------------------------------------------------


def test_opens_a_duroxide_database_without_changing_its_tables(duroxide_db: Path) -> None:
    before = schema(duroxide_db)
    with eventstore.open(str(duroxide_db)) as store:
        assert not store.stable_positions
        assert store.count() == 154
        assert len(store.instances()) == 20
        report = verify(store)
        assert report.ok, report.problems
        store.append("added-by-eventstore", 1, [started()])
    assert schema(duroxide_db) == before
    row = (
        sqlite3.connect(duroxide_db)
        .execute(
            "SELECT event_type, event_data, created_at FROM history WHERE instance_id = ?",
            ("added-by-eventstore",),
        )
        .fetchone()
    )
    assert row[0] == "OrchestrationStarted" and row[2] is not None
    assert '"type":"OrchestrationStarted"' in row[1]


def test_readonly_against_a_duroxide_database(duroxide_db: Path) -> None:
    with eventstore.open(str(duroxide_db), readonly=True) as store:
        events = store.read("hello-7-0")
        assert [e.event_type for e in events][:2] == ["OrchestrationStarted", "ActivityScheduled"]
        assert all(e.has_timestamp for e in events)


def test_feed_positions_detect_renumbering_on_duroxide_tables(duroxide_db: Path) -> None:
    with eventstore.open(str(duroxide_db)) as store:
        feed = list(store.read_all())
        assert len(feed) == 154
        resume_point = feed[100]
        con = store.backend.connection  # type: ignore[attr-defined]
        # Maintenance outside eventstore that renumbers implicit rowids: SQLite
        # documents that VACUUM may; a dump and reload (here in key order)
        # certainly does.
        con.execute("CREATE TEMP TABLE saved AS SELECT * FROM history")
        con.execute("DELETE FROM history")
        con.execute(
            "INSERT INTO history SELECT * FROM saved ORDER BY instance_id, execution_id, event_id"
        )
        assert store.backend.key_at(resume_point.position) != (  # type: ignore[attr-defined]
            resume_point.instance_id,
            resume_point.execution_id,
            resume_point.event.event_id,
        )
        with pytest.raises(PositionsRenumberedError, match="re-read"):
            list(store.read_all(after=resume_point))
        # A consumer that re-reads from the start sees every event once.
        assert len(list(store.read_all())) == 154


def test_positions_survive_vacuum_on_eventstore_tables(tmp_path: Path) -> None:
    with eventstore.open(str(tmp_path / "s.db")) as store:
        for n in range(5):
            store.append(f"i{n}", 1, [started(), ev.TimerCreated(event_id=2, fire_at_ms=n)])
        feed = list(store.read_all())
        con = store.backend.connection  # type: ignore[attr-defined]
        con.execute("DELETE FROM history WHERE rowid = ?", (feed[0].position,))
        con.execute("VACUUM")
        assert list(store.read_all(after=feed[5])) == feed[6:]


def test_undecodable_row_names_instance_execution_event_and_position(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with eventstore.open(str(path)) as store:
        store.append("i", 1, [started()])
        store.backend.connection.execute(  # type: ignore[attr-defined]
            "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
            " VALUES ('i', 1, 2, 'ActivityScheduled', '{\"ActivityScheduled\":{\"event_id\":2')"
        )
        with pytest.raises(DecodeError) as caught:
            store.read("i")
        message = str(caught.value)
        for part in ("instance 'i'", "execution 1", "event 2", "position 2"):
            assert part in message
        with pytest.raises(DecodeError, match="position 2"):
            list(store.read_all())
        report = verify(store)
        assert [p.kind for p in report.problems] == ["undecodable"]


def test_busy_database_raises_store_busy_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with eventstore.open(str(path), busy_timeout_ms=50) as store:
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreBusyError):
                store.append("i", 1, [started()])
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        store.append("i", 1, [started()])


def test_transaction_shares_the_connection_with_the_runtime(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with eventstore.open(str(path)) as store:
        store.backend.connection.execute("CREATE TABLE acks (instance_id TEXT)")  # type: ignore[attr-defined]
        with store.transaction() as tx:
            tx.append("i", 1, [started()])
            tx.connection.execute("INSERT INTO acks VALUES ('i')")
        with pytest.raises(ZeroDivisionError), store.transaction() as tx:
            tx.append("j", 1, [started()])
            tx.connection.execute("INSERT INTO acks VALUES ('j')")
            _ = 1 / 0
    con = sqlite3.connect(path)
    assert con.execute("SELECT instance_id FROM acks").fetchall() == [("i",)]
    assert con.execute("SELECT DISTINCT instance_id FROM history").fetchall() == [("i",)]


# -- concurrency -------------------------------------------------------------------


def test_two_connections_race_on_one_expected_id_exactly_one_wins(tmp_path: Path) -> None:
    path = str(tmp_path / "race.db")
    with eventstore.open(path) as setup:
        setup.append("i", 1, [started()])
    for round_ in range(20):
        stores = [eventstore.open(path), eventstore.open(path)]
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def contend(
            store: eventstore.HistoryStore,
            name: str,
            barrier: threading.Barrier = barrier,
            outcomes: list[str] = outcomes,
            last: int = round_ + 1,
        ) -> None:
            barrier.wait()
            try:
                store.append(
                    "i",
                    1,
                    [ev.CustomStatusUpdated(event_id=last + 1, status=name)],
                    expected_last_event_id=last,
                )
                outcomes.append("won")
            except ConcurrencyError:
                outcomes.append("lost")

        threads = [
            threading.Thread(target=contend, args=(s, f"writer{n}")) for n, s in enumerate(stores)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for s in stores:
            s.close()
        assert sorted(outcomes) == ["lost", "won"], round_
    with eventstore.open(path) as check:
        assert [e.event_id for e in check.read("i")] == list(range(1, 22))


def _append_many(path: str, worker: int, executions: int, batches: int) -> None:
    with eventstore.open(path, busy_timeout_ms=30_000) as store:
        for n in range(executions):
            instance = f"w{worker}-{n}"
            store.append(instance, 1, [started()], expected_last_event_id=0)
            for b in range(batches):
                first = 2 + b * 3
                store.append(
                    instance,
                    1,
                    [ev.TimerCreated(event_id=first + k, fire_at_ms=k) for k in range(3)],
                    expected_last_event_id=first - 1,
                )


def test_several_processes_appending_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "multi.db")
    eventstore.open(path).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(path, w, 5, 8)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
        assert p.exitcode == 0
    with eventstore.open(path) as store:
        assert store.count() == 4 * 5 * (1 + 8 * 3)
        feed = list(store.read_all())
        assert len({(r.instance_id, r.event.event_id) for r in feed}) == len(feed)
        for w in range(4):
            for n in range(5):
                assert [e.event_id for e in store.read(f"w{w}-{n}")] == list(range(1, 26))
        assert verify(store).ok


def test_environment_has_no_global_state_leak() -> None:
    # Opening stores must not change the process's working directory or env.
    before = (os.getcwd(), dict(os.environ))
    eventstore.open(":memory:").close()
    assert (os.getcwd(), dict(os.environ)) == before


def test_a_batch_spanning_several_statements_is_atomic(tmp_path: Path) -> None:
    # 701 events take three INSERT statements; the third fails, so none stays.
    with eventstore.open(str(tmp_path / "atomic.db")) as store:
        store.backend.connection.execute(
            "CREATE TRIGGER fail_late BEFORE INSERT ON history WHEN NEW.event_id = 650"
            " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
        batch: list[ev.Event] = [
            ev.OrchestrationStarted(event_id=1, name="O", version="1", input="0")
        ]
        batch += [ev.ActivityScheduled(event_id=n, name="W", input="1") for n in range(2, 702)]
        with pytest.raises(eventstore.EventStoreError, match="refused by the test"):
            store.append("i", 1, batch, expected_last_event_id=0)
        assert store.read("i") == []
        assert store.count() == 0
