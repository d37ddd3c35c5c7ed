"""The one-call append's flight (backends/postgres/flight_wire.py): the call and
its notification in one pipeline, on PostgreSQL. Notifications arrive after
each append's commit, a failed call leaves nothing behind and the connection
usable, a broken connection is replaced, racing threads each write once, and
a waiter that never gets its notification still wakes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

import eventstore
from eventstore import events as ev
from eventstore.backends.postgres.flight_wire import FlightWire
from eventstore.backends.postgres.locks import execution_key
from eventstore.backends.postgres.queries import channel_of
from eventstore.errors import StoreBusyError, StoreError
from eventstore.store import HistoryStore
from tests.test_postgres_one_flight import backend_of, flights, scheduled, started

pytestmark = pytest.mark.postgres


@pytest.fixture
def url(postgres_target_factory: Callable[[], str]) -> str:
    return postgres_target_factory()


@pytest.fixture
def opened() -> Iterator[Callable[..., HistoryStore]]:
    stores: list[HistoryStore] = []

    def open_store(target: str, **options: Any) -> HistoryStore:
        options.setdefault("partition_by_shard", False)  # both shapes fly alike (one_flight.py)
        store = eventstore.open(target, clock=lambda: 1_700_000_000_000, **options)
        stores.append(store)
        return store

    yield open_store
    for store in stores:
        store.close()


def count_rows(url: str) -> int:
    with psycopg.connect(url) as con:
        row = con.execute("SELECT count(*) FROM public.history").fetchone()
        assert row is not None
        return int(row[0])


def test_each_append_notifies_a_listener_after_its_commit(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    """A LISTENing session is notified after every append, and whenever a
    notification arrives the append it announces is already committed."""
    store = opened(url, pool_max_size=1)
    store.append("first", 1, [started()])  # the schema catalog's own write, notified too
    answers = flights(store)
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {channel_of('public')}")
        for n in range(1, 6):
            store.append(f"i{n}", 1, [started(), scheduled(2)], expected_last_event_id=0)
            notes = list(listener.notifies(timeout=10, stop_after=1))
            assert [note.channel for note in notes] == [channel_of("public")]
            # A fresh snapshot taken after the notification: the append is there.
            assert count_rows(url) == 1 + 2 * n
    assert answers == [True] * 5


def test_wait_for_events_wakes_for_an_append_from_another_store(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    waiter = opened(url)
    writer = opened(url)
    answers = flights(writer)
    writer.append("a", 1, [started()])
    head = waiter.head_position()
    woke: list[bool] = []
    thread = threading.Thread(target=lambda: woke.append(waiter.wait_for_events(head, 30)))
    thread.start()
    writer.append("a", 1, [scheduled(2)], expected_last_event_id=1)
    thread.join(60)
    assert woke == [True] and answers == [True, True]
    assert [r.event.event_id for r in waiter.read_all(after=head)] == [2]


def test_a_waiter_wakes_for_a_commit_that_never_notifies(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    """Another program's insert sends no NOTIFY (as an append whose session
    ended between its commit and its notification): the waiter's timer finds it
    long before the waiter's deadline, where it would otherwise answer False."""
    store = opened(url)
    store.append("a", 1, [started()])
    head = store.head_position()
    backend = backend_of(store)
    waiting = threading.Event()
    listening = backend._listening

    class Watched:  # the listening connection, saying when the waiter waits
        def __init__(self, con: psycopg.Connection[Any]) -> None:
            self.con = con

        def __getattr__(self, name: str) -> Any:
            return getattr(self.con, name)

        def notifies(self, **options: Any) -> Any:
            waiting.set()  # the feed was checked and found nothing new
            return self.con.notifies(**options)

    backend._listening = lambda: Watched(listening())  # type: ignore[assignment,method-assign,return-value]
    woke: list[bool] = []
    thread = threading.Thread(target=lambda: woke.append(store.wait_for_events(head, 20)))
    thread.start()
    assert waiting.wait(30)
    data = (
        '{"kind":{"type":"ActivityScheduled","name":"Greet","input":"\\"x\\""},'
        '"event_id":2,"instance_id":"a","execution_id":1,"timestamp_ms":1,'
        '"duroxide_version":"0.1.0"}'
    )
    with psycopg.connect(url) as con:
        con.execute(
            "INSERT INTO public.history (instance_id, execution_id, event_id, event_type,"
            " event_data) VALUES ('a', 1, 2, 'ActivityScheduled', %s)",
            (data,),
        )
    thread.join(20 + 30)
    assert woke == [True]


