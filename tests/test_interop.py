"""Interoperability with the real duroxide runtime (PyPI `duroxide`, pinned in the
`dev` extra), both ways, on SQLite files in tmp_path.

1. The runtime writes, eventstore reads: a corpus of real orchestrations
   (tests/interop_orchestrations.py) covering every V1 event type; every row
   decodes, re-encodes to the same JSON, verifies clean, and eventstore's view
   of each execution equals the runtime's own (`Client.read_execution_history`).
   Run twice: on a database duroxide created, and on one whose history table
   eventstore created first (extra `position` column).
2. eventstore writes, the runtime reads: histories appended with
   `HistoryStore.append` (V1 as read from the runtime, and upcast from legacy
   V0 rows) are read back by duroxide with the same events.
3. A running orchestration whose stored turns are legacy V0 cannot be resumed
   by duroxide; after eventstore rewrites those rows to V1 (decode + encode in
   place) the runtime resumes and completes it.

The runtime runs in a child process, never beside eventstore's sqlite3
connections in this one (see tests/interop_orchestrations.py for why).
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import msgspec
import pytest

import eventstore
from eventstore import Generation, decode, detect_version, encode
from eventstore import events as ev
from eventstore.store.verify import verify
from tests import interop_orchestrations as orch
from tests.interop_orchestrations import Key, Reading, View, in_runtime_process, normalized

pytestmark = pytest.mark.interop

DUROXIDE_PACKAGE_VERSION = "0.2.2"
DUROXIDE_CORE_VERSION = "0.1.32"
"""The `duroxide_version` the pinned runtime stamps on every event it writes."""

LEGACY = Path(__file__).parent / "fixtures" / "legacy"

Row = tuple[str, int, int, str, str, "str | None"]
"""instance_id, execution_id, event_id, event_type, event_data, created_at"""


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy (WAL content included) through SQLite's backup API."""
    remove_database(target)
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def history_rows(path: Path) -> list[Row]:
    """Every history row, read with plain sqlite3 (no eventstore code involved)."""
    con = sqlite3.connect(path)
    try:
        return con.execute(
            "SELECT instance_id, execution_id, event_id, event_type, event_data, created_at"
            " FROM history ORDER BY instance_id, execution_id, event_id"
        ).fetchall()
    finally:
        con.close()


def executions_of(rows: list[Row]) -> list[Key]:
    return sorted({(r[0], r[1]) for r in rows})


def read_with_duroxide(target: Path | str, keys: list[Key] | None = None) -> Reading:
    """What duroxide's client reads from a database (in a child process)."""
    return in_runtime_process(orch.job_read, str(target), keys)


_KIND: dict[str, str] = {
    "ExternalSubscribedPersistent": "QueueSubscribed",
    "ExternalEventPersistent": "QueueEventDelivered",
    "ExternalSubscribedPersistentCancelled": "QueueSubscriptionCancelled",
}
"""Event types duroxide's Python client names differently from the wire."""


