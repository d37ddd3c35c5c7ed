"""One set of history rules: what append refuses is what verify reports.

Each bad history is tried three ways: appended in one batch, appended one
event per batch (the rule must hold across batches), and imported (import
copies rows verbatim, so verify sees it). Append must refuse it with a
HistoryRuleError naming instance, execution and event id, writing nothing;
verify must report it at the same event.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

import eventstore
from eventstore import events as ev
from eventstore.backends.sqlite.writer import SQLiteWriter
from eventstore.cli import main
from eventstore.errors import HistoryRuleError, InvalidEventError, ValidationError
from eventstore.evolution.migrate import migrate, rollback
from eventstore.store.protocol import StoredRow
from eventstore.store.verify import verify
from tests.conftest import DUROXIDE_JSONL

I = "inst"  # noqa: E741


def started(event_id: int = 1) -> ev.OrchestrationStarted:
    return ev.OrchestrationStarted(event_id=event_id, name="Order", version="1.0.0", input="7")


def scheduled(event_id: int) -> ev.ActivityScheduled:
    return ev.ActivityScheduled(event_id=event_id, name="Greet", input='"x"')


def timer(event_id: int) -> ev.TimerCreated:
    return ev.TimerCreated(event_id=event_id, fire_at_ms=5)


def done(event_id: int, source: int | None) -> ev.ActivityCompleted:
    return ev.ActivityCompleted(event_id=event_id, source_event_id=source, result='"ok"')


def finished(event_id: int) -> ev.OrchestrationCompleted:
    return ev.OrchestrationCompleted(event_id=event_id, output='"done"')


BAD: dict[str, tuple[list[ev.Event], int, str]] = {
    # name: (history, the event id that breaks a rule, verify's kind)
    "gap": ([started(), scheduled(2), scheduled(10)], 10, "gap"),
    "second-start": ([started(), scheduled(2), started(3)], 3, "ordering"),
    "after-terminal": ([started(), finished(2), scheduled(3)], 3, "ordering"),
    "orphan-completion": ([started(), scheduled(2), done(3, 7)], 3, "orphan-completion"),
    "completion-of-wrong-kind": ([started(), timer(2), done(3, 2)], 3, "orphan-completion"),
    "completion-without-source": ([started(), scheduled(2), done(3, None)], 3, "orphan-completion"),
    "timer-fired-names-activity": (
        [started(), scheduled(2), ev.TimerFired(event_id=3, source_event_id=2, fire_at_ms=5)],
        3,
        "orphan-completion",
    ),
}


def _store(tmp_path: Path, name: str = "s.db") -> eventstore.HistoryStore:
    return eventstore.open(str(tmp_path / name))


@pytest.mark.parametrize("name", sorted(BAD))
def test_append_refuses_in_one_batch(tmp_path: Path, name: str) -> None:
    history, bad_id, _ = BAD[name]
    with _store(tmp_path) as store:
        with pytest.raises(HistoryRuleError) as caught:
            store.append(I, 1, history)
        assert isinstance(caught.value, ValidationError)
        assert f"instance {I!r}, execution 1, event {bad_id}" in str(caught.value)
        assert store.count() == 0


@pytest.mark.parametrize("name", sorted(BAD))
def test_append_refuses_across_batches(tmp_path: Path, name: str) -> None:
    history, bad_id, _ = BAD[name]
    with _store(tmp_path) as store:
        for event in history:
            if event.event_id == bad_id:
                with pytest.raises(HistoryRuleError, match=rf"event {bad_id}\b"):
                    store.append(I, 1, [event])
                break
            store.append(I, 1, [event])
        assert store.last_event_id(I, 1) == max(e.event_id for e in history if e.event_id < bad_id)


@pytest.mark.parametrize("name", sorted(BAD))
def test_verify_reports_what_append_refuses(tmp_path: Path, name: str) -> None:
    history, bad_id, kind = BAD[name]
    codec = eventstore.Codec()
    rows = [
        {
            "instance_id": I,
            "execution_id": 1,
            "event_id": e.event_id,
            "event_type": e.event_type,
            "event_data": codec.encode(_filled(e)).decode(),
        }
        for e in history
    ]
    with _store(tmp_path) as store:
        store.import_rows(rows)
        report = verify(store)
    assert [(p.kind, p.location.event_id) for p in report.problems] == [(kind, bad_id)]


def _filled(event: ev.Event) -> ev.Event:
    return msgspec.structs.replace(event, instance_id=I, execution_id=1)


def _duroxide_executions() -> dict[tuple[str, int], list[ev.Event]]:
    by_execution: dict[tuple[str, int], list[ev.Event]] = {}
    for line in DUROXIDE_JSONL.read_text().splitlines():
        row = json.loads(line)
        event = eventstore.decode(row["event_data"])
        by_execution.setdefault((row["instance_id"], row["execution_id"]), []).append(event)
    return by_execution


@pytest.mark.parametrize("per_event", [False, True], ids=["whole", "one-per-batch"])
def test_duroxide_histories_append_and_verify(tmp_path: Path, per_event: bool) -> None:
    executions = _duroxide_executions()
    with _store(tmp_path) as store:
        for (instance_id, execution_id), events in executions.items():
            batches = [[e] for e in events] if per_event else [events]
            for batch in batches:
                store.append(instance_id, execution_id, batch)
        assert store.count() == sum(map(len, executions.values()))
        report = verify(store)
    assert report.ok, report.problems


def _poisoned() -> list[ev.Event]:
    details = ev.PoisonError(
        attempt_count=5,
        max_attempts=5,
        message_type=ev.OrchestrationMessage(instance=I, execution_id=1),
        message="poisoned",
    )
    return [started(), scheduled(2), ev.OrchestrationFailed(event_id=99999, details=details)]


def test_the_poison_failure_outside_the_sequence_is_valid_for_both(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        store.append(I, 1, _poisoned()[:2])
        store.append(I, 1, _poisoned()[2:])
        assert [e.event_id for e in store.read(I)] == [1, 2, 99999]
        assert verify(store).ok
        with pytest.raises(HistoryRuleError, match="after the terminal event 99999"):
            store.append(I, 1, [scheduled(100000)])


def _unknown(raw: dict[str, object], event_id: int = 2) -> ev.UnknownEvent:
    return ev.UnknownEvent(
        event_id=event_id,
        instance_id=I,
        execution_id=1,
        type_name="FutureThing",
        raw=json.dumps(raw).encode(),
    )


def test_an_unknown_event_whose_raw_json_disagrees_is_refused(tmp_path: Path) -> None:
    good = {"event_id": 2, "instance_id": I, "execution_id": 1, "type": "FutureThing"}
    for field, value in [
        ("event_id", 3),
        ("type", "OtherThing"),
        ("instance_id", "elsewhere"),
        ("execution_id", 4),
    ]:
        with _store(tmp_path, f"{field}.db") as store:
            store.append(I, 1, [started()])
            with pytest.raises(InvalidEventError, match=re.escape("event 2: ")):
                store.append(I, 1, [_unknown({**good, field: value})])
            assert store.count() == 1
            assert [e.event_id for e in store.read(I)] == [1]  # every reader still reads


def test_an_identical_retry_of_a_batch_holding_an_unknown_event_succeeds(tmp_path: Path) -> None:
    good = {"event_id": 2, "instance_id": I, "execution_id": 1, "type": "FutureThing"}
    batch: list[ev.Event] = [started(), _unknown(good)]
    with _store(tmp_path) as store:
        first = store.append(I, 1, batch)
        again = store.append(I, 1, batch)
        assert first.written and not again.written
        assert again.last_event_id == first.last_event_id == 2
        assert store.count() == 2
        assert type(store.read(I)[1]) is ev.UnknownEvent


# -- gaps: new ones refused, those in stored legacy data tolerated ------------


def _legacy(event_id: int, body: str) -> dict[str, object]:
    return {
        "instance_id": I,
        "execution_id": 1,
        "event_id": event_id,
        "event_type": body.split('"')[1],
        "event_data": body,
    }


LEGACY_WITH_GAP = [  # V0 rows, id 3 missing (a system-call pair became one SystemCall)
    _legacy(1, '{"OrchestrationStarted":{"event_id":1,"name":"O","version":"1","input":"0"}}'),
    _legacy(2, '{"ActivityScheduled":{"event_id":2,"name":"A","input":"1","execution_id":1}}'),
    _legacy(4, '{"ActivityScheduled":{"event_id":4,"name":"A","input":"2","execution_id":1}}'),
]


def _v1_rows(history: list[ev.Event]) -> list[dict[str, object]]:
    codec = eventstore.Codec()
    return [
        {
            "instance_id": I,
            "execution_id": 1,
            "event_id": e.event_id,
            "event_type": e.event_type,
            "event_data": codec.encode(_filled(e)).decode(),
        }
        for e in history
    ]


def test_a_gap_in_a_legacy_execution_is_tolerated_and_counted(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        store.import_rows(LEGACY_WITH_GAP)
        report = verify(store)
        assert report.ok, report.problems
        assert [(g.kind, g.location.event_id) for g in report.legacy_gaps] == [("gap", 4)]
        assert "event id 4 where 3 comes next" in str(report.legacy_gaps[0])
        with pytest.raises(HistoryRuleError, match="event 6: event id 6 where 5 comes next"):
            store.append(I, 1, [scheduled(6)])  # append makes no new gap, legacy or not


def test_the_same_gap_in_v1_rows_is_a_problem(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        store.import_rows(_v1_rows([started(), scheduled(2), scheduled(4)]))
        report = verify(store)
    assert [(p.kind, p.location.event_id) for p in report.problems] == [("gap", 4)]
    assert report.legacy_gaps == []


def test_a_gap_stays_tolerated_once_a_migration_rewrote_the_rows(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        store.import_rows(LEGACY_WITH_GAP)
        run = migrate(store, strategy="eager")
        assert run.changed == 3
        report = verify(store)
        assert set(report.generations) == {"V1"}  # no legacy row left: the log says
        assert report.ok, report.problems
        assert [g.location.event_id for g in report.legacy_gaps] == [4]
        assert run.run_id is not None
        rollback(store, run.run_id)
        report = verify(store)
        assert report.ok and [g.location.event_id for g in report.legacy_gaps] == [4]


def test_a_corrupt_row_is_reported_once_and_the_rules_go_on_past_it(tmp_path: Path) -> None:
    rows = _v1_rows([started(), scheduled(2), scheduled(3), done(4, 2), done(5, 3)])
    rows[2]["event_data"] = "{not json"
    with _store(tmp_path) as store:
        store.import_rows(rows[:2])
    with contextlib.closing(sqlite3.connect(tmp_path / "s.db")) as con, con:
        con.executemany(  # a raw insert, as import refuses the corrupt row
            "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
            " VALUES (?, ?, ?, ?, ?)",
            [tuple(r.values()) for r in rows[2:]],
        )
    with _store(tmp_path) as store:
        report = verify(store)
    # Not "event id 4 where 3 comes next", not "source event 3, which is nothing".
    assert [(p.kind, p.location.event_id) for p in report.problems] == [("undecodable", 3)]


def test_cli_verify_json_counts_and_shows_tolerated_legacy_gaps(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        store.import_rows(LEGACY_WITH_GAP)
    result = CliRunner().invoke(main, ["verify", "--json", str(tmp_path / "s.db")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True and report["problems"] == []
    assert report["legacy_gaps"] == 1
    assert [t["kind"] for t in report["tolerated"]] == ["legacy-gap"]
    assert "event 4" in report["tolerated"][0]["where"]
    text = CliRunner().invoke(main, ["verify", str(tmp_path / "s.db")])
    assert text.exit_code == 0, text.output
    assert "1 id gap in legacy data tolerated" in text.output
    assert "OK" in text.output


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The ranges the SQLite writer reads stored rows of, from now on."""
    reads: list[tuple[int, int]] = []
    original = SQLiteWriter.rows_between

    def counted(
        self: SQLiteWriter, instance_id: str, execution_id: int, first: int, last: int
    ) -> list[StoredRow]:
        reads.append((first, last))
        return original(self, instance_id, execution_id, first, last)

    monkeypatch.setattr(SQLiteWriter, "rows_between", counted)
    return reads


