"""The PostgreSQL history table partitioned by day shard (`partition_by_shard=True`).

The conformance suites run on a partitioned store in test_store_conformance.py;
this file checks what only partitions have: where rows land, a purged day's
partition dropped by retention (also when retention is SIGKILLed and run
again), root executions moved by `shards rebase`, two processes making the
same day's partition at once, and an existing table keeping its shape.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

import eventstore
from eventstore import events as ev
from eventstore.errors import TargetError
from eventstore.evolution.migrate import backfill_timestamps, migrate
from eventstore.lifecycle import retention
from eventstore.lifecycle.census import shard_census
from eventstore.lifecycle.retention import (
    AUTO_THROTTLE,
    PACE_SLICE_S,
    RetentionPolicy,
    WriteBudget,
    run_retention,
)
from eventstore.lifecycle.shards import rebase_shards
from eventstore.store import HistoryStore
from eventstore.testing.lifecycle_conformance import DAY_MS, FIRST_DAY_MS, fill_days, newer
from tests.conftest import V0B_JSONL
from tests.test_migrate_crash import ROOT, run_cli
from tests.test_retention_crash import holdings, reads, run_child

pytestmark = pytest.mark.postgres

DAY0, DAY1, DAY2 = "2025-11-21", "2025-11-22", "2025-11-23"


def partitions(target: str) -> dict[str, str]:
    """partition table -> its bound, as the catalog says (attached ones only)."""
    with psycopg.connect(target) as con:
        rows = con.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'public.history'::regclass"
        ).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def shard_of_rows(target: str) -> dict[tuple[str, int], set[str]]:
    with psycopg.connect(target) as con:
        rows = con.execute(
            "SELECT instance_id, execution_id, tableoid::regclass::text FROM history"
        ).fetchall()
    found: dict[tuple[str, int], set[str]] = {}
    for instance, execution, table in rows:
        found.setdefault((instance, execution), set()).add(table)
    return found


def complete_running(store: HistoryStore, days: int, per_day: int) -> None:
    """fill_days leaves each day's last instance running: complete those,
    then start one on the day after (retention leaves the execution holding
    the newest row for a later run)."""
    done = ev.OrchestrationCompleted(event_id=4, output='"ok"')
    for day in range(days):
        store.append(f"i-{day}-{per_day - 1}", 1, [done])
    newer(store, day=days)


@pytest.fixture
def target(postgres_target_factory: object) -> str:
    url = str(postgres_target_factory())  # type: ignore[operator]
    eventstore.open(url, partition_by_shard=True).close()
    return url


def test_rows_land_in_their_day_partition(target: str) -> None:
    with eventstore.open(target) as store:
        fill_days(store, 2, 3)
        # An append to a stored execution goes where its first rows are.
        store.append("i-0-2", 1, [ev.OrchestrationCompleted(event_id=4, output='"ok"')])
    assert partitions(target) == {
        "history_root": "FOR VALUES IN ('root')",
        "history_2025_11_21": f"FOR VALUES IN ('{DAY0}')",
        "history_2025_11_22": f"FOR VALUES IN ('{DAY1}')",
    }
    placed = shard_of_rows(target)
    assert placed[("i-0-2", 1)] == {"history_2025_11_21"}  # every row of it, event 4 too
    assert placed[("i-1-0", 1)] == {"history_2025_11_22"}
    shown = run_cli("shards", target, "--json")
    assert json.loads(shown.stdout)["partitioned_by_shard"] is True


def test_an_existing_table_keeps_its_shape(postgres_target_factory: object) -> None:
    url = str(postgres_target_factory())  # type: ignore[operator]
    with eventstore.open(url, partition_by_shard=False) as store:
        fill_days(store, 1, 2)
    with eventstore.open(url, partition_by_shard=True) as store:
        fill_days(store, 2, 2, prefix="j")
        assert not store.lifecycle.partitioned
    assert partitions(url) == {}
    shown = run_cli("shards", url, "--json")
    assert json.loads(shown.stdout)["partitioned_by_shard"] is False


def test_the_option_is_checked(postgres_target_factory: object) -> None:
    url = str(postgres_target_factory())  # type: ignore[operator]
    with pytest.raises(TargetError, match="partition_by_shard must be True or False"):
        eventstore.open(url, partition_by_shard="yes")  # type: ignore[arg-type]
    with pytest.raises(TargetError, match="unknown option 'partition_by_shard'"):
        eventstore.open(":memory:", partition_by_shard=True)  # type: ignore[arg-type]


def test_retention_drops_a_purged_days_partition(target: str, tmp_path: Path) -> None:
    with eventstore.open(target) as store:
        fill_days(store, 3, 4)
        complete_running(store, 2, 4)
        before = {(i, e): store.read(i, e) for i in store.instances() for e in store.executions(i)}
        report = run_retention(store, RetentionPolicy(dt.date(2025, 11, 23), tmp_path / "a"))
        assert report.dropped_partitions == [DAY0, DAY1]
        assert {s.shard: s.state for s in store.lifecycle.shards()} == {
            DAY0: "purged",
            DAY1: "purged",
            DAY2: "active",
        }
        assert {key: store.read(*key) for key in before} == before  # from the archives
        # A later append to a live day, and a run with nothing to do, change nothing.
        store.append("i-2-3", 1, [ev.OrchestrationCompleted(event_id=4, output='"ok"')])
        assert run_retention(store, RetentionPolicy(dt.date(2025, 11, 23), tmp_path / "a"))
    assert set(partitions(target)) == {"history_root", "history_2025_11_23"}


def test_a_day_with_a_running_execution_keeps_its_partition(target: str, tmp_path: Path) -> None:
    with eventstore.open(target) as store:
        fill_days(store, 2, 3)  # each day's last instance is running
        report = run_retention(store, RetentionPolicy(dt.date(2025, 11, 23), tmp_path / "a"))
        assert report.dropped_partitions == []
    assert "history_2025_11_21" in partitions(target)


_MAKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import eventstore
    from eventstore import events as ev
    target, name, go = sys.argv[1:4]
    with eventstore.open(target) as store:
        while not Path(go).exists():
            time.sleep(0.001)
        started = ev.OrchestrationStarted(
            event_id=1, name="N", version="1", input="1", timestamp_ms=int(sys.argv[4])
        )
        store.append(name, 1, [started])
    print("appended")
    """
)