def _js(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_DATA: dict[str, Callable[[dict[str, Any]], str]] = {
    "OrchestrationStarted": lambda w: (
        f'{{"name":{_js(w["name"])},"version":{_js(w["version"])},"input":{w["input"]}}}'
    ),
    "OrchestrationCompleted": lambda w: str(w["output"]),
    "OrchestrationFailed": lambda w: _js(w["details"]),
    "ActivityScheduled": lambda w: f'{{"name":{_js(w["name"])},"input":{w["input"]}}}',
    "ActivityCompleted": lambda w: str(w["result"]),
    "ActivityFailed": lambda w: _js(w["details"]),
    "TimerCreated": lambda w: f'{{"fireAtMs":{w["fire_at_ms"]}}}',
    "TimerFired": lambda w: f'{{"fireAtMs":{w["fire_at_ms"]}}}',
    "ExternalSubscribed": lambda w: f'{{"name":{_js(w["name"])}}}',
    "ExternalEvent": lambda w: f'{{"name":{_js(w["name"])},"data":{w["data"]}}}',
    "ExternalSubscribedPersistent": lambda w: f'{{"name":{_js(w["name"])}}}',
    "ExternalEventPersistent": lambda w: f'{{"name":{_js(w["name"])},"data":{w["data"]}}}',
    "SubOrchestrationScheduled": lambda w: (
        f'{{"name":{_js(w["name"])},"instance":{_js(w["instance"])},"input":{w["input"]}}}'
    ),
    "SubOrchestrationCompleted": lambda w: str(w["result"]),
    "SubOrchestrationFailed": lambda w: _js(w["details"]),
}
"""How duroxide's Python client fills `Event.data` per type (None for the rest):
the stored payload strings spliced into a small JSON object."""


def expected_view(event: ev.Event) -> View:
    """The view duroxide's client gives of an event, predicted from eventstore's decoding."""
    wire = json.loads(encode(event))
    data_of = _DATA.get(event.event_type)
    return (
        _KIND.get(event.event_type, event.event_type),
        event.event_id,
        event.source_event_id,
        event.timestamp_ms,
        None if data_of is None else normalized(data_of(wire)),
    )


def without_timestamps(views: list[View]) -> list[View]:
    return [(kind, eid, src, 0, data) for kind, eid, src, _ts, data in views]


# -- the reverse of the codec: V1 rows back to the legacy V0 generations -----

_FAILURE = "<failure>"
_V0_FIELDS: dict[str, tuple[str, ...]] = {
    "OrchestrationStarted": (
        "event_id",
        "name",
        "version",
        "input",
        "parent_instance",
        "parent_id",
    ),
    "OrchestrationCompleted": ("event_id", "output"),
    "OrchestrationFailed": ("event_id", _FAILURE),
    "ActivityScheduled": ("event_id", "name", "input", "execution_id"),
    "ActivityCompleted": ("event_id", "source_event_id", "result"),
    "ActivityFailed": ("event_id", "source_event_id", _FAILURE),
    "TimerCreated": ("event_id", "fire_at_ms", "execution_id"),
    "TimerFired": ("event_id", "source_event_id", "fire_at_ms"),
    "ExternalSubscribed": ("event_id", "name"),
    "ExternalEvent": ("event_id", "name", "data"),
    "OrchestrationChained": ("event_id", "name", "instance", "input"),
    "SubOrchestrationScheduled": ("event_id", "name", "instance", "input", "execution_id"),
    "SubOrchestrationCompleted": ("event_id", "source_event_id", "result"),
    "SubOrchestrationFailed": ("event_id", "source_event_id", _FAILURE),
    "OrchestrationContinuedAsNew": ("event_id", "input"),
    "OrchestrationCancelRequested": ("event_id", "reason"),
    "SystemCall": ("event_id", "op", "value", "execution_id"),
}
"""The fields of each legacy type, in the order the legacy writer used
(the history wire-format reference, section 3). Types born after the redesign
have no V0 form."""

_V0B_DETAIL_VARIANTS = ("Application", "Infrastructure", "Configuration")


def to_v0(event_data: str, generation: str) -> str | None:
    """A V1 row's JSON as the legacy writer of `generation` ("V0a" or "V0b")
    would have stored it, or None when that generation could not hold it."""
    wire = json.loads(event_data)
    event_type = wire["type"]
    fields = _V0_FIELDS.get(event_type)
    if fields is None:
        return None
    body: dict[str, Any] = {}
    for name in fields:
        if name != _FAILURE:
            body[name] = wire[name]
            continue
        details = wire["details"]
        if generation == "V0a":
            application = details.get("Application")
            if application is None or not isinstance(application.get("kind"), str):
                return None
            body["error"] = application["message"]
        else:
            if next(iter(details)) not in _V0B_DETAIL_VARIANTS:
                return None
            body["details"] = details
    return json.dumps({event_type: body}, ensure_ascii=False, separators=(",", ":"))


def rewrite_rows(
    path: Path, instance_id: str, convert: Callable[[str, str, int], str | None]
) -> int:
    """Rewrite one instance's history rows in place (one transaction), with plain
    sqlite3 UPDATEs; `convert(event_data, instance_id, execution_id)` returns the
    new JSON or None to keep the row. Returns the number of rows changed."""
    con = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        con.execute("BEGIN IMMEDIATE")
        rows = con.execute(
            "SELECT execution_id, event_id, event_data FROM history WHERE instance_id = ?",
            (instance_id,),
        ).fetchall()
        changed = 0
        for execution_id, event_id, data in rows:
            new = convert(data, instance_id, execution_id)
            if new is not None and new != data:
                con.execute(
                    "UPDATE history SET event_data = ?"
                    " WHERE instance_id = ? AND execution_id = ? AND event_id = ?",
                    (new, instance_id, execution_id, event_id),
                )
                changed += 1
        con.execute("COMMIT")
        return changed
    finally:
        con.close()


def upgrade_with_eventstore(event_data: str, instance_id: str, execution_id: int) -> str:
    """What an eager migration does to one row: eventstore decodes, then encodes V1."""
    event = decode(event_data, instance_id=instance_id, execution_id=execution_id)
    return encode(event).decode()


# --------------------------------------------------------------------------
# Part 1: the runtime writes, eventstore reads
# --------------------------------------------------------------------------

LAYOUTS = ["duroxide-created", "eventstore-created"]
"""Who created the history table: duroxide's migrations, or eventstore.open
(its layout adds `position INTEGER PRIMARY KEY`) before duroxide opened the file."""


@dataclass
class Corpus:
    layout: str
    path: Path
    outcomes: dict[str, orch.Outcome]
    reading: Reading
    """What the runtime's own client read once every orchestration had ended."""


@pytest.fixture(scope="module", params=LAYOUTS)
def corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    layout = str(request.param)
    path = tmp_path_factory.mktemp(f"corpus-{layout}") / "runtime.db"
    if layout == "eventstore-created":
        eventstore.open(str(path)).close()
    outcomes, reading = in_runtime_process(orch.job_corpus, str(path), "a")
    assert not reading.errors
    return Corpus(layout, path, outcomes, reading)


EXPECTED_STATUS = {
    "activities-a": "Completed",
    "syscalls-a": "Completed",
    "waiter-a": "Completed",
    "mailbox-a": "Completed",
    "looper-a": "Completed",
    "parent-a": "Completed",
    "parent-a::sub::2": "Completed",
    "parent-a-detached": "Completed",
    "parent-a-failing": "Failed",
    "failing-a": "Failed",
    "sleeper-a": "Failed",
    "racer-a": "Completed",
    "racer-a-sleeper": "Failed",
}


def test_runtime_ran_every_pattern(corpus: Corpus) -> None:
    statuses = {i: o.status for i, o in corpus.outcomes.items()}
    assert statuses == {i: EXPECTED_STATUS[i] for i in corpus.outcomes}
    assert corpus.outcomes["mailbox-a"].output == ["m1", "m2"]
    assert corpus.outcomes["racer-a"].output == [0, 0, 0]
    assert corpus.outcomes["parent-a"].output["failed"] is True
    assert sorted(corpus.reading.instances) == sorted(EXPECTED_STATUS)
    assert corpus.reading.executions["looper-a"] == [1, 2, 3]
    assert corpus.reading.executions["mailbox-a"] == [1, 2]


def test_corpus_covers_every_v1_event_type(corpus: Corpus) -> None:
    rows = history_rows(corpus.path)
    seen = {r[3] for r in rows}
    legacy_only = {"SystemCall"}
    assert seen == set(ev.EVENT_TYPES) - legacy_only
    # Optional fields the runtime writes only in some situations.
    joined = "\n".join(r[4] for r in rows)
    for field in (
        '"carry_forward_events":[["inbox"',
        '"initial_custom_status":',
        '"parent_execution_id":',
        '"session_id":',
        '"tag":"gpu"',
        '"status":null',
        '{"Cancelled":{"reason":',
        '"name":"__duroxide_syscall:new_guid"',
    ):
        assert field in joined, field


def test_every_runtime_row_decodes_and_reencodes_identically(corpus: Corpus) -> None:
    rows = history_rows(corpus.path)
    assert len(rows) > 100
    for instance_id, execution_id, event_id, event_type, data, created_at in rows:
        assert detect_version(data) == Generation.V1
        event = decode(data, instance_id=instance_id, execution_id=execution_id)
        assert type(event) is ev.EVENT_TYPES[event_type], data
        assert (event.instance_id, event.execution_id, event.event_id) == (
            instance_id,
            execution_id,
            event_id,
        )
        assert json.loads(encode(event)) == json.loads(data)
        assert event.has_timestamp
        assert event.duroxide_version == DUROXIDE_CORE_VERSION
        assert created_at is not None


@pytest.mark.xfail(
    strict=True,
    reason="eventstore writes the `type` tag first; duroxide writes it after "
    "`duroxide_version` (same JSON object, different bytes)",
)
def test_encode_reproduces_runtime_bytes(corpus: Corpus) -> None:
    instance_id, execution_id, _eid, _type, data, _created = history_rows(corpus.path)[0]
    event = decode(data, instance_id=instance_id, execution_id=execution_id)
    assert encode(event).decode() == data


def test_runtime_bytes_differ_only_in_tag_position(corpus: Corpus) -> None:
    """Apart from where `type` sits, eventstore's encoding is duroxide's, byte for byte."""
    for instance_id, execution_id, _eid, _type, data, _created in history_rows(corpus.path):
        mine = encode(decode(data, instance_id=instance_id, execution_id=execution_id))
        assert _tag_after_version(mine.decode()) == data


def _tag_after_version(text: str) -> str:
    fields = json.loads(text)
    tag = fields.pop("type")
    items = list(fields.items())
    at = [k for k, _ in items].index("duroxide_version") + 1
    moved = dict([*items[:at], ("type", tag), *items[at:]])
    return json.dumps(moved, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("readonly", [False, True], ids=["readwrite", "readonly"])
def test_store_reads_runtime_database(corpus: Corpus, readonly: bool) -> None:
    rows = history_rows(corpus.path)
    with eventstore.open(str(corpus.path), readonly=readonly) as store:
        assert store.readonly is readonly
        report = verify(store)
        assert report.ok, [str(p) for p in report.problems]
        assert report.rows == len(rows) == store.count()
        assert report.executions == len(executions_of(rows))
        assert store.instances() == sorted(corpus.reading.instances)
        for instance_id, execution_ids in corpus.reading.executions.items():
            assert store.executions(instance_id) == execution_ids
        feed = list(store.read_all())
        assert len(feed) == len(rows)
        assert [r.position for r in feed] == sorted(r.position for r in feed)
        statuses = {s.instance_id: s.status for s in store.summaries()}
        assert statuses == EXPECTED_STATUS


def test_store_sees_what_the_runtime_sees(corpus: Corpus) -> None:
    """eventstore's decoding of every execution equals the runtime's own reading."""
    assert len(corpus.reading.views) == len(executions_of(history_rows(corpus.path)))
    with eventstore.open(str(corpus.path), readonly=True) as store:
        for key, runtime_view in corpus.reading.views.items():
            assert [expected_view(e) for e in store.read(*key)] == runtime_view, key


def test_history_table_layout_after_both_opened(corpus: Corpus) -> None:
    """duroxide's migrations accept a history table eventstore created and keep it."""
    con = sqlite3.connect(corpus.path)
    try:
        columns = [(c[1], c[2].upper(), c[5]) for c in con.execute("PRAGMA table_info(history)")]
        migrations = con.execute("SELECT COUNT(*), MIN(success) FROM _sqlx_migrations").fetchone()
    finally:
        con.close()
    duroxide_columns = [
        ("instance_id", "TEXT"),
        ("execution_id", "INTEGER"),
        ("event_id", "INTEGER"),
        ("event_type", "TEXT"),
        ("event_data", "TEXT"),
        ("created_at", "TIMESTAMP"),
    ]
    assert migrations[0] >= 12 and migrations[1] == 1
    with eventstore.open(str(corpus.path), readonly=True) as store:
        if corpus.layout == "eventstore-created":
            assert columns[0] == ("position", "INTEGER", 1)
            assert [c[:2] for c in columns[1:]] == duroxide_columns
            assert store.stable_positions
        else:
            assert [c[:2] for c in columns] == duroxide_columns
            assert [c[2] for c in columns] == [1, 2, 3, 0, 0, 0]
            assert not store.stable_positions


def test_runtime_maintenance_keeps_the_store_consistent(corpus: Corpus, tmp_path: Path) -> None:
    """duroxide deletes an instance and prunes old executions in a store's file:
    eventstore still verifies clean, and on eventstore's layout the surviving
    rows keep their feed positions."""
    path = tmp_path / "maintained.db"
    copy_database(corpus.path, path)
    before = _positions(path)
    deleted, pruned = in_runtime_process(
        orch.job_maintenance, str(path), "failing-a", "looper-a", 1
    )
    after = _positions(path)
    gone = {k for k in before if k[0] == "failing-a" or (k[0] == "looper-a" and k[1] < 3)}
    assert (deleted, pruned) == (
        sum(1 for k in gone if k[0] == "failing-a"),
        sum(1 for k in gone if k[0] == "looper-a"),
    )
    assert after.keys() == before.keys() - gone
    assert after == {k: before[k] for k in after}
    with eventstore.open(str(path), readonly=True) as store:
        report = verify(store)
        assert report.ok, [str(p) for p in report.problems]
        assert "failing-a" not in store.instances()
        assert store.executions("looper-a") == [3]
        assert [r.position for r in store.read_all()] == sorted(after.values())


def _positions(path: Path) -> dict[tuple[str, int, int], int]:
    con = sqlite3.connect(path)
    try:
        return {
            (i, x, e): p
            for p, i, x, e in con.execute(
                "SELECT rowid, instance_id, execution_id, event_id FROM history"
            )
        }
    finally:
        con.close()


# --------------------------------------------------------------------------
# Part 2: eventstore writes, the runtime reads
# --------------------------------------------------------------------------


def events_by_execution(rows: list[Row]) -> dict[Key, list[ev.Event]]:
    grouped: dict[Key, list[ev.Event]] = defaultdict(list)
    for instance_id, execution_id, _eid, _type, data, _created in rows:
        grouped[(instance_id, execution_id)].append(
            decode(data, instance_id=instance_id, execution_id=execution_id)
        )
    return dict(grouped)


def emptied_copy(source: Path, target: Path) -> None:
    """A copy of a runtime database with duroxide's metadata but no history rows."""
    copy_database(source, target)
    con = sqlite3.connect(target)
    try:
        with con:
            con.execute("DELETE FROM history")
    finally:
        con.close()


def test_runtime_reads_histories_appended_by_eventstore(corpus: Corpus, tmp_path: Path) -> None:
    """Every execution the runtime wrote, appended again through HistoryStore.append
    into a copy whose history is empty, reads back identically in duroxide: same
    executions, same events, JSON-equal rows."""
    original = history_rows(corpus.path)
    twin = tmp_path / "twin.db"
    emptied_copy(corpus.path, twin)
    with eventstore.open(str(twin)) as store:
        for (instance_id, execution_id), events in events_by_execution(original).items():
            result = store.append(instance_id, execution_id, events, expected_last_event_id=0)
            assert result.written
    appended = history_rows(twin)
    assert [r[:4] for r in appended] == [r[:4] for r in original]
    for mine, theirs in zip(appended, original, strict=True):
        assert json.loads(mine[4]) == json.loads(theirs[4])
    reading = read_with_duroxide(twin)
    assert not reading.errors
    assert reading.executions == corpus.reading.executions
    assert reading.views == corpus.reading.views


@pytest.mark.parametrize("generation", ["V0a", "V0b"])
def test_runtime_reads_runtime_histories_upcast_from_v0(
    corpus: Corpus, tmp_path: Path, generation: str
) -> None:
    """The corpus rewritten to a legacy generation (wherever the type existed
    then), upcast by eventstore and appended as V1: duroxide reads the same
    events. Legacy rows carry no timestamp, so append stamps them."""
    legacy = tmp_path / "legacy.db"
    copy_database(corpus.path, legacy)
    for instance_id in corpus.reading.executions:
        rewrite_rows(legacy, instance_id, lambda data, _i, _x: to_v0(data, generation))
    legacy_rows = history_rows(legacy)
    # Failures tell V0a from V0b; other legacy events read the same in both (V0).
    generations = {str(detect_version(r[4])) for r in legacy_rows}
    assert generations == {"V0", generation, "V1"}

    target = tmp_path / "upcast.db"
    emptied_copy(corpus.path, target)
    with eventstore.open(str(target), clock=lambda: 1_700_000_000_000) as store:
        for (instance_id, execution_id), events in events_by_execution(legacy_rows).items():
            store.append(instance_id, execution_id, events, expected_last_event_id=0)
    reading = read_with_duroxide(target)
    assert not reading.errors
    assert reading.views.keys() == corpus.reading.views.keys()
    for key, runtime_view in corpus.reading.views.items():
        got = reading.views[key]
        assert without_timestamps(got) == without_timestamps(runtime_view), key
        assert all(ts > 0 for _k, _e, _s, ts, _d in got)


def legacy_fixture_rows(name: str) -> list[dict[str, Any]]:
    with (LEGACY / name).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.parametrize(
    ("fixture", "generations"),
    [
        ("v0a-history.jsonl", {"V0", "V0a"}),
        ("v0b-history.jsonl", {"V0", "V0b"}),
        ("mixed-history.jsonl", {"V0", "V0a", "V0b", "V1"}),
    ],
)
def test_runtime_reads_legacy_histories_appended_as_v1(
    tmp_path: Path, fixture: str, generations: set[str]
) -> None:
    """Legacy rows (tests/fixtures/legacy) decoded by eventstore and stored as
    V1 (imported whole, as legacy data arrives) into a database duroxide
    created: duroxide reads every execution with the events eventstore
    stored, except those holding a legacy SystemCall."""
    path = tmp_path / "runtime.db"
    read_with_duroxide(path)  # duroxide creates the database
    rows = legacy_fixture_rows(fixture)
    assert {str(detect_version(r["event_data"])) for r in rows} == generations
    grouped: dict[Key, list[ev.Event]] = defaultdict(list)
    for row in rows:
        key = (row["instance_id"], row["execution_id"])
        grouped[key].append(decode(row["event_data"], instance_id=key[0], execution_id=key[1]))
    with eventstore.open(str(path)) as store:
        # Legacy data arrives whole, id gaps included (where system-call
        # pairs became one SystemCall), so it is imported, not appended
        # (append refuses a gap); filled as append would fill it.
        store.import_rows(_as_v1_rows(store, grouped))
        stored = {key: store.read(*key) for key in grouped}
    reading = read_with_duroxide(path, sorted(stored))
    with_system_calls = {k for k, events in stored.items() if _has_system_call(events)}
    assert with_system_calls, "the fixture is expected to hold legacy SystemCall events"
    assert reading.errors.keys() == with_system_calls
    for key, events in stored.items():
        if key not in with_system_calls:
            assert reading.views[key] == [expected_view(e) for e in events], key
    for message in reading.errors.values():
        # eventstore keeps a legacy SystemCall as what it is (type "SystemCall",
        # see eventstore.events.SystemCall); duroxide has no such type.
        assert "SystemCall" in message
    # duroxide lists instances and executions from its own `instances` and
    # `executions` tables, which only the runtime writes: histories that exist
    # only as history rows are readable but not listed.
    assert reading.instances == []
    assert all(x == [] for x in reading.executions.values())


def _as_v1_rows(store: eventstore.HistoryStore, grouped: dict[Key, list[ev.Event]]) -> list[Any]:
    """Decoded legacy events as V1 rows, identity, timestamp and version filled."""
    rows: list[Any] = []
    for (instance_id, execution_id), events in grouped.items():
        for event in events:
            filled = msgspec.structs.replace(
                event,
                instance_id=instance_id,
                execution_id=execution_id,
                timestamp_ms=event.timestamp_ms or 1_700_000_000_000,
                duroxide_version=event.duroxide_version or store.writer_version,
            )
            rows.append(
                {
                    "instance_id": instance_id,
                    "execution_id": execution_id,
                    "event_id": event.event_id,
                    "event_type": event.event_type,
                    "event_data": store.codec.encode(filled).decode(),
                }
            )
    return rows


def _has_system_call(events: list[ev.Event]) -> bool:
    return any(isinstance(e, ev.SystemCall) for e in events)


def test_duroxide_opens_a_database_eventstore_created(tmp_path: Path) -> None:
    """eventstore creates the file and appends first; duroxide's migrations then
    run on it, leave the table as eventstore made it, and read its rows."""
    path = tmp_path / "store.db"
    started = ev.OrchestrationStarted(
        event_id=1, name="Imported", version="1.0.0", input='{"n": 1}'
    )
    scheduled = ev.ActivityScheduled(event_id=2, name="Work", input="1")
    with eventstore.open(str(path)) as store:
        stored = store.append("imported-1", 1, [started, scheduled]).events
    before = _table_sql(path)
    assert "position INTEGER PRIMARY KEY" in before
    reading = read_with_duroxide(path, [("imported-1", 1)])
    assert _table_sql(path) == before
    assert reading.views == {("imported-1", 1): [expected_view(e) for e in stored]}
    with eventstore.open(str(path)) as store:
        assert verify(store).ok
        assert store.read("imported-1") == stored


def _table_sql(path: Path) -> str:
    con = sqlite3.connect(path)
    try:
        return str(
            con.execute("SELECT sql FROM sqlite_master WHERE name = 'history'").fetchone()[0]
        )
    finally:
        con.close()


# --------------------------------------------------------------------------
# Part 3: resuming an orchestration stored in the legacy format
# --------------------------------------------------------------------------

RESUMED_TURNS = [
    "OrchestrationStarted",
    "ActivityScheduled",
    "ActivityCompleted",
    "ActivityScheduled",
    "ActivityFailed",
    "TimerCreated",
    "TimerFired",
    "ExternalSubscribed",
]


@pytest.fixture(scope="module")
def waiting_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database holding an orchestration ("resume-1") that waits for "Go"."""
    path = tmp_path_factory.mktemp("waiting") / "runtime.db"
    in_runtime_process(orch.job_start_waiting, str(path), "resume-1")
    return path


@pytest.mark.parametrize("generation", ["V0a", "V0b"])
def test_runtime_resumes_legacy_history_after_eventstore_upgrade(
    waiting_database: Path, tmp_path: Path, generation: str
) -> None:
    instance_id = "resume-1"
    path = tmp_path / "runtime.db"
    copy_database(waiting_database, path)
    original = [r for r in history_rows(path) if r[0] == instance_id]
    assert [r[3] for r in original] == RESUMED_TURNS

    # The earlier turns as the legacy writer stored them.
    changed = rewrite_rows(path, instance_id, lambda data, _i, _x: to_v0(data, generation))
    assert changed == len(original)
    legacy_rows = [r[:5] for r in history_rows(path) if r[0] == instance_id]
    assert {str(detect_version(r[4])) for r in legacy_rows} == {"V0", generation}

    # duroxide alone, on a copy: it cannot read the legacy rows, nor resume the
    # orchestration. The runtime takes the raised event, fails to load the
    # history on every attempt and finally poisons the message: the instance
    # fails, and nothing of the orchestration's own is appended.
    alone = tmp_path / "alone.db"
    copy_database(path, alone)
    failed = in_runtime_process(orch.job_raise_and_wait, str(alone), instance_id, 2)
    assert failed.read_error is not None and "deserialize" in failed.read_error
    assert (failed.status, failed.poisoned) == ("Failed", 1)
    after = [r[:5] for r in history_rows(alone) if r[0] == instance_id]
    assert after[: len(legacy_rows)] == legacy_rows
    # The poisoning is recorded as a failure outside the event sequence; it is
    # V1, and eventstore reads it as what it is.
    ((*_key, event_id, event_type, data),) = after[len(legacy_rows) :]
    assert (event_id, event_type) == (99999, "OrchestrationFailed")
    poisoned = decode(data)
    assert isinstance(poisoned, ev.OrchestrationFailed)
    assert isinstance(poisoned.details, ev.PoisonError)
    assert isinstance(poisoned.details.message_type, ev.FailedDeserializationMessage)
    assert json.loads(encode(poisoned)) == json.loads(data)

    # With eventstore: the rows are rewritten to V1 in place (decode + encode),
    # then the runtime resumes the orchestration and completes it.
    assert rewrite_rows(path, instance_id, upgrade_with_eventstore) == len(original)
    resumed = in_runtime_process(orch.job_raise_and_wait, str(path), instance_id)
    assert resumed.read_error is None
    assert resumed.status == "Completed"
    assert resumed.output == {"first": "r", "recovered": True, "second": "go"}
    assert resumed.poisoned == 0
    assert resumed.executions == [1]
    assert resumed.kinds == [
        *RESUMED_TURNS,
        "ExternalEvent",
        "ActivityScheduled",
        "ActivityCompleted",
        "OrchestrationCompleted",
    ]

    rows = [r for r in history_rows(path) if r[0] == instance_id]
    assert all(detect_version(r[4]) == Generation.V1 for r in rows)
    with eventstore.open(str(path), readonly=True) as store:
        report = verify(store)
        assert report.ok, [str(p) for p in report.problems]
        events = store.read(instance_id, 1)
    # The upgraded turns carry no timestamp (legacy rows had none); the
    # runtime's new turns do.
    assert [e.has_timestamp for e in events] == [False] * len(original) + [True] * 4
    # The upgraded events are the original ones, short of what V0 never stored.
    for event, before in zip(events, original, strict=False):
        first = decode(before[4], instance_id=instance_id, execution_id=1)
        assert without_timestamps([expected_view(event)]) == without_timestamps(
            [expected_view(first)]
        )


# --------------------------------------------------------------------------
# The legacy converter above is the codec's inverse on the legacy fixtures.
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "generation"),
    [("v0a-history.jsonl", "V0a"), ("v0b-history.jsonl", "V0b")],
)
def test_v0_converter_inverts_the_codec(fixture: str, generation: str) -> None:
    for row in legacy_fixture_rows(fixture):
        event = decode(
            row["event_data"], instance_id=row["instance_id"], execution_id=row["execution_id"]
        )
        legacy = to_v0(encode(event).decode(), generation)
        assert legacy is not None
        assert json.loads(legacy) == json.loads(row["event_data"])


def test_runtime_version_is_the_pinned_one() -> None:
    assert version("duroxide") == DUROXIDE_PACKAGE_VERSION


# --------------------------------------------------------------------------
# Part 4: duroxide's PostgreSQL provider (the throwaway test server)
# --------------------------------------------------------------------------

PG_PLACEHOLDER_TYPE = "Event"
"""What duroxide's PostgreSQL provider (duroxide 0.2.2) stores in `event_type`,
for every row: the real type is only in `event_data`."""


@dataclass
class PgCorpus:
    url: str
    outcomes: dict[str, orch.Outcome]
    reading: Reading


@pytest.fixture(scope="module")
def pg_corpus(postgres_target_factory: Callable[[], str]) -> PgCorpus:
    url = postgres_target_factory()
    outcomes, reading = in_runtime_process(orch.job_corpus, url, "a")
    assert not reading.errors
    return PgCorpus(url, outcomes, reading)


def pg_history_rows(url: str) -> list[Row]:
    import psycopg

    with psycopg.connect(url) as con:
        rows = con.execute(
            "SELECT instance_id, execution_id, event_id, event_type, event_data, created_at"
            " FROM history ORDER BY instance_id, execution_id, event_id"
        ).fetchall()
    return [(r[0], r[1], r[2], r[3], r[4], None if r[5] is None else str(r[5])) for r in rows]


@pytest.mark.postgres
def test_pg_runtime_rows_decode_and_reencode(pg_corpus: PgCorpus) -> None:
    assert {i: o.status for i, o in pg_corpus.outcomes.items()} == {
        i: EXPECTED_STATUS[i] for i in pg_corpus.outcomes
    }
    rows = pg_history_rows(pg_corpus.url)
    assert len(rows) > 100
    seen = set()
    for instance_id, execution_id, event_id, column_type, data, created_at in rows:
        assert column_type == PG_PLACEHOLDER_TYPE
        event = decode(data, instance_id=instance_id, execution_id=execution_id)
        assert detect_version(data) == Generation.V1
        assert type(event) is not ev.UnknownEvent
        assert (event.instance_id, event.execution_id, event.event_id) == (
            instance_id,
            execution_id,
            event_id,
        )
        assert json.loads(encode(event)) == json.loads(data)
        assert event.has_timestamp and created_at is not None
        seen.add(event.event_type)
    assert seen == set(ev.EVENT_TYPES) - {"SystemCall"}
    # The codec alone sees what the runtime sees.
    by_key = events_by_execution(rows)
    for key, runtime_view in pg_corpus.reading.views.items():
        assert [expected_view(e) for e in by_key[key]] == runtime_view, key


@pytest.mark.postgres
def test_pg_store_reads_runtime_database(pg_corpus: PgCorpus) -> None:
    with eventstore.open(pg_corpus.url, readonly=True) as store:
        for key, runtime_view in pg_corpus.reading.views.items():
            assert [expected_view(e) for e in store.read(*key)] == runtime_view, key


@pytest.mark.postgres
def test_pg_verify_is_clean_on_runtime_database(pg_corpus: PgCorpus) -> None:
    with eventstore.open(pg_corpus.url, readonly=True) as store:
        report = verify(store)
    assert report.ok, f"{len(report.problems)} problems, first: {report.problems[:1]}"


@pytest.mark.postgres
def test_pg_summaries_and_stats_on_runtime_database(pg_corpus: PgCorpus) -> None:
    from eventstore.store.verify import stats

    with eventstore.open(pg_corpus.url, readonly=True) as store:
        statuses = {s.instance_id: s.status for s in store.summaries()}
        names = {s.orchestration_name for s in store.summaries()}
        by_type = stats(store).by_type
    assert statuses == EXPECTED_STATUS
    assert None not in names
    assert PG_PLACEHOLDER_TYPE not in by_type


@pytest.mark.postgres
def test_pg_runtime_refuses_a_schema_eventstore_created(
    postgres_target_factory: Callable[[], str],
) -> None:
    """duroxide's PostgreSQL migrations refuse a schema that already holds a
    `history` table without duroxide's migration ledger: on PostgreSQL the
    runtime must create the database, and eventstore appends to it."""
    url = postgres_target_factory()
    eventstore.open(url).close()
    with pytest.raises(RuntimeError, match="migration tracking table is missing"):
        in_runtime_process(orch.job_read, url)


@pytest.mark.postgres
def test_pg_store_appends_to_runtime_database(postgres_target_factory: Callable[[], str]) -> None:
    """duroxide's PostgreSQL history table declares created_at NOT NULL without a
    default: eventstore's append must fill it."""
    url = postgres_target_factory()
    in_runtime_process(orch.job_read, url)  # duroxide creates its schema
    started = ev.OrchestrationStarted(event_id=1, name="Imported", version="1.0.0", input="1")
    with eventstore.open(url) as store:
        stored = store.append("imported-1", 1, [started]).events
    reading = read_with_duroxide(url, [("imported-1", 1)])
    assert reading.views == {("imported-1", 1): [expected_view(e) for e in stored]}


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["append", "import_rows"])
def test_pg_runtime_reads_histories_written_by_eventstore(
    pg_corpus: PgCorpus, postgres_target_factory: Callable[[], str], how: str
) -> None:
    """The PostgreSQL twin of the SQLite test: into a database duroxide created,
    eventstore writes every execution the runtime wrote (HistoryStore.append,
    or import_rows with the original created_at); duroxide reads them back
    identically."""
    import psycopg

    original = pg_history_rows(pg_corpus.url)
    url = postgres_target_factory()
    in_runtime_process(orch.job_read, url)  # duroxide creates its schema
    with eventstore.open(url) as store:
        if how == "append":
            for (instance_id, execution_id), events in events_by_execution(original).items():
                store.append(instance_id, execution_id, events, expected_last_event_id=0)
        else:
            rows = [
                {
                    "instance_id": instance_id,
                    "execution_id": execution_id,
                    "event_id": event_id,
                    "event_type": event.event_type,
                    "event_data": encode(event).decode(),
                    "created_at": created_at,
                }
                for (instance_id, execution_id, event_id, _type, data, created_at) in original
                for event in [decode(data, instance_id=instance_id, execution_id=execution_id)]
            ]
            assert store.import_rows(rows).inserted == len(original)
    written = pg_history_rows(url)
    assert [(r[0], r[1], r[2]) for r in written] == [(r[0], r[1], r[2]) for r in original]
    for mine, theirs in zip(written, original, strict=True):
        assert json.loads(mine[4]) == json.loads(theirs[4])
    # No instance or execution metadata was copied: duroxide reads the
    # histories but does not list them.
    reading = read_with_duroxide(url, sorted(pg_corpus.reading.views))
    assert not reading.errors
    assert reading.views == pg_corpus.reading.views
    assert reading.instances == []
    with psycopg.connect(url) as con:
        (count,) = con.execute("SELECT COUNT(*) FROM executions").fetchone() or (0,)
    assert count == 0
