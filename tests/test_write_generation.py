"""Phase-2 metadata, forward compatibility, the write generation and the dual-write window.

Real SQLite files (and the real PostgreSQL for its refusal); the interop
proof with duroxide itself is tests/test_window_interop.py.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner
from hypothesis import given, settings

import eventstore
from eventstore import Generation, decode, detect_version, encode
from eventstore import events as ev
from eventstore.cli import main
from eventstore.codec.downcast import _V0_KINDS, _WITH_SOURCE, to_v0b
from eventstore.errors import EventStoreError, TargetError, WriteGenerationError
from eventstore.evolution.cutover import BEFORE_WINDOW, cutover
from eventstore.evolution.migrate import backfill_timestamps, migrate, rollback
from eventstore.store.verify import verify
from tests.test_codec_properties import any_event

PHASE2_NAMES = frozenset(field for _type, field in ev.PHASE2_FIELDS)
T0 = 1_795_000_000_000
VERSION = "0.1.32"


def started(**fields: Any) -> ev.OrchestrationStarted:
    return ev.OrchestrationStarted(
        event_id=1, name="Order", version="1.0.0", input='{"n":1}', timestamp_ms=T0, **fields
    )


def scheduled(**fields: Any) -> ev.ActivityScheduled:
    return ev.ActivityScheduled(event_id=2, name="Charge", input="1", timestamp_ms=T0 + 5, **fields)


def completed(**fields: Any) -> ev.ActivityCompleted:
    return ev.ActivityCompleted(
        event_id=3, source_event_id=2, result='"ok"', timestamp_ms=T0 + 9, **fields
    )


FULL = [
    started(
        worker_id="w-1",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        correlation_id="order-7",
        tags={"team": "pay", "tier": "gold"},
        runtime_version="rt 3.1.0",
    ),
    scheduled(
        retry_count=2,
        timeout_ms=30_000,
        retry_policy=ev.RetryPolicy(max_attempts=5, initial_backoff_ms=100, backoff_multiplier=2.0),
        scheduled_by_worker_id="w-1",
    ),
    completed(completed_by_worker_id="w-2"),
]


def table_names(path: Path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return sorted(
            r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
        )
    finally:
        con.close()


def history(path: Path) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(path)
    try:
        return con.execute(
            "SELECT instance_id, execution_id, event_id, event_type, event_data, created_at"
            " FROM history ORDER BY instance_id, execution_id, event_id"
        ).fetchall()
    finally:
        con.close()


# -- phase-2 fields ------------------------------------------------------------


def test_phase2_fields_are_omitted_when_unset() -> None:
    for event in (started(), scheduled(), completed()):
        assert not PHASE2_NAMES & json.loads(encode(event)).keys()


def test_phase2_fields_round_trip_when_set() -> None:
    for event in FULL:
        data = encode(event)
        assert decode(data) == event
        set_here = {
            f
            for t, f in ev.PHASE2_FIELDS
            if t == event.event_type and getattr(event, f) is not msgspec.UNSET
        }
        assert set_here
        assert set_here <= json.loads(data).keys()
    assert json.loads(encode(FULL[1]))["retry_policy"] == {
        "max_attempts": 5,
        "initial_backoff_ms": 100,
        "backoff_multiplier": 2.0,
    }


def test_a_phase2_field_of_the_wrong_type_is_refused_on_append(tmp_path: Path) -> None:
    with eventstore.open(str(tmp_path / "s.db")) as store:
        with pytest.raises(eventstore.InvalidEventError, match="retry_count"):
            store.append("i", 1, [started(), scheduled(retry_count="two")])
        assert store.read("i") == []


def test_unknown_fields_decode_and_are_dropped_while_the_row_keeps_them(tmp_path: Path) -> None:
    """Forward compatibility: a newer writer's fields that no version of the model
    knows are ignored by decode (the documented rule) and so absent when the
    event is encoded again; the stored row itself is never rewritten."""
    wire = json.loads(encode(FULL[0]))
    wire |= {"x_new_field": 7, "x_nested": {"a": [1, None]}}
    data = json.dumps(wire, separators=(",", ":"))
    event = decode(data)
    assert event == FULL[0]
    assert "x_new_field" not in json.loads(encode(event))
    path = tmp_path / "s.db"
    with eventstore.open(str(path)) as store:
        store.append("i", 1, [started()])
    con = sqlite3.connect(path)
    with con:
        con.execute(
            "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
            " VALUES ('j', 1, 1, 'OrchestrationStarted', ?)",
            (
                data.replace('"instance_id":""', '"instance_id":"j"').replace(
                    '"execution_id":0', '"execution_id":1'
                ),
            ),
        )
    con.close()
    with eventstore.open(str(path), readonly=True) as store:
        assert verify(store).ok
        assert store.read("j")[0].worker_id == "w-1"  # type: ignore[union-attr]
    assert '"x_new_field":7' in history(path)[1][4]


# -- the V0b shape -------------------------------------------------------------


@settings(max_examples=300)
@given(any_event)
def test_every_event_downcasts_to_a_row_the_legacy_decoder_reads(event: ev.Event) -> None:
    """The V0b row of any event reads back (legacy path) as the event short of
    what V0b cannot hold: timestamps, versions, later V1 fields, phase 2."""
    legacy = to_v0b(encode(event))
    assert detect_version(legacy) in (Generation.V0, Generation.V0B)
    read = decode(legacy, instance_id=event.instance_id, execution_id=event.execution_id)
    assert type(read) is type(event)
    fields = event.__struct_fields__
    later_v1 = ("session_id", "tag", "parent_execution_id", "carry_forward_events")
    lost: dict[str, Any] = {
        "timestamp_ms": 0,
        "duroxide_version": "",
        **{
            f: msgspec.UNSET
            for f in (*PHASE2_NAMES, *later_v1, "initial_custom_status")
            if f in fields
        },
    }
    if event.event_type in _V0_KINDS and event.event_type not in _WITH_SOURCE:
        lost["source_event_id"] = None  # V0 had a source id on completions only
    details = getattr(event, "details", None)
    if isinstance(details, ev.ApplicationError) and details.kind == "Panicked":
        lost["details"] = ev.ApplicationError(
            kind="OrchestrationFailed", message=details.message, retryable=details.retryable
        )
    expected = msgspec.structs.replace(event, **lost)
    assert read == expected


# -- the write generation --------------------------------------------------------


def test_a_v0b_store_writes_legacy_rows_and_keeps_the_v1_form(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with eventstore.open(str(path), write_generation="V0b") as store:
        assert store.write_generation == "V0b"
        stored = store.append("order-7", 1, FULL).events
        read = store.read("order-7")
    rows = history(path)
    assert [detect_version(r[4]) for r in rows] == [Generation.V0] * 3
    assert (
        rows[1][4]
        == '{"ActivityScheduled":{"event_id":2,"name":"Charge","input":"1","execution_id":1}}'
    )
    assert [e.event_id for e in read] == [1, 2, 3] and all(e.timestamp_ms == 0 for e in read)
    con = sqlite3.connect(path)
    shadow = [
        r[0] for r in con.execute("SELECT event_data FROM eventstore_shadow ORDER BY event_id")
    ]
    con.close()
    assert [decode(s) for s in shadow] == stored  # the full V1 form, metadata included
    assert {"eventstore_shadow", "eventstore_write_generation"} <= set(table_names(path))


def test_a_writer_configured_differently_is_refused_naming_both(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    eventstore.open(path, write_generation="V0b").close()
    with pytest.raises(
        WriteGenerationError, match="records write generation V0b; this writer is configured for V1"
    ) as caught:
        eventstore.open(path, write_generation="V1")
    assert (caught.value.configured, caught.value.recorded) == ("V1", "V0b")
    with eventstore.open(path) as store:  # no preference: the store's generation
        assert store.write_generation == "V0b"


def test_a_v1_store_refuses_a_legacy_writer(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    with eventstore.open(path, write_generation="V0b") as store:
        store.append("i", 1, [started()])
    with eventstore.open(path) as store:
        cutover(store)
    with pytest.raises(WriteGenerationError, match="cut over to V1"):
        eventstore.open(path, write_generation="V0b")


@pytest.mark.parametrize("value", ["V0a", "V2", "", 1])
def test_an_unknown_write_generation_is_a_target_error(tmp_path: Path, value: Any) -> None:
    with pytest.raises(TargetError, match="write_generation"):
        eventstore.open(str(tmp_path / "s.db"), write_generation=value)


def test_a_stale_legacy_writer_is_refused_after_the_cutover(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    with eventstore.open(path, write_generation="V0b") as old, eventstore.open(path) as operator:
        old.append("a", 1, [started()])
        cutover(operator)
        with pytest.raises(WriteGenerationError, match=r"V1; this writer is configured for V0b"):
            old.append("b", 1, [started()])
        assert old.read("b") == []
        assert operator.evolution.window_counts() == (("V1", 1, 0, 1))


def test_a_retried_batch_in_the_window_writes_nothing(tmp_path: Path) -> None:
    with eventstore.open(str(tmp_path / "s.db"), write_generation="V0b") as store:
        assert store.append("i", 1, FULL).written
        again = store.append("i", 1, FULL)
        assert not again.written
        with pytest.raises(eventstore.ConcurrencyError):
            store.append("i", 1, [started(), msgspec.structs.replace(FULL[1], name="Other")])


def test_appends_inside_a_transaction_dual_write_too(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with eventstore.open(str(path), write_generation="V0b") as store:
        with store.transaction() as tx:
            tx.append("i", 1, FULL)
        assert store.evolution.window_counts() == ("V0b", 3, 3, 3)


# -- reading commands add nothing --------------------------------------------------


def test_reading_commands_add_no_tables_to_a_duroxide_database(duroxide_db: Path) -> None:
    before = table_names(duroxide_db)
    runner = CliRunner()
    for args in (
        ["schema", "check", str(duroxide_db)],
        ["schema", "check", "--json", str(duroxide_db)],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
        assert "write generation" not in result.output
    # ls reads duroxide's file through the execution catalog, derived from
    # the history there: no catalog table is added, not even by the catalog's
    # own commands.
    for args in (
        ["ls", str(duroxide_db)],
        ["ls", "--json", "--all-executions", str(duroxide_db)],
        ["ls", "--csv", "--status", "completed", "--since", "2026-11-21", str(duroxide_db)],
        ["verify", str(duroxide_db)],
        ["catalog", "rebuild", str(duroxide_db)],
        ["catalog", "catch-up", str(duroxide_db)],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, (args, result.output)
    assert json.loads(runner.invoke(main, ["schema", "check", "--json", str(duroxide_db)]).output)[
        "window"
    ] == {"generation": None, "shadowed": 0, "pending": 0, "total": 154}
    eventstore.open(str(duroxide_db)).close()  # a writer with no preference writes V1
    with eventstore.open(str(duroxide_db)) as store:
        assert cutover(store).status == "nothing-to-do"
    assert table_names(duroxide_db) == before


# -- cutover, rollback, and what refuses during the window -------------------------


def _window_store(path: Path) -> list[tuple[Any, ...]]:
    """A store with legacy rows from before the window, then a window of two executions."""
    with eventstore.open(str(path)) as store:
        store.import_rows(
            [
                {
                    "instance_id": "old",
                    "execution_id": 1,
                    "event_id": 1,
                    "event_type": "OrchestrationStarted",
                    "event_data": to_v0b(encode(started())).decode(),
                }
            ]
        )
    with eventstore.open(str(path), write_generation="V0b") as store:
        store.append("new-a", 1, FULL)
        store.append("new-b", 1, FULL[:2])
    return history(path)


def test_cutover_rewrites_the_window_and_rollback_restores_it(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    before = _window_store(path)
    with eventstore.open(str(path)) as store:
        report = cutover(store, batch_size=2)
        assert (report.status, report.changed, report.kept[BEFORE_WINDOW]) == ("completed", 5, 1)
        assert store.evolution.write_generation() == "V1"
        assert [e.timestamp_ms for e in store.read("new-a")] == [T0, T0 + 5, T0 + 9]
        assert store.read("new-a") == [
            msgspec.structs.replace(
                e, instance_id="new-a", execution_id=1, duroxide_version="0.1.32"
            )
            for e in FULL
        ]
        assert store.read("old")[0].timestamp_ms == 0  # left to migrate
        assert rollback(store, report.run_id or "").restored == 5
        assert store.evolution.write_generation() == "V0b"
    assert history(path) == before


def test_cutover_without_a_window_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with eventstore.open(str(path)) as store:
        store.append("i", 1, [started()])
        before = table_names(path)
        report = cutover(store)
    assert (report.status, report.run_id) == ("nothing-to-do", None)
    assert table_names(path) == before


def test_cutover_names_what_it_cannot_do(tmp_path: Path) -> None:
    with (
        eventstore.open(str(tmp_path / "s.db")) as store,
        pytest.raises(eventstore.SchemaEvolutionError, match="goes to V1"),
    ):
        cutover(store, to="V0b")


def test_a_shadow_form_that_does_not_fit_its_row_is_kept_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _window_store(path)
    con = sqlite3.connect(path)
    with con:
        con.execute(
            "UPDATE eventstore_shadow SET event_data = '{\"broken\": 1}'"
            " WHERE instance_id = 'new-b' AND event_id = 2"
        )
    con.close()
    with eventstore.open(str(path)) as store:
        report = cutover(store)
    assert report.changed == 4
    reason = "shadow form does not read back as its row"
    assert report.kept[reason] == 1
    assert "new-b" in report.samples[reason][0]
    row = next(r for r in history(path) if r[0] == "new-b" and r[2] == 2)
    assert detect_version(row[4]) == Generation.V0  # left as written


def test_migrate_and_backfill_refuse_while_the_window_is_open(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    before = _window_store(path)
    with eventstore.open(str(path)) as store:
        for run in (migrate, backfill_timestamps):
            with pytest.raises(EventStoreError, match=r"dual-write\s+window is open"):
                run(store)
    runner = CliRunner()
    result = runner.invoke(main, ["migrate", str(path)])
    assert result.exit_code == 1
    assert "cutover" in result.output and "Traceback" not in result.output
    assert history(path) == before


def test_cli_cutover_and_schema_check_report_the_window(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _window_store(path)
    runner = CliRunner()
    checked = runner.invoke(main, ["schema", "check", str(path)])
    assert "write generation: V0b (dual-write window open)" in checked.output
    assert "5 rows with a shadow form (5 not cut over yet), 1 without" in checked.output
    done = runner.invoke(main, ["cutover", str(path), "--batch-size", "2"])
    assert done.exit_code == 0, done.output
    assert "rewrote 5 rows" in done.output and "run id: cut-" in done.output
    again = runner.invoke(main, ["cutover", str(path)])
    assert "nothing to do: no dual-write window is open" in again.output
    checked = runner.invoke(main, ["schema", "check", str(path)])
    assert "write generation: V1 (cut over)" in checked.output


def test_the_timeline_shows_workers_and_retries_where_events_carry_them(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with eventstore.open(str(path)) as store:
        store.append("i", 1, FULL)
        store.append("j", 1, [started()])
    runner = CliRunner()
    shown = runner.invoke(main, ["show", str(path), "i", "--json"])
    summaries = [row["summary"] for row in json.loads(shown.output)]
    assert summaries[0].endswith("; worker w-1, trace 4bf92f3577b34da6a3ce929d0e0e4736")
    assert summaries[1].endswith("; worker w-1, retry 2")
    assert summaries[2].endswith("; worker w-2")
    plain = runner.invoke(main, ["show", str(path), "j", "--json"])
    assert ";" not in json.loads(plain.output)[0]["summary"]


def test_an_unknown_recorded_generation_refuses_every_writer(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with eventstore.open(str(path), write_generation="V0b") as store:
        store.append("i", 1, [started()])
    con = sqlite3.connect(path)
    with con:
        con.execute("UPDATE eventstore_write_generation SET generation = 'V7'")
    con.close()
    named = r"'V7' \(table eventstore_write_generation\)"
    for requested in (None, "V1", "V0b"):
        with pytest.raises(WriteGenerationError, match=named):
            eventstore.open(str(path), write_generation=requested)
    with eventstore.open(str(path), readonly=True) as store:  # reads still work
        assert [e.event_id for e in store.read("i")] == [1]
    result = CliRunner().invoke(main, ["cutover", str(path)])
    assert result.exit_code == 1 and "V7" in result.output
    assert "Traceback" not in result.output


def test_a_failed_shadow_insert_leaves_no_history_row(tmp_path: Path) -> None:
    """The legacy row and its shadow commit together or not at all: a shadow key
    already taken (a hand-made row) fails the append, and its history row is
    rolled back with it; the error is eventstore's, not the driver's."""
    path = tmp_path / "s.db"
    with eventstore.open(str(path), write_generation="V0b") as store:
        store.append("a", 1, [started()])
    con = sqlite3.connect(path)
    with con:
        con.execute(
            "INSERT INTO eventstore_shadow VALUES ('b', 1, 1, 'OrchestrationStarted', '{}')"
        )
    con.close()
    before = history(path)
    with eventstore.open(str(path)) as store:
        with pytest.raises(eventstore.ConflictError, match="eventstore_shadow"):
            store.append("b", 1, [started()])
        assert store.read("b") == []
    assert history(path) == before