def test_two_processes_making_the_same_day_both_succeed(target: str, tmp_path: Path) -> None:
    for round_ in range(3):  # a new day each round: both race to make it
        go = tmp_path / f"go-{round_}"
        at = str(FIRST_DAY_MS + (10 + round_) * DAY_MS)
        children = [
            subprocess.Popen(
                [sys.executable, "-c", _MAKER, target, f"w{n}-{round_}", str(go), at],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(2)
        ]
        go.touch()
        results = [child.communicate(timeout=120) for child in children]
        for child, (out, err) in zip(children, results, strict=True):
            assert child.returncode == 0 and out.strip() == "appended", err
    made = partitions(target)
    assert {"history_2025_12_01", "history_2025_12_02", "history_2025_12_03"} <= set(made)
    with eventstore.open(target) as store:
        assert len(store.instances()) == 6


def test_retention_killed_anywhere_drops_the_partitions_when_run_again(
    target: str, tmp_path: Path
) -> None:
    archive = str(tmp_path / "archive")
    with eventstore.open(target) as store:
        fill_days(store, 3, 12)
        complete_running(store, 2, 12)
        original = holdings(store)
        executions = {(k[0], k[1]) for k in original}
        before = reads(store, executions)
    killed = 0
    for ticks, delay in [(1, 0.0), (4, 0.0), (9, 0.0), (14, 0.0), (0, 0.8), (0, 1.2)]:
        child = run_child("retention", target, archive, str(ticks), str(delay))
        assert child.returncode in (-9, 2), child.stderr
        killed += child.returncode == -9
        with eventstore.open(target) as store:
            assert holdings(store) == original
            assert reads(store, executions) == before
    assert killed >= 3, "the kills should land before the run ends"
    done = run_cli("retention", target, "--before", DAY2, "--archive", archive, "--json")
    assert done.returncode == 0, done.stderr
    assert set(partitions(target)) == {"history_root", "history_2025_11_23"}
    with eventstore.open(target) as store:
        assert holdings(store) == original
        assert reads(store, executions) == before


def test_a_detach_left_pending_is_finalized(target: str, tmp_path: Path) -> None:
    """A kill inside DETACH ... CONCURRENTLY leaves the partition pending:
    the next run finishes the detach and drops it."""
    with eventstore.open(target) as store:
        fill_days(store, 2, 2)
        complete_running(store, 1, 2)
        run_retention(store, RetentionPolicy(dt.date(2025, 11, 22), tmp_path / "a"))
        late = ev.OrchestrationStarted(
            event_id=1, name="N", version="1", input="1", timestamp_ms=FIRST_DAY_MS
        )
        store.append("late", 1, [late])
    with psycopg.connect(target, autocommit=True) as con:  # the day made again, then
        assert "history_2025_11_21" in partitions(target)
        con.execute("DELETE FROM history WHERE instance_id = 'late'")
        # what an interrupted DETACH CONCURRENTLY leaves (its second transaction killed)
        con.execute("SET lock_timeout = '200ms'")
        blocker = psycopg.connect(target)
        blocker.execute("SELECT 1 FROM history LIMIT 1")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            con.execute("ALTER TABLE history DETACH PARTITION history_2025_11_21 CONCURRENTLY")
        blocker.rollback()
        blocker.close()
        pending = con.execute(
            "SELECT inhdetachpending FROM pg_inherits WHERE inhrelid ="
            " 'history_2025_11_21'::regclass"
        ).fetchone()
        assert pending == (True,)
    with eventstore.open(target) as store:
        report = run_retention(store, RetentionPolicy(dt.date(2025, 11, 22), tmp_path / "a"))
    assert DAY0 in report.dropped_partitions
    with psycopg.connect(target) as con:
        gone = con.execute("SELECT to_regclass('history_2025_11_21')").fetchone()
    assert gone == (None,)


def test_rebase_moves_root_executions_into_their_day(target: str) -> None:
    with eventstore.open(target) as store:
        store.import_rows(
            [json.loads(line) for line in V0B_JSONL.read_text().splitlines() if line.strip()]
        )
        assert all(t == {"history_root"} for t in shard_of_rows(target).values())
        migrate(store)
        backfill_timestamps(store)
        feed = [(r.position, r.instance_id, r.event.event_id) for r in store.read_all()]
        rebase_shards(store)
        days = {s.shard for s in store.lifecycle.shards()}
        placed = shard_of_rows(target)
        assert {t for tables in placed.values() for t in tables} == {
            "history_" + day.replace("-", "_") for day in days
        }
        assert all(len(tables) == 1 for tables in placed.values())
        # The rows moved keep their positions and transaction ids: the feed is unchanged.
        assert [(r.position, r.instance_id, r.event.event_id) for r in store.read_all()] == feed


def test_a_day_retired_whole_loses_its_partition_without_row_deletes(
    target: str, tmp_path: Path
) -> None:
    """Every execution of the day archived: the partition is detached and
    dropped (no DELETE reaches it), the catalog forgets those executions, and
    reads follow the archive."""
    with eventstore.open(target) as store:
        fill_days(store, 2, 4)
        complete_running(store, 1, 4)
        before = {(f"i-0-{n}", 1): store.read(f"i-0-{n}", 1) for n in range(4)}
    with psycopg.connect(target, autocommit=True) as con:
        deletes_before = con.execute(
            "SELECT n_tup_del FROM pg_stat_user_tables WHERE relname = 'history_2025_11_21'"
        ).fetchone()
    assert deletes_before == (0,)
    with eventstore.open(target) as store:
        report = run_retention(store, RetentionPolicy(dt.date(2025, 11, 22), tmp_path / "a"))
        assert report.dropped_partitions == [DAY0]
        assert report.purged_rows == report.rows == sum(len(e) for e in before.values())
        assert {key: store.read(*key) for key in before} == before
        assert list(store.catalog_mismatches()) == []
        assert [r.instance_id for r in store.catalog_executions(shard=DAY0)] == []
        assert {s.shard: s.state for s in store.lifecycle.shards()}[DAY0] == "purged"
    assert "history_2025_11_21" not in partitions(target)


def test_a_day_with_a_late_execution_keeps_it(target: str, tmp_path: Path) -> None:
    """An execution of the day that arrives after archiving stays: the
    partition is not dropped, the archived executions are deleted row by row."""
    with eventstore.open(target) as store:
        fill_days(store, 2, 3)
        complete_running(store, 1, 3)
        late = ev.OrchestrationStarted(
            event_id=1, name="N", version="1", input="1", timestamp_ms=FIRST_DAY_MS + 5
        )
        # An execution started that day, but still running: retention keeps it.
        store.append("late", 1, [late])
        report = run_retention(store, RetentionPolicy(dt.date(2025, 11, 22), tmp_path / "a"))
        assert report.dropped_partitions == []
        assert report.purged_rows == report.rows > 0
        assert [e.event_id for e in store.read("late", 1)] == [1]
    assert shard_of_rows(target)[("late", 1)] == {"history_2025_11_21"}


def test_a_detached_table_holding_rows_is_attached_again_by_a_maker(target: str) -> None:
    """A table left detached (retention killed between detach and drop) is
    never replaced by a maker of that day: it is attached again, rows kept."""
    with eventstore.open(target) as store:
        fill_days(store, 1, 2)
        before = store.read("i-0-0", 1)
    with psycopg.connect(target, autocommit=True) as con:
        con.execute("ALTER TABLE history DETACH PARTITION history_2025_11_21")
    with eventstore.open(target) as store:  # a fresh process: no partition known
        assert store.executions("i-0-0") == []
        started = ev.OrchestrationStarted(
            event_id=1, name="N", version="1", input="1", timestamp_ms=FIRST_DAY_MS + 9
        )
        store.append("new-on-that-day", 1, [started])
        assert store.read("i-0-0", 1) == before
    assert "history_2025_11_21" in partitions(target)


_STALE_APPENDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import eventstore
    from eventstore import events as ev
    target, ready, go, at = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])

    def execution(name):
        started = ev.OrchestrationStarted(
            event_id=1, name="N", version="1", input="1", timestamp_ms=at
        )
        return [started, ev.OrchestrationCompleted(event_id=2, output='"ok"')]

    with eventstore.open(target) as store:
        answers = []  # what each one-flight attempt answered (the real call runs)
        real = store.backend.append_in_one_flight
        store.backend.append_in_one_flight = lambda a: answers.append(real(a)) or answers[-1]
        store.append("first", 1, execution("first"))  # this process makes the day
        ready.touch()
        while not go.exists():
            time.sleep(0.01)
        # Another process dropped the day meanwhile: this process's knowledge
        # is stale. The one-flight call finds no partition and declines; the
        # plain route makes the day again; the next one flies.
        store.append("second", 1, execution("second"))
        store.append("third", 1, execution("third"))
        print(len(store.read("second", 1)), answers)
    """
)


def test_an_append_to_a_day_another_process_dropped_makes_it_again(
    target: str, tmp_path: Path
) -> None:
    ready, go = tmp_path / "ready", tmp_path / "go"
    child = subprocess.Popen(
        [sys.executable, "-c", _STALE_APPENDER, target, str(ready), str(go), str(FIRST_DAY_MS)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(3000):
            if ready.exists() or child.poll() is not None:
                break
            time.sleep(0.01)
        assert ready.exists(), child.communicate()[1]
        with eventstore.open(target) as store:
            newer(store, day=1)  # "first" no longer holds the newest row
            report = run_retention(store, RetentionPolicy(dt.date(2025, 11, 22), tmp_path / "a"))
            assert report.dropped_partitions == [DAY0]
        assert "history_2025_11_21" not in partitions(target)
        go.touch()
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()  # reaped, its pipes closed
    assert child.returncode == 0, err
    assert out.strip() == "2 [True, False, True]"
    placed = shard_of_rows(target)
    assert placed[("second", 1)] == placed[("third", 1)] == {"history_2025_11_21"}
    with eventstore.open(target) as store:
        assert len(store.read("first", 1)) == 2  # from the archive


def test_the_census_is_the_catalog_as_it_was_when_it_began(target: str) -> None:
    """Executions appended while the census pages through the catalog (keys
    after its cursor) are not in it: appenders creating executions faster
    than the census read them kept it going without end."""
    with eventstore.open(target) as store:
        fill_days(store, 2, 3)
        before = {(r.instance_id, r.execution_id) for r in store.catalog_executions()}
        pages = store.lifecycle.catalog_census(page=1)
        assert pages is not None
        seen = [next(pages)]
        for n in range(3):
            newer(store, f"zz-during-{n}", day=5)
        fill_days(store, 1, 2, prefix="zz-old-day")  # an old day, keys after the cursor
        seen += list(pages)
        assert {(r.instance_id, r.execution_id) for r in seen} == before
        assert len(seen) == len(before)
        # The next census sees them.
        again = store.lifecycle.catalog_census(page=2)
        assert again is not None
        assert len(list(again)) == len(before) + 5


class _Clock:
    """A clock for the retention module alone: each reading `step` seconds
    later, every sleep recorded (and not slept)."""

    def __init__(self, step: float = 0.001) -> None:
        self.step = step
        self.now = 0.0
        self.sleeps: list[float] = []

    def perf_counter(self) -> float:
        self.now += self.step
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def test_default_pacing_pauses_in_slices(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL retention paces itself by default: it pauses as long as
    it worked, once its steps add up to a slice, never after every census
    row; what it paused is in the report."""
    clock = _Clock()
    monkeypatch.setattr(retention, "time", clock)
    with eventstore.open(target) as store:
        fill_days(store, 3, 20)
        newer(store, day=5)
        report = run_retention(store, RetentionPolicy(dt.date(2025, 11, 24), tmp_path / "a"))
    assert report.purged_rows == 3 * 19 * 4
    budget = [s for s in clock.sleeps if s == WriteBudget.min_pause_s]
    paced = [s for s in clock.sleeps if s != WriteBudget.min_pause_s]
    assert paced and all(s >= PACE_SLICE_S * AUTO_THROTTLE for s in paced)
    assert report.paused_seconds == pytest.approx(sum(paced))
    assert len(paced) < 3 * 20  # not one pause per census row
    assert not budget  # no pause after each write transaction: nothing waits for them


