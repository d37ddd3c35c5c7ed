"""PostgreSQL-specific behaviour (the conformance suite covers the shared contract)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import eventstore
from eventstore import events as ev
from eventstore.backends.postgres import PostgresBackend
from eventstore.errors import (
    ConcurrencyError,
    EventStoreError,
    PositionsRenumberedError,
    ReadOnlyError,
    StoreBusyError,
    StoreError,
    StoreNotFoundError,
    TargetError,
)
from eventstore.store import HistoryStore
from eventstore.store.protocol import ArchivedRow
from tests.postgres_server import PASSWORD, PostgresServer

pytestmark = pytest.mark.postgres

TargetFactory = Callable[[], str]


def started(event_id: int = 1) -> ev.OrchestrationStarted:
    return ev.OrchestrationStarted(event_id=event_id, name="Order", version="1.0.0", input="7")


def scheduled(event_id: int, data: str = '"x"') -> ev.ActivityScheduled:
    return ev.ActivityScheduled(event_id=event_id, name="Greet", input=data)


def backend_of(store: HistoryStore) -> PostgresBackend:
    backend = store.backend
    assert isinstance(backend, PostgresBackend)
    return backend


def wait_until(condition: Callable[[], bool], what: str, cap: float = 60.0) -> None:
    """Wait for a condition (a safety cap against hangs, not a timing assertion)."""
    deadline = time.monotonic() + cap
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def url(postgres_target_factory: TargetFactory) -> str:
    return postgres_target_factory()


@pytest.fixture
def opened() -> Iterator[Callable[..., HistoryStore]]:
    stores: list[HistoryStore] = []

    def open_store(target: str, **options: Any) -> HistoryStore:
        store = eventstore.open(target, **options)
        stores.append(store)
        return store

    yield open_store
    for store in stores:
        store.close()


# -- the global feed under interleaved transactions -----------------------------------


def test_feed_never_shows_a_later_commit_before_an_earlier_position(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    """T1 draws the next position and stays open; T2, on another execution,
    draws a later one and commits without waiting for T1.

    The feed must not show T2's event while T1 is open (a reader resuming
    after it would never see T1's): it holds it back, says so (`held_back`),
    and `wait_for_events` does not report it. After T1 commits the feed
    shows T1's event, then T2's, and a reader resuming from any record gets
    the rest exactly once.
    """
    t1_store, t2_store, reader = opened(url), opened(url), opened(url)
    first = t1_store.append("before", 1, [started()])
    assert first.written
    (seen,) = list(reader.read_all())
    with t1_store.transaction() as tx:
        tx.append("t1", 1, [started()])
        t1_position = tx.connection.execute(
            "SELECT eventstore_position FROM history WHERE instance_id = 't1'"
        ).fetchone()
        assert t1_position is not None and t1_position[0] > seen.position
        t2 = t2_store.append("t2", 1, [started()])  # does not wait for T1
        assert t2.written
        assert [r.instance_id for r in reader.read_all(after=seen)] == []
        assert backend_of(reader).held_back()[0] == 1
        assert reader.feed_held_back()[0] == 1
        assert backend_of(reader).wait_for_events(seen.position, 0.2) is False
    after = list(reader.read_all(after=seen))
    assert [r.instance_id for r in after] == ["t1", "t2"]
    assert after[0].position == t1_position[0] < after[1].position
    assert backend_of(reader).held_back() == (0, None)
    assert list(reader.read_all(after=after[0])) == after[1:]
    assert list(reader.read_all(after=after[0].position)) == after[1:]


def test_feed_order_is_transaction_order_when_positions_disagree(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    """Ta writes first (its own SQL: it has the lower transaction id), Tb
    appends and commits (a lower position), then Ta appends (a higher
    position) and commits. The feed gives Ta's event first although its
    position is higher: positions are not the order, (transaction id,
    position) is, and a reader that read while Ta was open saw neither."""
    ta_store, tb_store, reader = opened(url), opened(url), opened(url)
    ta_store.append("before", 1, [started()])
    (seen,) = list(reader.read_all())
    with ta_store.transaction() as tx:
        tx.connection.execute("SELECT pg_current_xact_id()")  # Ta's id, before Tb's
        tb_store.append("tb", 1, [started()])
        assert list(reader.read_all(after=seen)) == []
        tx.append("ta", 1, [started()])
    feed = list(reader.read_all(after=seen))
    assert [r.instance_id for r in feed] == ["ta", "tb"]
    assert feed[0].position > feed[1].position
    assert list(reader.read_all(after=feed[0])) == feed[1:]
    assert list(reader.read_all(after=feed[1])) == []
    assert reader.backend.wait_for_events(feed[1].position, 0) is False
    assert reader.backend.wait_for_events(feed[0].position, 0) is True


def test_an_append_whose_transaction_predates_the_executions_last_writer_is_refused(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    """Inside transaction(), the runtime's SQL got the transaction id before
    another writer appended to the same execution and committed: appending
    after that writer's events would put them before it in the feed. The
    append is refused (StoreBusyError, retry) and writes nothing; the rest
    of the transaction stands."""
    runtime, other = opened(url), opened(url)
    runtime.append("x", 1, [started()])
    with runtime.transaction() as tx:
        tx.connection.execute("SELECT pg_current_xact_id()")
        other.append("x", 1, [scheduled(2)])
        with pytest.raises(StoreBusyError, match="retry the transaction"):
            tx.append("x", 1, [scheduled(3)])
        tx.append("y", 1, [started()])
    assert [e.event_id for e in runtime.read("x")] == [1, 2]
    # y's event comes before x's second: its transaction has the lower id.
    assert [(r.instance_id, r.event.event_id) for r in runtime.read_all()] == [
        ("x", 1), ("y", 1), ("x", 2)
    ]  # fmt: skip
    runtime.append("x", 1, [scheduled(3)])  # a fresh transaction goes through


def test_resuming_after_a_position_the_store_no_longer_holds_is_refused(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    store = opened(url)
    store.append("a", 1, [started(), scheduled(2)])
    first, second = list(store.read_all())
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("DELETE FROM history WHERE eventstore_position = %s", (first.position,))
    assert list(store.read_all(after=0)) == [second]
    with pytest.raises(PositionsRenumberedError, match=f"position {first.position}"):
        list(store.read_all(after=first.position))


def someone_waits_on_the_write_lock(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as con:
        row = con.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
        return row is not None and row[0] == 1


@pytest.mark.parametrize("expected", [1, None], ids=["expected-last", "no-expectation"])
def test_a_writer_that_waited_for_the_lock_checks_against_what_committed_meanwhile(
    url: str, opened: Callable[..., HistoryStore], expected: int | None
) -> None:
    """The last-id read travels with the lock in one query; its snapshot must
    still be taken after the lock is granted. A read as of before the wait
    would see last id 1 and try to insert event 2 a second time (a conflict
    of the primary key) instead of refusing with ConcurrencyError."""
    holder, waiter = opened(url), opened(url)
    holder.append("x", 1, [started()])
    outcome: list[BaseException | None] = []

    def late_writer() -> None:
        try:
            waiter.append("x", 1, [scheduled(2, '"late"')], expected_last_event_id=expected)
            outcome.append(None)
        except BaseException as exc:  # reported by the main thread
            outcome.append(exc)

    with holder.transaction() as tx:
        tx.append("x", 1, [scheduled(2, '"first"'), scheduled(3, '"first"')])
        thread = threading.Thread(target=late_writer)
        thread.start()
        wait_until(lambda: someone_waits_on_the_write_lock(url), "the late writer to wait")
        assert not outcome
    thread.join(60)
    assert not thread.is_alive()
    (error,) = outcome
    assert isinstance(error, ConcurrencyError), error
    if expected is not None:
        assert (error.expected, error.actual) == (1, 3)
    assert [e.event_id for e in waiter.read("x")] == [1, 2, 3]
    assert [e.input for e in waiter.read("x")[1:] if isinstance(e, ev.ActivityScheduled)] == [
        '"first"',
        '"first"',
    ]


def test_positions_of_rolled_back_appends_leave_no_trace(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    store = opened(url)
    store.append("a", 1, [started()])
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.append("gone", 1, [started()])
        raise RuntimeError("runtime failed")
    store.append("b", 1, [started()])
    feed = list(store.read_all())
    assert [r.instance_id for r in feed] == ["a", "b"]
    # Resuming from any position gives the suffix.
    assert [r.instance_id for r in store.read_all(after=feed[0])] == ["b"]


# -- LISTEN/NOTIFY ---------------------------------------------------------------------


def test_wait_for_events_wakes_on_commit(url: str, opened: Callable[..., HistoryStore]) -> None:
    writer, watcher = opened(url), opened(url)
    backend = backend_of(watcher)
    assert backend.wait_for_events(0, 0.0) is False
    writer.append("a", 1, [started()])
    (record,) = list(watcher.read_all())
    # Already there: True at once, whatever the timeout.
    assert backend.wait_for_events(0, 0.0) is True
    assert backend.wait_for_events(record.position, 0.05) is False

    results: list[bool] = []
    waiting = threading.Thread(
        target=lambda: results.append(backend.wait_for_events(record.position, 60))
    )
    waiting.start()
    with writer.transaction() as tx:
        tx.append("a", 1, [scheduled(2)])
        assert not results  # uncommitted: nobody woken with True
    waiting.join(60)
    assert results == [True]
    assert [r.event.event_id for r in watcher.read_all(after=record)] == [2]


def test_wait_for_events_is_not_woken_by_a_rollback(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    writer, watcher = opened(url), opened(url)
    with pytest.raises(RuntimeError), writer.transaction() as tx:
        tx.append("a", 1, [started()])
        raise RuntimeError("rolled back")
    assert backend_of(watcher).wait_for_events(0, 0.1) is False


# -- readonly -------------------------------------------------------------------------


def test_readonly_store_is_refused_by_the_server_too(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    opened(url).append("a", 1, [started()])
    readonly = opened(url, readonly=True)
    assert readonly.readonly and [e.event_id for e in readonly.read("a")] == [1]
    with pytest.raises(ReadOnlyError):
        readonly.append("a", 1, [scheduled(2)])
    with pytest.raises(ReadOnlyError), readonly.transaction():
        pass
    # Even SQL that bypasses the store is refused: every session is read-only.
    with (
        backend_of(readonly)._connection() as con,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        con.execute("DELETE FROM history")
    assert readonly.count() == 1


def test_readonly_open_of_an_empty_database_creates_nothing(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    with pytest.raises(StoreNotFoundError, match="no history table"):
        opened(url, readonly=True)
    with psycopg.connect(url) as con:
        assert con.execute("SELECT to_regclass('public.history')").fetchone() == (None,)


def test_missing_database_is_store_not_found(postgres_server: PostgresServer) -> None:
    with pytest.raises(StoreNotFoundError, match="does not exist"):
        eventstore.open(postgres_server.url("no_such_db"))


# -- passwords ------------------------------------------------------------------------


def test_passwords_never_appear_in_descriptions_errors_or_logs(
    url: str,
    opened: Callable[..., HistoryStore],
    postgres_server: PostgresServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert PASSWORD in url
    store = opened(url)
    assert PASSWORD not in store.backend.description
    assert PASSWORD not in repr(store)
    assert "127.0.0.1" in store.backend.description
    wrong = "hunter2-wrong-secret"
    bad_targets = [
        postgres_server.url(password=wrong),
        f"postgresql://someone:{wrong}@127.0.0.1:1/x",
        f"postgresql://someone:{wrong}@127.0.0.1:{postgres_server.port}/x?sslmode=bogus",
    ]
    for target in bad_targets:
        with pytest.raises(EventStoreError) as caught, caplog.at_level(logging.DEBUG):
            eventstore.open(target)
        assert all(wrong not in r.getMessage() for r in caplog.records)
        assert wrong not in str(caught.value)
        assert caught.value.__cause__ is None or wrong not in str(caught.value.__cause__)
        assert caught.value.__suppress_context__


# -- schemas --------------------------------------------------------------------------


def test_schema_option_isolates_stores(url: str, opened: Callable[..., HistoryStore]) -> None:
    a = opened(url, schema="tenant_a")
    b = opened(url + "?schema=tenant_b")
    a.append("only-a", 1, [started()])
    b.append("only-b", 1, [started()])
    assert a.instances() == ["only-a"] and b.instances() == ["only-b"]
    assert "tenant_b" in b.backend.description
    default = opened(url)
    assert default.instances() == []
    with pytest.raises(TargetError, match="twice"):
        eventstore.open(url + "?schema=x", schema="y")


@pytest.mark.parametrize(
    "schema",
    [
        'public"; DROP TABLE history; --',
        "a b",
        "",
        "1starts_with_digit",
        "with-dash",
        "x" * 64,
        "sch\u00e9ma",
        "public.history",
        "public\n",
        "public\x00",
    ],
)
def test_hostile_schema_names_are_rejected(url: str, schema: str) -> None:
    with pytest.raises(TargetError, match="schema must be a plain identifier"):
        eventstore.open(url, schema=schema)
    with psycopg.connect(url) as con:
        count = con.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname NOT LIKE 'pg_%'"
            " AND nspname NOT IN ('information_schema', 'public')"
        ).fetchone()
        assert count == (0,)


# -- transaction() ---------------------------------------------------------------------


def test_transaction_exposes_the_psycopg_connection(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    store = opened(url)
    with store.transaction() as tx:
        assert isinstance(tx.connection, psycopg.Connection)
        tx.connection.execute("CREATE TABLE runtime_state (k TEXT PRIMARY KEY, v TEXT)")
        tx.connection.execute("INSERT INTO runtime_state VALUES ('a', 'started')")
        tx.append("a", 1, [started()])
        # Reads through the store inside the transaction see its writes.
        assert [e.event_id for e in store.read("a")] == [1]
    with psycopg.connect(url) as con:
        assert con.execute("SELECT v FROM runtime_state").fetchall() == [("started",)]
    assert store.count() == 1
    with pytest.raises(StoreError, match="nested"), store.transaction(), store.transaction():
        pass


def test_runtime_sql_errors_pass_through_and_roll_back_everything(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    store = opened(url)
    with pytest.raises(psycopg.errors.UndefinedTable), store.transaction() as tx:
        tx.append("a", 1, [started()])
        tx.connection.execute("INSERT INTO no_such_table VALUES (1)")
    assert store.count() == 0


# -- tables, positions, created_at ------------------------------------------------------


@pytest.mark.parametrize("partitioned", [True, False], ids=["partitioned", "plain"])
def test_table_has_duroxides_columns_and_stable_positions(
    url: str, opened: Callable[..., HistoryStore], partitioned: bool
) -> None:
    """duroxide's columns and key, then ours; a new table is partitioned by
    day shard by default, which adds the shard to the columns and the key."""
    store = opened(url, partition_by_shard=partitioned)
    assert store.stable_positions
    with psycopg.connect(url) as con:
        columns = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = 'history' ORDER BY ordinal_position"
        ).fetchall()
        key = con.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = 'history'::regclass AND i.indisprimary ORDER BY a.attnum"
        ).fetchall()
    assert columns == [
        ("instance_id", "text"),
        ("execution_id", "bigint"),
        ("event_id", "bigint"),
        ("event_type", "text"),
        ("event_data", "text"),
        ("created_at", "timestamp with time zone"),
        ("eventstore_position", "bigint"),
        ("eventstore_xid", "xid8"),
    ] + ([("eventstore_shard", "text")] if partitioned else [])
    shard = ["eventstore_shard"] if partitioned else []
    assert [k[0] for k in key] == ["instance_id", "execution_id", "event_id", *shard]


EARLIER_DDL = """
CREATE TABLE history (
    instance_id TEXT COLLATE "C" NOT NULL,
    execution_id BIGINT NOT NULL,
    event_id BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    event_data TEXT NOT NULL,
    created_at TIMESTAMPTZ DEFAULT now(),
    eventstore_position BIGINT GENERATED BY DEFAULT AS IDENTITY
        CONSTRAINT eventstore_history_position_key UNIQUE,
    PRIMARY KEY (instance_id, execution_id, event_id)
)
"""


def test_a_store_of_an_earlier_version_is_upgraded_on_its_first_writable_open(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    """A table without the transaction-id column (as earlier versions made
    it) reads as before when opened read-only; the first writable open adds
    the column and index: old rows keep their feed order and come first, a
    checkpointed position still resumes, and new appends follow."""
    source = opened(url)
    source.append("a", 1, [started(), scheduled(2)])
    source.append("b", 1, [started()])
    rows = [tuple(r.values()) for r in source.export_rows()]
    source.backend.destroy()
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(EARLIER_DDL)
        with con.cursor() as cur:
            cur.executemany(
                "INSERT INTO history (instance_id, execution_id, event_id, event_type,"
                " event_data, created_at) VALUES (%s, %s, %s, %s, %s, %s)",
                [r[:6] for r in rows],
            )
    old_feed = list(opened(url, readonly=True).read_all())
    assert [(r.instance_id, r.event.event_id) for r in old_feed] == [("a", 1), ("a", 2), ("b", 1)]
    store = opened(url)
    with psycopg.connect(url) as con:
        kinds = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_name = 'history'"
            ).fetchall()
        )
    assert kinds["eventstore_xid"] == "xid8"
    assert list(store.read_all()) == old_feed
    store.append("c", 1, [started()])
    assert [r.instance_id for r in store.read_all(after=old_feed[1].position)] == ["b", "c"]
    opened(url)  # a second open finds nothing to do


def test_a_table_duroxide_created_is_read_and_written(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    writer = opened(url)  # a reference row, to copy its encoding
    writer.append("ref", 1, [started()])
    (row,) = list(writer.export_rows())
    with psycopg.connect(url) as con:
        con.execute("CREATE SCHEMA duroxide")
        con.execute(
            "CREATE TABLE duroxide.history (instance_id TEXT NOT NULL,"
            " execution_id BIGINT NOT NULL, event_id BIGINT NOT NULL, event_type TEXT NOT NULL,"
            " event_data TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL,"
            " PRIMARY KEY (instance_id, execution_id, event_id))"
        )  # as duroxide's PostgreSQL provider creates it: created_at has no default
        con.execute(
            "INSERT INTO duroxide.history (instance_id, execution_id, event_id, event_type,"
            " event_data, created_at) VALUES (%s, %s, %s, %s, %s, now())",
            (row["instance_id"], 1, 1, row["event_type"], row["event_data"]),
        )
    readonly = opened(url, schema="duroxide", readonly=True)
    assert not readonly.stable_positions
    assert [e.event_id for e in readonly.read("ref")] == [1]
    store = opened(url, schema="duroxide")
    store.append("ref", 1, [scheduled(2)])
    feed = list(store.read_all())
    assert [(r.instance_id, r.event.event_id) for r in feed] == [("ref", 1), ("ref", 2)]
    with psycopg.connect(url) as con:
        columns = con.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'duroxide' AND table_name = 'history'"
        ).fetchall()
    assert "eventstore_position" not in {c[0] for c in columns}  # never altered
    # Rows are rewritten in place by key (as migrations do), never altered in shape.
    writer.append("ref", 1, [scheduled(2, '"rewritten"')])
    replacement = next(r for r in writer.export_rows() if r["event_id"] == 2)
    with store.backend.writing() as rewrite:
        rewrite.update_rows_by_key(
            [ArchivedRow("ref", 1, 2, "ActivityScheduled", replacement["event_data"])]
        )
    (_, second) = store.read("ref")
    assert isinstance(second, ev.ActivityScheduled) and second.input == '"rewritten"'


def test_created_at_round_trips_in_sqlites_format(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    source = opened(url)
    source.append("a", 1, [started()])
    (row,) = list(source.export_rows())
    rows = [
        dict(row, created_at="2026-11-21 04:27:45"),
        dict(row, instance_id="b", created_at="2020-02-29 23:59:59.250000"),
    ]
    rows[1]["event_data"] = rows[1]["event_data"].replace('"a"', '"b"')
    target = opened(url, schema="copy")
    target.import_rows(rows)
    assert [r["created_at"] for r in target.export_rows()] == [
        "2026-11-21 04:27:45",
        "2020-02-29 23:59:59.250000",
    ]


# -- many writers in many processes ------------------------------------------------------

INSTANCES = ["shared-0", "shared-1", "shared-2", "shared-3"]
PROCESSES = 6
ROUNDS = 25


def _stress_writer(url: str, worker: int, rounds: int) -> None:
    rng = random.Random(worker)
    with eventstore.open(url, pool_max_size=2) as store:
        for n in range(rounds):
            for instance in rng.sample(INSTANCES, len(INSTANCES)):
                payload = f'"w{worker}-{n}"'
                while True:
                    last = store.read(instance)[-1].event_id
                    try:
                        store.append(
                            instance, 1, [scheduled(last + 1, payload)], expected_last_event_id=last
                        )
                        break
                    except ConcurrencyError:
                        continue


def _feed_tail(url: str, total: int, out: Any) -> None:
    """Follow the feed while the writers run; report (position, instance, id)."""
    seen: list[tuple[int, str, int]] = []
    with eventstore.open(url, readonly=True) as store:
        backend = store.backend
        assert isinstance(backend, PostgresBackend)
        after = 0
        deadline = time.monotonic() + 300
        while len(seen) < total and time.monotonic() < deadline:
            backend.wait_for_events(after, 5)
            for record in store.read_all(after=after):
                seen.append((record.position, record.instance_id, record.event.event_id))
                after = record.position
    out.put(seen)


@pytest.mark.slow
def test_many_processes_append_to_shared_instances(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    store = opened(url)
    for instance in INSTANCES:
        store.append(instance, 1, [started()])
    initial = len(INSTANCES)
    total = initial + PROCESSES * ROUNDS * len(INSTANCES)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    tail = ctx.Process(target=_feed_tail, args=(url, total, queue))
    tail.start()
    writers = [ctx.Process(target=_stress_writer, args=(url, w, ROUNDS)) for w in range(PROCESSES)]
    for p in writers:
        p.start()
    for p in writers:
        p.join(300)
    assert [p.exitcode for p in writers] == [0] * PROCESSES
    tailed = queue.get(timeout=300)
    tail.join(60)
    assert tail.exitcode == 0

    expected_payloads = {f'"w{w}-{n}"' for w in range(PROCESSES) for n in range(ROUNDS)}
    for instance in INSTANCES:
        events = store.read(instance)
        ids = [e.event_id for e in events]
        assert ids == list(range(1, 2 + PROCESSES * ROUNDS)), instance
        payloads = [e.input for e in events[1:] if isinstance(e, ev.ActivityScheduled)]
        assert len(payloads) == len(expected_payloads) and set(payloads) == expected_payloads

    feed = [(r.position, r.instance_id, r.event.event_id) for r in store.read_all()]
    assert len(feed) == total == store.count()
    assert len({(i, e) for _, i, e in feed}) == total  # each event exactly once
    # Unique, but not increasing along the feed: the feed is in (transaction
    # id, position) order, and a writer can draw its position before another
    # that gets the lower transaction id (writer.py); seen under load.
    positions = [p for p, _, _ in feed]
    assert len(set(positions)) == total
    for instance in INSTANCES:  # commit order agrees with each history's order
        ids = [e for _, i, e in feed if i == instance]
        assert ids == sorted(ids)
    # A reader following the feed during the run saw exactly the same sequence.
    assert tailed == feed


# -- the test server's availability rules ------------------------------------------------


def run_one_postgres_test(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run one PostgreSQL test in a child pytest without the server binaries."""
    root = Path(__file__).resolve().parent.parent
    environment = {k: v for k, v in os.environ.items() if k != "CI"}
    environment.update(env, EVENTSTORE_PG_BINDIR=str(tmp_path / "no-binaries-here"))
    return subprocess.run(
        [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-q",
            "tests/test_postgres.py::test_table_has_duroxides_columns_and_stable_positions[plain]",
        ],
        cwd=root, env=environment, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_without_server_binaries_postgres_tests_skip_saying_how_to_enable(
    tmp_path: Path,
) -> None:
    result = run_one_postgres_test(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "sudo bash scripts/system-deps.sh" in result.stdout


def test_under_ci_missing_server_binaries_fail_loudly(tmp_path: Path) -> None:
    result = run_one_postgres_test(tmp_path, CI="true")
    assert result.returncode != 0
    assert "skipped" not in result.stdout
    assert "CI=true: the PostgreSQL tests must run" in result.stdout


def test_unknown_or_invalid_options_are_target_errors(url: str) -> None:
    with pytest.raises(TargetError, match="unknown option 'busy_timeout_ms' for a PostgreSQL"):
        eventstore.open(url, busy_timeout_ms=10)
    with pytest.raises(TargetError, match="pool_max_size must be a positive integer"):
        eventstore.open(url, pool_max_size=0)


def test_instances_sort_bytewise_whatever_the_database_locale(
    postgres_server: PostgresServer, opened: Callable[..., HistoryStore]
) -> None:
    """As on SQLite: a database with a natural-language collation lists 'B' before 'a'."""
    name = f"icu_{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as con:
        con.execute(
            f"CREATE DATABASE {name} TEMPLATE template0"
            " LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'"
        )
    with psycopg.connect(postgres_server.url(name)) as con:
        natural = con.execute("SELECT x FROM (VALUES ('a'), ('B')) v(x) ORDER BY x").fetchall()
    assert natural == [("a",), ("B",)]  # the database's own order differs
    store = opened(postgres_server.url(name))
    ids = ["b", "B", "a", "Z", "\u00e9", "a-1", "A_2"]
    for instance_id in ids:
        store.append(instance_id, 1, [started()])
    assert store.instances() == sorted(ids)
    assert [s.instance_id for s in store.summaries()] == sorted(ids)
    assert [row.instance_id for page in store.scan(2) for row in page] == sorted(ids)


def test_closing_the_store_releases_a_waiter(url: str) -> None:
    store = eventstore.open(url)
    backend = backend_of(store)
    results: list[bool] = []
    waiting = threading.Thread(target=lambda: results.append(backend.wait_for_events(0, 600)))
    waiting.start()
    wait_until(lambda: backend._listen_lock.locked(), "the waiter to listen")
    store.close()
    waiting.join(60)
    assert not waiting.is_alive() and results == [False]
    with pytest.raises(StoreError, match="closed"):
        backend.wait_for_events(0, 1)


def test_a_writer_held_up_past_its_lock_timeout_gets_store_busy(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    """A writer of the same execution waits for its key, up to lock_timeout_ms;
    a writer of another execution does not wait at all."""
    holder, impatient = opened(url), opened(url, lock_timeout_ms=50)
    with holder.transaction() as tx:
        tx.append("a", 1, [started()])
        with pytest.raises(StoreBusyError, match="stayed locked"):
            impatient.append("a", 1, [scheduled(2)])
        impatient.append("b", 1, [started()])
    impatient.append("a", 1, [scheduled(2)], expected_last_event_id=1)
    assert [r.instance_id for r in impatient.read_all()] == ["a", "b", "a"]


def test_threads_sharing_one_store_append_exactly_once(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    store = opened(url, pool_max_size=4)
    store.append("t", 1, [started()])
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for k in range(20):
                while True:
                    last = store.read("t")[-1].event_id
                    try:
                        store.append(
                            "t", 1, [scheduled(last + 1, f'"{n}-{k}"')], expected_last_event_id=last
                        )
                        break
                    except ConcurrencyError:
                        continue
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and not any(t.is_alive() for t in threads)
    events = store.read("t")
    assert [e.event_id for e in events] == list(range(1, 122))
    inputs = sorted(e.input for e in events[1:] if isinstance(e, ev.ActivityScheduled))
    assert inputs == sorted(f'"{n}-{k}"' for n in range(6) for k in range(20))
