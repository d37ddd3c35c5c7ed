"""SQLite reads an execution in one piece and decodes it line by line; any
execution must read exactly as decoding its rows one by one does, and a bad
row must be named the same way (instance, execution, event id, position)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventstore
from eventstore import DecodeError, RowMismatchError
from eventstore import events as ev
from eventstore.store import HistoryStore
from tests.reliability.test_hostile import CORRUPT, GOOD

START_V0 = '{"OrchestrationStarted":{"event_id":1,"name":"O","version":"1","input":"0"}}'
START_V1 = (
    '{"type":"OrchestrationStarted","event_id":1,"source_event_id":null,"instance_id":"i",'
    '"execution_id":1,"timestamp_ms":5,"duroxide_version":"0.1.32","name":"O","version":"1",'
    '"input":"0"}'
)


def _store(tmp_path: Path, rows: list[tuple[int, str, str | bytes]]) -> HistoryStore:
    path = tmp_path / "routes.db"
    eventstore.open(str(path)).close()
    con = sqlite3.connect(path, isolation_level=None)
    insert = (
        "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
        " VALUES (?, 1, ?, ?, CAST(? AS TEXT))"
    )
    # Another instance's rows first, so that positions differ from event ids.
    other = [_good(n).replace('"instance_id":"i"', '"instance_id":"other"') for n in (1, 2, 3)]
    con.executemany(insert, [("other", n + 1, "ActivityScheduled", d) for n, d in enumerate(other)])
    con.executemany(insert, [("i", *row) for row in rows])
    con.close()
    return _packing(eventstore.open(str(path), codec=eventstore.Codec(max_event_bytes=1_000_000)))


def _packing(store: HistoryStore) -> HistoryStore:
    """The store with `read` set on the packed route whatever it reads: these
    executions are short, and it would soon take the row route by itself."""
    store._mean_read = 1e9
    return store


class _RowRoute:
    """Counts how often the store falls back to reading row by row."""

    def __init__(self, store: HistoryStore, *, forbid: bool = False) -> None:
        self.calls = 0
        self._rows = store.backend.execution_rows
        self._forbid = forbid
        store.backend.execution_rows = self  # type: ignore[method-assign]

    def __call__(self, instance_id: str, execution_id: int) -> list[tuple[int, str, bytes]]:
        self.calls += 1
        assert not self._forbid, "read took the row-by-row route"
        return self._rows(instance_id, execution_id)  # type: ignore[return-value]


def _row_by_row(store: HistoryStore) -> list[ev.Event]:
    """store.read with the packed route switched off."""
    backend = store.backend
    backend.execution_packed = lambda *_: None  # type: ignore[method-assign]
    try:
        return store.read("i", 1)
    finally:
        del backend.execution_packed


def _good(event_id: int) -> str:
    return GOOD % event_id


def test_appended_histories_take_the_packed_route(tmp_path: Path) -> None:
    with _packing(eventstore.open(str(tmp_path / "a.db"))) as store:
        start = ev.OrchestrationStarted(event_id=1, name="O", version="1", input="0")
        store.append("i", 1, [start])
        store.append(
            "i", 1, [ev.ActivityScheduled(event_id=n, name="W", input="1") for n in (2, 3)]
        )
        expected = _row_by_row(store)
        _RowRoute(store, forbid=True)
        events = store.read("i")
        assert [e.event_id for e in events] == [1, 2, 3]
        assert events == expected
        assert store.read("nobody", 1) == []  # an empty execution: no second query either


@pytest.mark.parametrize(
    ("rows", "row_route"),
    [
        pytest.param([(1, "OrchestrationStarted", START_V1)] + [(n, "ActivityScheduled", _good(n)) for n in range(2, 6)], False, id="V1"),  # noqa: E501
        pytest.param([(1, "OrchestrationStarted", START_V0), (2, "ActivityScheduled", _good(2)), (3, "ActivityScheduled", '{"ActivityScheduled":{"event_id":3,"name":"W","input":"1","execution_id":1}}')], False, id="mixed generations"),  # noqa: E501
        pytest.param([(1, "OrchestrationStarted", START_V1), (2, "ActivityScheduled", json.dumps(json.loads(_good(2)), indent=2))], True, id="pretty JSON with newlines"),  # noqa: E501
        pytest.param([(1, "OrchestrationStarted", START_V1.replace('"instance_id":"i",', "")), (2, "ActivityScheduled", _good(2).replace('"execution_id":1,', ""))], False, id="identity left out"),  # noqa: E501
        pytest.param([(1, "OrchestrationStarted", START_V1), (2, "ActivityScheduled", "  " + _good(2) + "\t")], False, id="surrounding whitespace"),  # noqa: E501
        pytest.param([(1, "OrchestrationStarted", START_V1), (2, "Event", _good(2))], False, id="type not recorded"),  # noqa: E501
    ],
)  # fmt: skip
def test_good_executions_read_as_row_by_row(
    tmp_path: Path, rows: list[tuple[int, str, str]], row_route: bool
) -> None:
    with _store(tmp_path, rows) as store:
        expected = _row_by_row(store)
        route = _RowRoute(store)
        events = store.read("i")
        assert route.calls == int(row_route)
        assert events == expected
        assert [e.event_id for e in events] == [r[0] for r in rows]
        assert {(e.instance_id, e.execution_id) for e in events} == {("i", 1)}


# Shaped both ways: a legacy key first, then every V1 field. decode_lines
# would read it as V1; the row check, sniffing the first key, reads it as
# legacy and refuses it. Every route must say what the row check says.
HYBRID = '{"ActivityScheduled":{"event_id":%d,"name":"W","input":"1"},' + GOOD[1:]

BAD = [
    *CORRUPT,
    ("legacy key before a V1 event", "ActivityScheduled", HYBRID.encode()),
    ("empty", "ActivityScheduled", b""),
    ("two events", "ActivityScheduled", (_good(7) + "\n" + _good(8)).encode()),
    ("newline only", "ActivityScheduled", b"\n"),
]


@pytest.mark.parametrize(("label", "event_type", "data"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_row_is_named_as_row_by_row_names_it(
    tmp_path: Path, label: str, event_type: str, data: bytes
) -> None:
    rows: list[tuple[int, str, str | bytes]] = [(1, "OrchestrationStarted", START_V1)]
    rows += [(n, "ActivityScheduled", _good(n)) for n in (2, 3)]
    rows += [(4, event_type, data.replace(b"%d", b"4"))]
    rows += [(n, "ActivityScheduled", _good(n)) for n in (5, 6)]
    with _store(tmp_path, rows) as store:
        with pytest.raises(DecodeError) as caught:
            store.read("i")
        position = store.backend.position_of("i", 1, 4)
        assert position is not None and position != 4  # "other" rows come first
        where = caught.value.location
        assert where is not None
        assert (where.instance_id, where.execution_id, where.event_id, where.position) == (
            "i",
            1,
            4,
            position,
        )
        with pytest.raises(DecodeError) as row_by_row:
            _row_by_row(store)
        assert type(caught.value) is type(row_by_row.value)
        assert str(caught.value) == str(row_by_row.value)
        if label == "type column disagrees":
            assert isinstance(caught.value, RowMismatchError)


# -- the global feed: a page in one piece, or row by row -----------------------


def _feed_row_by_row(store: HistoryStore) -> list[tuple[int, str, int, ev.Event]]:
    """read_all with the packed route switched off."""
    backend = store.backend
    backend.feed_packed = lambda *_: None  # type: ignore[method-assign]
    try:
        return [(r.position, r.instance_id, r.execution_id, r.event) for r in store.read_all()]
    finally:
        del backend.feed_packed


def _feed(store: HistoryStore, **kwargs: int) -> list[tuple[int, str, int, ev.Event]]:
    return [(r.position, r.instance_id, r.execution_id, r.event) for r in store.read_all(**kwargs)]


GOOD_STORES = [
    pytest.param([(1, "OrchestrationStarted", START_V1)] + [(n, "ActivityScheduled", _good(n)) for n in range(2, 6)], id="V1"),  # noqa: E501
    pytest.param([(1, "OrchestrationStarted", START_V0), (2, "ActivityScheduled", _good(2))], id="mixed generations"),  # noqa: E501
    pytest.param([(1, "OrchestrationStarted", START_V1), (2, "ActivityScheduled", json.dumps(json.loads(_good(2)), indent=2))], id="pretty JSON with newlines"),  # noqa: E501
    pytest.param([(1, "OrchestrationStarted", START_V1.replace('"instance_id":"i",', ""))], id="identity left out"),  # noqa: E501
    pytest.param([(1, "OrchestrationStarted", START_V1), (2, "Event", _good(2))], id="type not recorded"),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize("rows", GOOD_STORES)
def test_the_feed_reads_as_row_by_row(tmp_path: Path, rows: list[tuple[int, str, str]]) -> None:
    with _store(tmp_path, rows) as store:
        expected = _feed_row_by_row(store)
        assert len(expected) == 3 + len(rows)
        assert _feed(store) == expected
        # Resumed from every position, and cut at every limit.
        for n, (position, *_) in enumerate(expected):
            assert _feed(store, after=position) == expected[n + 1 :]
            assert _feed(store, limit=n) == expected[:n]


def test_plain_v1_pages_take_the_packed_route(tmp_path: Path) -> None:
    rows = [(1, "OrchestrationStarted", START_V1)] + [
        (n, "ActivityScheduled", _good(n)) for n in (2, 3)
    ]
    with _store(tmp_path, rows) as store:
        backend = store.backend
        backend.feed = None  # type: ignore[assignment]  # any row-by-row read fails
        try:
            assert [r.event.event_id for r in store.read_all()] == [1, 2, 3, 1, 2, 3]
        finally:
            del backend.feed


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sets(st.integers(1, 24), max_size=12),
    st.integers(0, 26),
    st.integers(1, 30),
)
def test_pages_with_gaps_in_their_positions_read_as_row_by_row(
    tmp_path_factory: pytest.TempPathFactory, deleted: set[int], after: int, limit: int
) -> None:
    """Positions a page holds are inferred from its bounds when they are
    contiguous; deleted rows leave gaps, which must read exactly as row by row."""
    rows = [(1, "OrchestrationStarted", START_V1)] + [
        (n, "ActivityScheduled", _good(n)) for n in range(2, 22)
    ]
    with _store(tmp_path_factory.mktemp("gaps"), rows) as store:
        con = store.backend.connection  # type: ignore[attr-defined]
        con.executemany("DELETE FROM history WHERE rowid = ?", [(d,) for d in sorted(deleted)])
        expected = [r for r in _feed_row_by_row(store) if r[0] > after][:limit]
        page = store.plain_feed_page(after, limit)
        assert page is not None  # the packed route, gaps and all
        positions, instance_ids, execution_ids, events = page
        assert list(zip(positions, instance_ids, execution_ids, events, strict=True)) == expected
        assert _feed(store, after=after, limit=limit) == expected


HOSTILE_KEYS = [
    ("instance id a BLOB", "UPDATE history SET instance_id = CAST(instance_id AS BLOB) WHERE event_id = 2 AND instance_id = 'i'"),  # noqa: E501
    ("execution id text", "UPDATE history SET execution_id = '1' WHERE event_id = 2 AND instance_id = 'i'"),  # noqa: E501
    ("event id real", "UPDATE history SET event_id = 2.5 WHERE event_id = 2 AND instance_id = 'i'"),
    ("type column a BLOB", "UPDATE history SET event_type = CAST(event_type AS BLOB) WHERE event_id = 2 AND instance_id = 'i'"),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize(("label", "sql"), HOSTILE_KEYS, ids=[h[0] for h in HOSTILE_KEYS])
def test_a_hostile_key_column_is_named_as_row_by_row_names_it(
    tmp_path: Path, label: str, sql: str
) -> None:
    rows = [(1, "OrchestrationStarted", START_V1)] + [
        (n, "ActivityScheduled", _good(n)) for n in (2, 3)
    ]
    store = _store(tmp_path, rows)
    store.close()
    con = sqlite3.connect(tmp_path / "routes.db")
    with con:
        con.execute("PRAGMA writable_schema = 0")
        # A table without column types keeps what it is given, as any table may.
        con.executescript(
            "CREATE TABLE untyped AS SELECT * FROM history; DROP TABLE history;"
            " CREATE TABLE history (position INTEGER PRIMARY KEY, instance_id, execution_id,"
            " event_id, event_type, event_data, created_at,"
            " UNIQUE (instance_id, execution_id, event_id));"
            " INSERT INTO history SELECT * FROM untyped; DROP TABLE untyped;"
        )
        con.execute(sql)
    con.close()
    with eventstore.open(str(tmp_path / "routes.db"), readonly=True) as store:
        packed: list[object] = []
        with pytest.raises(DecodeError) as caught:
            for record in store.read_all():
                packed.append(record)
        row_by_row: list[object] = []
        store.backend.feed_packed = lambda *_: None  # type: ignore[method-assign]
        with pytest.raises(DecodeError) as expected:
            for record in store.read_all():
                row_by_row.append(record)
        assert packed == row_by_row and len(packed) == 4  # the good rows before it
        assert str(caught.value) == str(expected.value)


def test_a_row_shaped_both_ways_reads_in_the_feed_as_row_by_row(tmp_path: Path) -> None:
    rows: list[tuple[int, str, str | bytes]] = [(1, "OrchestrationStarted", START_V1)]
    rows += [
        (2, "ActivityScheduled", HYBRID.replace("%d", "2")),
        (3, "ActivityScheduled", _good(3)),
    ]
    with _store(tmp_path, rows) as store:
        packed: list[object] = []
        with pytest.raises(DecodeError) as caught:
            packed.extend(store.read_all())
        store.backend.feed_packed = lambda *_: None  # type: ignore[method-assign]
        row_by_row: list[object] = []
        with pytest.raises(DecodeError) as expected:
            row_by_row.extend(store.read_all())
        assert packed == row_by_row
        assert str(caught.value) == str(expected.value)


def test_a_blank_row_beside_a_row_of_two_events_is_named_by_every_route(tmp_path: Path) -> None:
    # Joined by newlines, a blank row 2 and a row 3 holding events 2 and 3
    # decode as three events whose ids match the columns: only proving one
    # line per row (`plain_lines`) keeps the batched routes from taking them.
    rows: list[tuple[int, str, str | bytes]] = [(1, "OrchestrationStarted", START_V1)]
    rows += [(2, "ActivityScheduled", ""), (3, "ActivityScheduled", _good(2) + "\n" + _good(3))]
    with _store(tmp_path, rows) as store:
        with pytest.raises(DecodeError) as packed_read:
            store.read("i")
        with pytest.raises(DecodeError) as row_read:
            _row_by_row(store)
        assert str(packed_read.value) == str(row_read.value)
        assert packed_read.value.location is not None
        assert packed_read.value.location.event_id == 2
        packed: list[object] = []
        with pytest.raises(DecodeError) as packed_feed:
            packed.extend(store.read_all())
        store.backend.feed_packed = lambda *_: None  # type: ignore[method-assign]
        row_by_row: list[object] = []
        with pytest.raises(DecodeError) as row_feed:
            row_by_row.extend(store.read_all())
        assert packed == row_by_row and len(packed) == 4
        assert str(packed_feed.value) == str(row_feed.value)


def test_read_takes_the_route_the_executions_it_reads_run_to(tmp_path: Path) -> None:
    # Short executions read row by row once the store has seen a few, long
    # ones in one piece; every read returns what the other route returns.
    with eventstore.open(str(tmp_path / "shape.db")) as store:
        start = ev.OrchestrationStarted(event_id=1, name="O", version="1", input="0")
        for n, length in enumerate([6] * 8 + [60] * 30):
            events = [start] + [
                ev.ActivityScheduled(event_id=k, name="W", input="1") for k in range(2, length + 1)
            ]
            store.append(f"x{n}", 1, events)
        packed_calls = []
        original = store.backend.execution_packed

        def counted(instance_id: str, execution_id: int) -> object:
            packed_calls.append(instance_id)
            return original(instance_id, execution_id)

        store.backend.execution_packed = counted  # type: ignore[method-assign,assignment]
        reads = [len(store.read(f"x{n}", 1)) for n in range(38)]
        assert reads == [6] * 8 + [60] * 30
        assert packed_calls[:1] == ["x0"]  # a fresh store packs at first
        assert not {f"x{n}" for n in range(3, 9)} & set(packed_calls)  # short: row by row
        assert {f"x{n}" for n in range(12, 38)} <= set(packed_calls)  # long: in one piece
        del store.backend.execution_packed
        for n in (0, 20):
            assert store.read(f"x{n}", 1) == _row_by_row_of(store, f"x{n}")


def _row_by_row_of(store: HistoryStore, instance_id: str) -> list[ev.Event]:
    backend = store.backend
    backend.execution_packed = lambda *_: None  # type: ignore[method-assign]
    try:
        return store.read(instance_id, 1)
    finally:
        del backend.execution_packed


@pytest.mark.parametrize("duroxide_table", [False, True], ids=["eventstore's table", "duroxide's"])
def test_a_whole_feed_page_is_a_range_of_the_rowid_read_in_its_order(
    tmp_path: Path, duroxide_table: bool
) -> None:
    """The packed page's range query has no ORDER BY (an aggregate cannot
    take one on SQLite 3.40); its rows come in rowid order because the only
    plan for a rowid range walks the table's own b-tree. Any other plan
    would pair events with the wrong positions: fail here first."""
    from eventstore.backends.sqlite.packed import _PACKED_RANGE

    path = tmp_path / "plan.db"
    if duroxide_table:
        fixture = Path(__file__).parent / "fixtures" / "duroxide-0.1.32" / "runtime.db"
        path.write_bytes(fixture.read_bytes())
    else:
        eventstore.open(str(path)).close()
    con = sqlite3.connect(path)
    con.execute("ANALYZE")
    plan = " ".join(
        row[-1] for row in con.execute("EXPLAIN QUERY PLAN " + _PACKED_RANGE, (0, 1000))
    )
    con.close()
    assert plan == "SEARCH history USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"