def test_write_batches_keep_their_size_where_nothing_waits_for_them(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retention's transactions take none of the appenders' locks on
    PostgreSQL: one that took longer than the SQLite hold budget keeps its
    batch size (smaller batches would only add commits) and is not followed
    by a pause."""
    clock = _Clock(step=0.02)  # every transaction takes 20 ms
    monkeypatch.setattr(retention, "time", clock)
    with eventstore.open(target) as store:
        budget = WriteBudget(store.lifecycle, 200)
        for _ in range(3):
            with budget.held():
                pass
    assert budget.size == 200
    assert budget.longest_ms > retention.HOLD_BUDGET_MS
    assert clock.sleeps == []


def test_the_census_finds_rows_still_in_root_of_an_execution_with_a_day(
    target: str, tmp_path: Path
) -> None:
    """After backfill-timestamps the catalog names each execution's day while
    its rows are still in root until a rebase: the census (whose reads name
    the catalog's shard and root) still finds every one."""
    with eventstore.open(target) as store:
        store.import_rows(
            [json.loads(line) for line in V0B_JSONL.read_text().splitlines() if line.strip()]
        )
        migrate(store)
        backfill_timestamps(store)
        assert all(t == {"history_root"} for t in shard_of_rows(target).values())
        found = {(i.instance_id, i.execution_id): i.shard for i in shard_census(store)}
        assert set(found) == set(shard_of_rows(target))
        assert "root" not in found.values()
        # Retention reads them for the archive the same way (their day, and root).
        rows = store.count()
        report = run_retention(store, RetentionPolicy(dt.date(2100, 1, 1), tmp_path / "a"))
        assert report.rows > 0 and report.purged_rows == report.rows
        assert store.count() == rows - report.rows