def test_stored_sources_close_together_are_read_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _store(tmp_path) as store:
        store.append(I, 1, [started(), scheduled(2), timer(3), scheduled(4)])
        reads = _count_reads(monkeypatch)
        results = [done(5, 2), ev.TimerFired(event_id=6, source_event_id=3, fire_at_ms=5)]
        store.append(I, 1, [*results, done(7, 4)])
        assert reads == [(2, 4)]
        assert store.last_event_id(I, 1) == 7
        # A wrong kind among them is refused as before, naming the event.
        store.append(I, 1, [scheduled(8), timer(9)])
        with pytest.raises(HistoryRuleError, match=r"event 11\b.*names source event 9"):
            store.append(I, 1, [done(10, 8), done(11, 9)])
        assert store.last_event_id(I, 1) == 9


def test_stored_sources_far_apart_are_each_read_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _store(tmp_path) as store:
        history: list[ev.Event] = [started(), scheduled(2)]
        history += [timer(n) for n in range(3, 101)]
        store.append(I, 1, history)
        reads = _count_reads(monkeypatch)
        store.append(
            I, 1, [done(101, 2), ev.TimerFired(event_id=102, source_event_id=99, fire_at_ms=5)]
        )
        assert reads == [(2, 2), (99, 99)]
        with pytest.raises(HistoryRuleError, match=r"event 104\b.*names source event 99"):
            store.append(
                I, 1, [ev.TimerFired(event_id=103, source_event_id=3, fire_at_ms=5), done(104, 99)]
            )
