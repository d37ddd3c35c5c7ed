"""The one-flight append through eventstore.aio on PostgreSQL (AsyncPostgresBackend,
store/async_route.py): taken for the common append, on both shapes of table, with
the same answers, rows and catalog as the sync store's plain route; declined
inside a transaction and when a day's partition is gone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

import eventstore
import eventstore.aio
from eventstore import events as ev
from eventstore.errors import ConcurrencyError, HistoryRuleError
from eventstore.store.row_types import OneFlightAppend
from tests.aio_adapter import SyncOverAsync
from tests.test_postgres_one_flight import (
    HOSTILE,
    _random_session,
    completed,
    scheduled,
    started,
    stepping_clock,
    stored_rows,
)

pytestmark = pytest.mark.postgres


@pytest.fixture(params=[True, False], ids=["partitioned", "unpartitioned"])
def partitioned(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def url(postgres_target_factory: Callable[[], str]) -> str:
    return postgres_target_factory()


@pytest.fixture
def opened(partitioned: bool) -> Iterator[Callable[..., SyncOverAsync]]:
    stores: list[SyncOverAsync] = []

    def open_store(target: str, **options: Any) -> SyncOverAsync:
        options.setdefault("partition_by_shard", partitioned)
        options.setdefault("clock", lambda: 1_700_000_000_000)
        store = SyncOverAsync(target, **options)
        stores.append(store)
        return store

    yield open_store
    for store in stores:
        store.close()


def flights(store: SyncOverAsync) -> list[bool]:
    """Record what each one-flight attempt of the async store answered."""
    route = store.aio._route
    assert route is not None
    backend = route.backend
    answers: list[bool] = []
    real = backend.append_in_one_flight  # type: ignore[attr-defined]

    async def recorded(append: OneFlightAppend) -> bool:
        answer = bool(await real(append))
        answers.append(answer)
        return answer

    backend.append_in_one_flight = recorded  # type: ignore[attr-defined]
    return answers


def test_common_async_appends_go_in_one_flight(
    url: str, opened: Callable[..., SyncOverAsync]
) -> None:
    store = opened(url)
    answers = flights(store)
    store.append("a", 1, [started(), scheduled(2)], expected_last_event_id=0)
    store.append("a", 1, [completed(3, 2)])
    retry = store.append("a", 1, [completed(3, 2)], expected_last_event_id=2)
    assert not retry.written and retry.last_event_id == 3
    with pytest.raises(ConcurrencyError):
        store.append("a", 1, [scheduled(4)], expected_last_event_id=2)
    with pytest.raises(HistoryRuleError):
        store.append("a", 1, [ev.TimerFired(event_id=4, source_event_id=3, fire_at_ms=1)])
    assert answers == [True, True, False, False]  # the rule break never asked
    assert [e.event_id for e in store.read("a", 1)] == [1, 2, 3]
    record = store.aio.sync.catalog_record("a", 1)
    assert record is not None and record.last_event_id == 3
    assert list(store.aio.sync.catalog_mismatches()) == []


def test_async_one_flight_answers_and_writes_what_the_plain_route_does(
    url: str,
    opened: Callable[..., SyncOverAsync],
    postgres_target_factory: Callable[[], str],
    partitioned: bool,
) -> None:
    """The seeded session of the sync tests, through the async store with
    the one-flight route and through a sync store without it: the same
    answers, rows (partitions) and catalog."""
    fast = opened(url, clock=stepping_clock())
    answers = flights(fast)
    plain_url = postgres_target_factory()
    plain = eventstore.open(plain_url, clock=stepping_clock(), partition_by_shard=partitioned)
    try:
        plain.backend.one_flight = False  # type: ignore[attr-defined]
        for seed in range(3):
            assert _random_session(fast, seed) == _random_session(plain, seed)  # type: ignore[arg-type]
        assert True in answers and False in answers
        assert stored_rows(url) == stored_rows(plain_url)
        assert fast.aio.sync.catalog_executions(limit=1000) == plain.catalog_executions(limit=1000)
    finally:
        plain.close()


def test_appends_inside_an_async_transaction_take_the_plain_route(
    url: str, opened: Callable[..., SyncOverAsync]
) -> None:
    store = opened(url)
    answers = flights(store)
    with store.transaction() as tx:
        tx.append("a", 1, [started()])
        tx.append("a", 1, [scheduled(2)], expected_last_event_id=1)
    assert answers == []
    store.append("a", 1, [completed(3, 2)], expected_last_event_id=2)
    assert answers == [True]
    assert [e.event_id for e in store.read("a", 1)] == [1, 2, 3]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_travels_through_the_async_call(
    url: str, opened: Callable[..., SyncOverAsync], text: str
) -> None:
    store = opened(url)
    answers = flights(store)
    start = ev.OrchestrationStarted(event_id=1, name=text, version=text, input=text)
    store.append(text, 1, [start, scheduled(2, '"\\u0000 \\" \\\\"')], expected_last_event_id=0)
    assert answers == [True]
    events = store.read(text, 1)
    assert isinstance(events[0], ev.OrchestrationStarted) and events[0].name == text
    assert isinstance(events[1], ev.ActivityScheduled) and events[1].input == '"\\u0000 \\" \\\\"'


def test_a_day_dropped_by_another_process_is_made_again_by_the_plain_route(url: str) -> None:
    """The async store knows the day's partition; another connection empties
    and drops it; the next new execution of that day is declined in flight
    (nothing written) and the plain route makes the day and appends."""
    store = SyncOverAsync(url, clock=lambda: 1_700_000_000_000)
    try:
        answers = flights(store)
        store.append("first", 1, [started()])
        with psycopg.connect(url, autocommit=True) as con:
            con.execute("DELETE FROM history WHERE instance_id = 'first'")
            con.execute("DELETE FROM eventstore_executions WHERE instance_id = 'first'")
            con.execute("ALTER TABLE history DETACH PARTITION history_2023_11_14")
            con.execute("DROP TABLE history_2023_11_14")
        store.append("second", 1, [started()])
        store.append("third", 1, [started()])
        assert answers == [True, False, True]
        tables = {(r[0], r[5]) for r in stored_rows(url)}
        assert tables == {("second", "history_2023_11_14"), ("third", "history_2023_11_14")}
    finally:
        store.close()


@pytest.mark.asyncio
async def test_tasks_racing_on_one_execution_take_turns_exactly(url: str) -> None:
    """Twenty tasks race expected-id appends on one execution over the
    async pool: every id is written once, every loser is refused."""
    async with await eventstore.aio.open(url, pool_max_size=8) as store:
        await store.append("hot", 1, [started()])

        async def race(tag: int) -> list[int]:
            won = []
            for _ in range(5):
                while True:
                    last = await store.last_event_id("hot", 1)
                    try:
                        batch = [scheduled(last + 1, f'"{tag}"')]
                        await store.append("hot", 1, batch, expected_last_event_id=last)
                        won.append(last + 1)
                        break
                    except ConcurrencyError:
                        pass
            return won

        wins = [n for won in await asyncio.gather(*(race(t) for t in range(20))) for n in won]
        assert sorted(wins) == list(range(2, 102))
        assert [e.event_id for e in await store.read("hot", 1)] == list(range(1, 102))
        assert list(store.sync.catalog_mismatches()) == []