def test_a_failed_call_on_a_fresh_connection_leaves_nothing_and_the_connection_usable(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    """The first flight of a connection prepares the call; a lock timeout
    there writes nothing, and the next flight on that one connection works."""
    opened(url).append("a", 1, [started()])
    store = opened(url, lock_timeout_ms=200, pool_max_size=1)
    answers = flights(store)
    with psycopg.connect(url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (execution_key("public", "a", 1),))
        with pytest.raises(StoreBusyError, match="stayed locked"):
            store.append("a", 1, [scheduled(2)], expected_last_event_id=1)
        assert count_rows(url) == 1
    for n in range(2, 5):  # prepared once, used again
        store.append("a", 1, [scheduled(n)], expected_last_event_id=n - 1)
    assert answers == [True, True, True]  # the failed one raised
    assert [e.event_id for e in store.read("a", 1)] == [1, 2, 3, 4]
    assert list(store.catalog_mismatches()) == []


def test_a_value_that_cannot_travel_as_text_is_declined(url: str) -> None:
    """libpq reads a text parameter up to its first NUL: a value holding one
    never goes in the flight (the append is declined to the plain route,
    which binds it and lets the driver refuse it)."""
    wire = FlightWire(b"SELECT %s::text || %s::text || %s::bigint::text, %s::boolean", b"")
    with psycopg.connect(url, autocommit=True) as con:
        assert wire.send(con, ("a\x00b", "", 1, True)) is None
        with pytest.raises(UnicodeError):  # translated by the caller (translate.py)
            wire.send(con, ("a\udc00b", "", 1, True))
        assert con.execute("SELECT 1").fetchone() == (1,)  # the connection is usable
        # Nothing was sent: not even the call's preparation, the first flight's start.
        assert con.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)


@pytest.mark.parametrize("name", ["a\x00b", "a\udc00b", "\u00e9\u2603 \"'\\"])
def test_hostile_names_end_as_on_the_plain_route(
    name: str,
    url: str,
    opened: Callable[..., HistoryStore],
    postgres_target_factory: Callable[[], str],
) -> None:
    """Whatever the plain route does with a name (stores it, refuses it), the
    one-call route does the same, and leaves its connection usable."""
    outcomes = []
    answers: list[bool] = []
    for one_flight in (True, False):
        store = opened(url if one_flight else postgres_target_factory(), pool_max_size=1)
        backend_of(store).one_flight = one_flight
        if one_flight:
            answers = flights(store)
        start = ev.OrchestrationStarted(event_id=1, name=name, version="1.0.0", input="7")
        try:
            store.append("a", 1, [start])
            record = store.catalog_record("a", 1)
            outcomes.append(("stored", record and record.name, store.read("a", 1)[0].name))
        except eventstore.EventStoreError as exc:
            outcomes.append(("refused", type(exc).__name__, ""))
        store.append("ok", 1, [started()])  # the connection goes on
    assert outcomes[0] == outcomes[1]
    assert answers[-1] is True  # "ok" went in the flight after it
    if outcomes[0][0] == "stored":
        assert answers == [True, True]  # a storable name flies too


def test_a_broken_connection_is_replaced(url: str, opened: Callable[..., HistoryStore]) -> None:
    store = opened(url, pool_max_size=1)
    store.append("a", 1, [started()])
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        )
    with pytest.raises(StoreError):  # the project's error, never psycopg's
        store.append("a", 1, [scheduled(2)], expected_last_event_id=1)
    store.append("a", 1, [scheduled(2)], expected_last_event_id=1)  # a new connection
    assert [e.event_id for e in store.read("a", 1)] == [1, 2]


def test_racing_threads_each_write_once_through_a_small_pool(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    """Twelve threads share one store whose pool holds four connections:
    every append goes in one flight, and each is stored exactly once."""
    store = opened(url, pool_max_size=4)
    answers = flights(store)
    errors: list[BaseException] = []

    def write(thread: int) -> None:
        try:
            for n in range(10):
                store.append(f"t{thread}-{n}", 1, [started(), scheduled(2)])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert answers.count(True) == 120
    assert count_rows(url) == 240
    assert sum(1 for _ in store.read_all()) == 240
    assert list(store.catalog_mismatches()) == []


def test_without_pipeline_mode_the_call_and_the_notify_go_one_after_the_other(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    """A libpq older than 14 has no pipeline mode: the same appends, answers
    and notifications, in two statements."""
    store = opened(url, pool_max_size=1)
    backend_of(store)._flight.wire.pipelined = False
    answers = flights(store)
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {channel_of('public')}")
        store.append("a", 1, [started(), scheduled(2)], expected_last_event_id=0)
        assert list(listener.notifies(timeout=10, stop_after=1))
    store.append("a", 1, [scheduled(3)], expected_last_event_id=2)
    retry = store.append("a", 1, [scheduled(3)], expected_last_event_id=2)  # declined
    assert not retry.written
    assert answers == [True, True, False]
    assert [e.event_id for e in store.read("a", 1)] == [1, 2, 3]


def test_a_deallocated_call_is_prepared_again(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    """psycopg sends DEALLOCATE ALL on a connection after a ROLLBACK once it
    prepared statements of its own there (the plain route's): the flight
    prepares its call again and the append goes through, written once."""
    store = opened(url, pool_max_size=1)
    answers = flights(store)
    store.append("a", 1, [started()])
    with backend_of(store)._pool.connection() as con:
        con.execute("DEALLOCATE ALL")
    store.append("a", 1, [scheduled(2)], expected_last_event_id=1)
    for n in range(3, 12):  # refusals on the plain route (ROLLBACK) between flights
        with pytest.raises(eventstore.ConcurrencyError):
            store.append("a", 1, [scheduled(n + 1)], expected_last_event_id=n - 2)
        store.append("a", 1, [scheduled(n)], expected_last_event_id=n - 1)
    assert [e.event_id for e in store.read("a", 1)] == list(range(1, 12))
    assert answers.count(True) == 11
