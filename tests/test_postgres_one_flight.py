"""The one-flight append on PostgreSQL (backends/postgres/one_flight.py, store/one_flight.py):
when it is taken, that it writes exactly what the plain route writes, and that
every case it declines reaches the plain route's exact answer. Each test that
opens its stores through `opened` runs on both shapes of table: partitioned by
day shard (the default, `eventstore_append_sharded_v1`) and unpartitioned
(`eventstore_append_v1`); what only partitions have is at the end."""

from __future__ import annotations

import itertools
import random
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

import eventstore
from eventstore import events as ev
from eventstore.backends.postgres import PostgresBackend
from eventstore.backends.postgres.locks import execution_key
from eventstore.backends.postgres.one_flight import FUNCTION, SHARDED_FUNCTION
from eventstore.errors import (
    ConcurrencyError,
    EventOrderError,
    HistoryRuleError,
    MissingStartError,
    StoreBusyError,
)
from eventstore.store import HistoryStore
from eventstore.store.row_types import OneFlightAppend

pytestmark = pytest.mark.postgres


def started() -> ev.OrchestrationStarted:
    return ev.OrchestrationStarted(event_id=1, name="Order", version="1.0.0", input="7")


def scheduled(event_id: int, data: str = '"x"') -> ev.ActivityScheduled:
    return ev.ActivityScheduled(event_id=event_id, name="Greet", input=data)


def completed(event_id: int, source: int, data: str = '"r"') -> ev.ActivityCompleted:
    return ev.ActivityCompleted(event_id=event_id, source_event_id=source, result=data)


def backend_of(store: HistoryStore) -> PostgresBackend:
    backend = store.backend
    assert isinstance(backend, PostgresBackend)
    return backend


@pytest.fixture
def url(postgres_target_factory: Callable[[], str]) -> str:
    return postgres_target_factory()


@pytest.fixture(params=[True, False], ids=["partitioned", "unpartitioned"])
def partitioned(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def opened(partitioned: bool) -> Iterator[Callable[..., HistoryStore]]:
    stores: list[HistoryStore] = []

    def open_store(target: str, **options: Any) -> HistoryStore:
        options.setdefault("partition_by_shard", partitioned)
        options.setdefault("clock", lambda: 1_700_000_000_000)
        store = eventstore.open(target, **options)
        stores.append(store)
        return store

    yield open_store
    for store in stores:
        store.close()


def flights(store: HistoryStore) -> list[bool]:
    """Record what each one-flight attempt of `store` answered (the real call runs)."""
    backend = backend_of(store)
    answers: list[bool] = []
    real = backend.append_in_one_flight

    def recorded(append: OneFlightAppend) -> bool:
        answer = real(append)
        answers.append(answer)
        return answer

    backend.append_in_one_flight = recorded  # type: ignore[method-assign]
    return answers


def stored_rows(url: str) -> list[tuple[Any, ...]]:
    """Every row, with the table it is in (its partition on a partitioned table)."""
    with psycopg.connect(url) as con:
        return con.execute(
            "SELECT instance_id, execution_id, event_id, event_type, event_data,"
            " tableoid::regclass::text FROM public.history"
            " ORDER BY instance_id, execution_id, event_id"
        ).fetchall()


def functions(url: str) -> list[str]:
    """The append functions in the schema."""
    with psycopg.connect(url) as con:
        rows = con.execute(
            "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
            " AND proname LIKE 'eventstore_append%' ORDER BY proname"
        ).fetchall()
    return [str(r[0]) for r in rows]


def test_common_appends_go_in_one_flight_and_the_rest_take_the_plain_route(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    store = opened(url)
    assert backend_of(store).one_flight
    answers = flights(store)
    store.append("a", 1, [started(), scheduled(2)], expected_last_event_id=0)
    store.append("a", 1, [completed(3, 2)])  # names the stored last event (wanted)
    store.append("a", 1, [scheduled(4), completed(5, 4)], expected_last_event_id=3)
    assert answers == [True, True, True]
    # An identical retry, a stale expectation, a gap, a missing start, a rule
    # broken against a stored event, a completion naming the wrong kind: each
    # is declined on the server and answered exactly by the plain route.
    retry = store.append("a", 1, [scheduled(4), completed(5, 4)], expected_last_event_id=3)
    assert not retry.written and retry.last_event_id == 5
    with pytest.raises(ConcurrencyError) as stale:
        store.append("a", 1, [scheduled(6)], expected_last_event_id=4)
    assert (stale.value.expected, stale.value.actual) == (4, 5)
    with pytest.raises(EventOrderError):
        store.append("a", 1, [scheduled(8)])
    with pytest.raises(MissingStartError):
        store.append("b", 1, [scheduled(1)], expected_last_event_id=0)
    with pytest.raises(HistoryRuleError):
        store.append("a", 1, [ev.TimerFired(event_id=6, source_event_id=5, fire_at_ms=1)])
    assert answers == [True, True, True, False, False, False]  # the rest never asked
    completion = ev.OrchestrationCompleted(event_id=6, output='"done"')
    store.append("a", 1, [completion], expected_last_event_id=5)
    with pytest.raises(HistoryRuleError):  # nothing follows a terminal event
        store.append("a", 1, [scheduled(7)], expected_last_event_id=6)
    assert answers[-2:] == [True, False]
    assert [e.event_id for e in store.read("a", 1)] == [1, 2, 3, 4, 5, 6]
    record = store.catalog_record("a", 1)
    assert record is not None and (record.status, record.event_count) == ("completed", 6)
    assert list(store.catalog_mismatches()) == []


def stepping_clock() -> Callable[[], int]:
    """A clock five hours later at each reading."""
    readings = itertools.count()
    return lambda: 1_700_000_000_000 + next(readings) * 5 * 3_600_000


def _random_session(store: HistoryStore, seed: int) -> list[str]:
    """A seeded mix of appends, retries and refusals; what each one answered."""
    rng = random.Random(seed)
    outcomes: list[str] = []
    lasts: dict[str, int] = {}
    for _ in range(120):
        instance = f"i{rng.randrange(6)}"
        last = lasts.get(instance, 0)
        if last == 0:
            batch: list[ev.Event] = [started()]
        else:
            batch = []
        event_id = last + len(batch)
        for _ in range(rng.randint(0, 3)):
            event_id += 1
            if event_id > 2 and rng.random() < 0.5:
                batch.append(completed(event_id, rng.randint(max(1, event_id - 3), event_id - 1)))
            else:
                batch.append(scheduled(event_id, f'"{rng.random()}"'))
        expected = rng.choice([last, None, max(0, last - 1)])
        try:
            result = store.append(instance, 1, batch, expected_last_event_id=expected)
            lasts[instance] = result.last_event_id
            outcomes.append(f"ok {result.written} {result.last_event_id}")
        except eventstore.EventStoreError as exc:
            outcomes.append(f"{type(exc).__name__}: {exc}")
    return outcomes


def test_the_one_flight_route_answers_and_writes_what_the_plain_route_does(
    url: str,
    opened: Callable[..., HistoryStore],
    postgres_target_factory: Callable[[], str],
    partitioned: bool,
) -> None:
    """The same seeded session (appends, retries, stale expectations, rule
    breaks) against one store with the one-flight route and one without:
    the same answers, the same rows (in the same partitions: the clock
    moves five hours an append, so executions start on several days and
    are continued on later ones), catalogs equal to their rebuilds."""
    fast = opened(url, clock=stepping_clock())
    answers = flights(fast)
    plain_url = postgres_target_factory()
    plain = opened(plain_url, clock=stepping_clock())
    backend_of(plain).one_flight = False
    for seed in range(3):
        assert _random_session(fast, seed) == _random_session(plain, seed)
    assert True in answers and False in answers
    assert stored_rows(url) == stored_rows(plain_url)
    tables = {row[5] for row in stored_rows(url)}
    assert len(tables) > 3 if partitioned else tables == {"history"}
    assert fast.catalog_executions(limit=1000) == plain.catalog_executions(limit=1000)
    assert list(fast.catalog_mismatches()) == []


def test_a_catalog_row_that_lags_is_recomputed_by_the_plain_route(
    url: str, opened: Callable[..., HistoryStore], partitioned: bool
) -> None:
    """Rows another program wrote (no catalog; on a partitioned table they
    land in root): the server declines, and the plain route recomputes the
    row in the append's transaction. Later appends follow the last row."""
    store = opened(url)
    answers = flights(store)
    store.append("a", 1, [started()])
    data = store.codec.encode(
        ev.ActivityScheduled(
            event_id=2,
            name="Greet",
            input='"other"',
            instance_id="a",
            execution_id=1,
            timestamp_ms=1,
            duroxide_version="0.1.0",
        )
    ).decode()
    with psycopg.connect(url) as con:
        con.execute(
            "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data,"
            " created_at) VALUES ('a', 1, 2, 'ActivityScheduled', %s, now())",
            (data,),
        )
    store.append("a", 1, [completed(3, 2)], expected_last_event_id=2)
    store.append("a", 1, [scheduled(4)], expected_last_event_id=3)
    assert answers == [True, False, True]
    record = store.catalog_record("a", 1)
    assert record is not None and (record.last_event_id, record.event_count) == (4, 4)
    assert list(store.catalog_mismatches()) == []
    if partitioned:  # the rows go where the execution's last row is, as on the plain route
        tables = [row[5] for row in stored_rows(url)]
        assert tables == ["history_2023_11_14", "history_root", "history_root", "history_root"]


HOSTILE = [
    "it's",
    "'') --",
    "\\'",
    "back\\slash",
    "per%cent %s %(x)s",
    "E'\\x00'; DROP TABLE history; --",
    "semi; colon",
    "uni\u00e9\u4e2d\U0001f600",
    "$body$ $$",
]


@pytest.mark.parametrize("conforming", ["on", "off"])
@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_stored_byte_for_byte(
    url: str, opened: Callable[..., HistoryStore], text: str, conforming: str
) -> None:
    """Every value travels as a literal (quotes doubled, or escaped by libpq
    where backslashes are special): quotes, backslashes, percent signs,
    dollar quotes and non-ASCII come back byte for byte."""
    store = opened(f"{url}?options=-cstandard_conforming_strings%3D{conforming}")
    answers = flights(store)
    start = ev.OrchestrationStarted(event_id=1, name=text, version=text, input=text)
    store.append(text, 1, [start, scheduled(2, '"\\u0000 \\" \\\\ \\n"')], expected_last_event_id=0)
    assert answers == [True]
    events = store.read(text, 1)
    assert [e.event_id for e in events] == [1, 2]
    assert isinstance(events[0], ev.OrchestrationStarted) and events[0].name == text
    assert isinstance(events[1], ev.ActivityScheduled)
    assert events[1].input == '"\\u0000 \\" \\\\ \\n"'
    record = store.catalog_record(text, 1)
    assert record is not None and (record.name, record.version) == (text, text)
    assert list(store.catalog_mismatches()) == []


def test_a_lock_timeout_raises_the_projects_error_and_leaves_the_connection_usable(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    store = opened(url, lock_timeout_ms=200, pool_max_size=1)
    store.append("a", 1, [started()])
    key = execution_key("public", "a", 1)
    with psycopg.connect(url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
        with pytest.raises(StoreBusyError):
            store.append("a", 1, [scheduled(2)], expected_last_event_id=1)
    store.append("a", 1, [scheduled(2)], expected_last_event_id=1)  # the same connection
    assert [e.event_id for e in store.read("a", 1)] == [1, 2]


def test_writers_of_one_execution_take_turns_exactly(
    url: str, opened: Callable[..., HistoryStore]
) -> None:
    """Eight threads race expected-id appends on one execution: every id is
    written once, every loser is refused with the stored last id."""
    stores = [opened(url) for _ in range(8)]
    stores[0].append("hot", 1, [started()])
    wins: list[int] = []
    errors: list[BaseException] = []

    def race(store: HistoryStore, tag: str) -> None:
        try:
            for _ in range(15):
                while True:
                    last = store.last_event_id("hot", 1)
                    try:
                        batch = [scheduled(last + 1, tag)]  # distinct: never a retry
                        result = store.append("hot", 1, batch, expected_last_event_id=last)
                        assert result.written
                        wins.append(last + 1)
                        break
                    except ConcurrencyError as exc:
                        assert exc.actual is not None and exc.actual > last
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=race, args=(store, f'"{n}"')) for n, store in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert sorted(wins) == list(range(2, 2 + 8 * 15))
    assert [e.event_id for e in stores[0].read("hot", 1)] == list(range(1, 2 + 8 * 15))
    assert list(stores[0].catalog_mismatches()) == []


def test_the_function_is_made_on_a_writable_open_and_never_on_others(
    url: str, opened: Callable[..., HistoryStore], partitioned: bool
) -> None:
    """Each shape of table gets its own function, and only its own."""
    name = SHARDED_FUNCTION if partitioned else FUNCTION
    opened(url).close()
    assert functions(url) == [name]
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f"DROP FUNCTION public.{name}")
    reader = opened(url, readonly=True)
    assert not backend_of(reader).one_flight
    assert functions(url) == []  # a read-only open makes none
    writer = opened(url)  # a store of an earlier version: made on its first writable open
    assert backend_of(writer).one_flight
    answers = flights(writer)
    writer.append("a", 1, [started()])
    assert answers == [True]
    assert [e.event_id for e in writer.read("a", 1)] == [1]
    assert functions(url) == [name]


def test_a_store_without_a_catalog_table_appends_in_one_flight(
    url: str, opened: Callable[..., HistoryStore], partitioned: bool
) -> None:
    """A table of an earlier version keeps no catalog: the function never
    touches the catalog table, which is not there. A partitioned table
    always comes with its catalog; a store that does not keep it (asked
    here of the store itself) sends no catalog row, and the function finds
    a continued execution's shard with its last event, reading every
    partition."""
    opened(url).close()
    if not partitioned:
        with psycopg.connect(url, autocommit=True) as con:
            con.execute("DROP TABLE eventstore_executions, eventstore_catalog_state")
    store = opened(url)
    store._catalog_kept = False
    answers = flights(store)
    store.append("a", 1, [started(), scheduled(2)], expected_last_event_id=0)
    store.append("a", 1, [completed(3, 2)], expected_last_event_id=2)
    assert answers == [True, True]
    assert [e.event_id for e in store.read("a", 1)] == [1, 2, 3]
    if partitioned:
        assert {row[5] for row in stored_rows(url)} == {"history_2023_11_14"}


# -- what only partitioned tables have ---------------------------------------------


DAY_MS = 86_400_000


def partition_names(url: str) -> set[str]:
    with psycopg.connect(url) as con:
        rows = con.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'public.history'::regclass"
        ).fetchall()
    return {str(r[0]) for r in rows}


def fixed_clock(ms: int) -> Callable[[], int]:
    return lambda: ms


def test_rows_land_in_their_executions_partition_in_one_flight(url: str) -> None:
    """A new execution's rows go to the day the store derived (its partition
    made before the call, a new day's too); a continued execution's, on a
    later day, to the partition its first rows are in; root rows stay in root."""
    now = [1_700_000_000_000]
    with eventstore.open(url, clock=lambda: now[0]) as store:
        answers = flights(store)
        store.append("a", 1, [started(), scheduled(2)])
        assert partition_names(url) == {"history_root", "history_2023_11_14"}
        now[0] += DAY_MS
        store.append("b", 1, [started()])  # a day no process has made yet
        store.append("a", 1, [completed(3, 2)])  # continued the next day
        now[0] += DAY_MS
        store.append("b", 1, [scheduled(2)])
        store.append("a", 1, [scheduled(4)], expected_last_event_id=3)
        assert answers == [True] * 5
        assert partition_names(url) == {"history_root", "history_2023_11_14", "history_2023_11_15"}
        assert [(r[0], r[2], r[5]) for r in stored_rows(url)] == [
            ("a", 1, "history_2023_11_14"),
            ("a", 2, "history_2023_11_14"),
            ("a", 3, "history_2023_11_14"),
            ("a", 4, "history_2023_11_14"),
            ("b", 1, "history_2023_11_15"),
            ("b", 2, "history_2023_11_15"),
        ]
        assert [e.event_id for e in store.read("a", 1)] == [1, 2, 3, 4]
        record = store.catalog_record("b", 1)
        assert record is not None and (record.shard, record.last_event_id) == ("2023-11-15", 2)
        assert list(store.catalog_mismatches()) == []


def test_the_last_event_read_is_pruned_to_the_executions_partitions(url: str) -> None:
    """The function's last-event read names the shard (the catalog's, or the
    derived one) and root: its plan scans those partitions only, whatever
    other days exist (auto_explain shows the plans of the function's
    statements)."""
    for day in range(4):
        with eventstore.open(url, clock=fixed_clock(1_700_000_000_000 + day * DAY_MS)) as s:
            s.append(f"day{day}", 1, [started()])
    with eventstore.open(url, clock=lambda: 1_700_000_000_000, pool_max_size=1) as store:
        plans: list[str] = []
        with backend_of(store)._pool.connection() as con:  # the store's one connection
            con.execute("LOAD 'auto_explain'")
            for setting in ("log_min_duration = 0", "log_nested_statements = on"):
                con.execute(f"SET auto_explain.{setting}")
            con.execute("SET auto_explain.log_level = notice")
            con.add_notice_handler(lambda notice: plans.append(str(notice.message_primary)))
        answers = flights(store)
        store.append("day0", 1, [scheduled(2)])  # continued: the catalog's shard
        store.append("new", 1, [started()])  # new: the derived shard
        assert answers == [True, True]
    reads = [p for p in plans if "ORDER BY h.event_id DESC" in p]
    assert len(reads) == 2, plans
    for plan in reads:
        scanned = set(re.findall(r"on (history_\w+)", plan))
        assert scanned <= {"history_2023_11_14", "history_root"}, plan
        assert "history_2023_11_14" in scanned, plan


def test_a_new_execution_retried_the_next_day_is_answered_by_the_plain_route(
    url: str, postgres_target_factory: Callable[[], str]
) -> None:
    """An append of event 1 retried after midnight derives the next day's
    shard; the execution is stored in the first day's. The function finds
    its catalog row (not new: declined), so nothing lands in the new day's
    partition, and the answers are the plain route's."""
    plain_url = postgres_target_factory()
    outcomes: list[list[str]] = []
    for target, one_flight in ((url, True), (plain_url, False)):
        now = [1_700_000_000_000]
        with eventstore.open(target, clock=lambda now=now: now[0]) as store:
            backend_of(store).one_flight = one_flight
            answers = flights(store)
            seen = [repr(store.append("a", 1, [started(), scheduled(2)]).written)]
            now[0] += DAY_MS
            for expected in (0, None):
                try:
                    batch = [started(), scheduled(2)]
                    result = store.append("a", 1, batch, expected_last_event_id=expected)
                    seen.append(f"{result.written} {result.last_event_id}")
                except eventstore.EventStoreError as exc:
                    seen.append(f"{type(exc).__name__}: {exc}")
            outcomes.append(seen)
            assert answers == ([True, False, False] if one_flight else [False] * 3)
    assert outcomes[0] == outcomes[1]
    assert {row[5] for row in stored_rows(url)} == {"history_2023_11_14"}
    assert stored_rows(url) == stored_rows(plain_url)
