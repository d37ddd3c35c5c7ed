"""Conformance of a backend's lifecycle capabilities: the shard manifest, purges, archives.

`LifecycleConformance` is a mixin of test methods for a subclass of
`HistoryStoreConformance` (whose `store_factory` fixture it uses)::

    class TestMyBackend(HistoryStoreConformance, LifecycleConformance): ...

Every test builds executions on known UTC days, runs retention into
`self.tmp_path`, and checks what the table, the archives and `store.read()`
hold afterwards.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from .. import events as ev
from ..errors import ArchiveError, ArchiveMissingError, EventStoreError
from ..evolution.migrate import migrate, rollback
from ..evolution.prune import prune_runs
from ..lifecycle.archived import archived_export_rows, verify_archives
from ..lifecycle.census import census, shard_census
from ..lifecycle.manifest import shard_view
from ..lifecycle.retention import RetentionPolicy, run_retention
from ..samples import legacy_rows
from ..store import HistoryStore
from ._model import completed, scheduled

__all__ = ["DAY_MS", "FIRST_DAY_MS", "LifecycleConformance", "fill_days", "newer", "table_rows"]

DAY_MS = 86_400_000
FIRST_DAY_MS = 1_763_683_200_000
"""2025-11-21T00:00:00Z."""


def fill_days(
    store: HistoryStore, days: int, per_day: int, *, prefix: str = "i", executions: int = 1
) -> None:
    """`per_day` instances a day, each with `executions` executions (all but a
    day's last instance's final one completed, continued as new in between)."""
    for day in range(days):
        at = FIRST_DAY_MS + day * DAY_MS
        for n in range(per_day):
            instance = f"{prefix}-{day}-{n}"
            for execution in range(1, executions + 1):
                events: list[ev.Event] = [
                    ev.OrchestrationStarted(
                        event_id=1, name="Order", version="1.0.0", input="7", timestamp_ms=at
                    ),
                    scheduled(2),
                    completed(3, 2),
                ]
                running = n == per_day - 1 and execution == executions
                if execution < executions:
                    events.append(
                        ev.OrchestrationContinuedAsNew(event_id=4, input="8", timestamp_ms=at)
                    )
                elif not running:
                    events.append(ev.OrchestrationCompleted(event_id=4, output='"ok"'))
                store.append(instance, execution, events)


def newer(store: HistoryStore, instance_id: str = "newer", *, day: int = 0) -> None:
    """A running execution appended last (on `day`): the feed's newest row.

    Retention never retires the execution holding the newest row, so a test
    that means every terminal execution to go appends one of these last."""
    started = ev.OrchestrationStarted(
        event_id=1,
        name="Order",
        version="1.0.0",
        input="7",
        timestamp_ms=FIRST_DAY_MS + day * DAY_MS,
    )
    store.append(instance_id, 1, [started])


def table_rows(store: HistoryStore) -> dict[tuple[str, int, int], tuple[str, bytes]]:
    """Every stored row by key: (event_type, event_data as bytes)."""
    found = {}
    for page in store.scan():
        for r in page:
            data = r.event_data if isinstance(r.event_data, bytes) else r.event_data.encode()
            found[(str(r.instance_id), r.execution_id, r.event_id)] = (r.event_type, data)
    return found


def _archive_rows(store: HistoryStore) -> dict[tuple[str, int, int], tuple[str, bytes]]:
    found = {}
    for archive in store.lifecycle.archives():
        with gzip.open(archive.location, "rb") as f:  # a standard tool's reading
            for line in f:
                r: dict[str, Any] = json.loads(line)
                found[(r["instance_id"], r["execution_id"], r["event_id"])] = (
                    r["event_type"],
                    r["event_data"].encode(),
                )
    return found


class LifecycleConformance:
    """Retention, the shard manifest and reads that follow archives, on any backend."""

    tmp_path: Path

    def _policy(self, day: int, **kw: Any) -> RetentionPolicy:
        cut = dt.date(2025, 11, 21) + dt.timedelta(days=day)
        return RetentionPolicy(cut=cut, archive_dir=self.tmp_path / "archive", **kw)

    def test_retention_moves_terminal_executions_and_reads_follow(self, store_factory: Any) -> None:
        store: HistoryStore = store_factory()
        fill_days(store, 3, 4)
        before = table_rows(store)
        reads = {(i, e): store.read(i, e) for (i, e, _) in before}
        report = run_retention(store, self._policy(2))
        assert [s.shard for s in report.shards] == ["2025-11-21", "2025-11-22"]
        assert report.rows == report.purged_rows == 2 * 3 * 4
        after = table_rows(store)
        archived = _archive_rows(store)
        assert not set(after) & set(archived)
        assert {**after, **archived} == before
        for key, events in reads.items():
            assert store.read(*key) == events
        running = [i for (i, _, _) in after if i.startswith("i-0")]
        assert running and all(i == "i-0-3" for i in running)

    def test_archive_checksum_is_the_files_sha256(self, store_factory: Any) -> None:
        store: HistoryStore = store_factory()
        fill_days(store, 2, 3)
        run_retention(store, self._policy(1))
        (archive,) = store.lifecycle.archives()
        data = Path(archive.location).read_bytes()
        assert archive.state == "purged"
        assert hashlib.sha256(data).hexdigest() == archive.checksum
        sidecar = Path(archive.location + ".sha256").read_text()
        assert sidecar.split()[0] == archive.checksum

    def test_dry_run_writes_nothing(self, store_factory: Any) -> None:
        store: HistoryStore = store_factory()
        fill_days(store, 2, 3)
        before = table_rows(store)
        report = run_retention(store, self._policy(2, dry_run=True))
        assert report.rows == 2 * 2 * 4
        assert table_rows(store) == before
        assert not (self.tmp_path / "archive").exists()

    def test_keep_last_keeps_the_newest_executions_of_each_instance(
        self, store_factory: Any
    ) -> None:
        store: HistoryStore = store_factory()
        fill_days(store, 1, 2, executions=3)
        run_retention(store, self._policy(1, keep_last=2))
        kept = sorted({(i, e) for (i, e, _) in table_rows(store)})
        assert kept == [("i-0-0", 2), ("i-0-0", 3), ("i-0-1", 2), ("i-0-1", 3)]
        assert store.read("i-0-0", 1)[0].event_type == "OrchestrationStarted"

    def test_status_filter_and_root_shard(self, store_factory: Any) -> None:
        store: HistoryStore = store_factory()
        fill_days(store, 1, 2, executions=2)
        report = run_retention(store, self._policy(1, statuses=("continued_as_new",)))
        assert report.rows == 2 * 4
        assert {(i, e) for (i, e, _) in table_rows(store)} == {("i-0-0", 2), ("i-0-1", 2)}

    def test_a_missing_archive_is_an_error_naming_shard_and_location(
        self, store_factory: Any
    ) -> None:
        store: HistoryStore = store_factory()
        fill_days(store, 1, 2)
        run_retention(store, self._policy(1))
        (archive,) = store.lifecycle.archives()
        Path(archive.location).unlink()
        with pytest.raises(ArchiveMissingError) as caught:
            store.read("i-0-0", 1)
        assert caught.value.shard == "2025-11-21"
        assert archive.location in str(caught.value)

    def test_a_damaged_archive_is_an_error(self, store_factory: Any) -> None:
        store: HistoryStore = store_factory()
        fill_days(store, 1, 2)
        run_retention(store, self._policy(1))
        (archive,) = store.lifecycle.archives()
        path = Path(archive.location)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        with pytest.raises(ArchiveError, match="2025-11-21"):
            store.read("i-0-0", 1)

    def test_shards_manifest_records_states(self, store_factory: Any) -> None:
        store: HistoryStore = store_factory()
        fill_days(store, 3, 2)
        run_retention(store, self._policy(2))
        by_shard = {s["shard"]: s for s in shard_view(store)}
        assert by_shard["2025-11-21"]["state"] == "archived"  # its running one stays
        assert by_shard["2025-11-21"]["executions"] == by_shard["2025-11-21"]["running"] == 1
        assert by_shard["2025-11-21"]["archive_rows"] == 4
        assert by_shard["2025-11-23"]["state"] == "active"
        recorded = {s.shard: s for s in store.lifecycle.shards()}
        assert recorded["2025-11-22"].archive_checksum == by_shard["2025-11-22"]["archive_checksum"]

    def test_purge_keeps_an_execution_whose_rows_changed(self, store_factory: Any) -> None:
        store: HistoryStore = store_factory()
        fill_days(store, 1, 2)
        newer(store)  # the execution holding the newest row is never purged
        deleted = store.lifecycle.purge_executions([("i-0-0", 1, 3, None), ("i-0-1", 1, 3, None)])
        assert deleted == 3  # i-0-0 holds 4 rows, not 3: kept whole
        assert sorted({i for (i, _, _) in table_rows(store)}) == ["i-0-0", "newer"]

    def test_purge_keeps_the_execution_holding_the_newest_row(self, store_factory: Any) -> None:
        """SQLite gives a new row max(rowid) + 1: deleting the newest row
        would hand its position out again and a feed reader resuming after it
        would miss what comes next. Retention leaves that execution for a
        later run (and the purge refuses it where positions can repeat)."""
        store: HistoryStore = store_factory()
        fill_days(store, 1, 1)
        store.append("i-0-0", 1, [ev.OrchestrationCompleted(event_id=4, output='"ok"')])
        head = store.head_position()
        report = run_retention(store, self._policy(1))
        assert report.kept_newest == "i-0-0/1" and report.rows == 0
        newer(store)
        assert [r.instance_id for r in store.read_all(after=head)] == ["newer"]
        assert run_retention(store, self._policy(1)).purged_rows == 4

    def test_a_reused_id_is_not_purged_for_its_archived_copy(self, store_factory: Any) -> None:
        """A run finishing an interrupted purge meets an id purged and started
        again with as many rows: its last row's position is not the archived
        copy's, so the new execution stays whole."""
        store: HistoryStore = store_factory()
        fill_days(store, 1, 2)
        (last,) = [r.position for p in store.scan() for r in p if r.instance_id == "i-0-0"][-1:]
        if not last:
            pytest.skip("the table keeps no positions")
        assert store.lifecycle.purge_executions([("i-0-0", 1, 4, last + 1)]) == 0
        assert store.lifecycle.purge_executions([("i-0-0", 1, 4, last)]) == 4

    def test_census_shards_by_start_day(self, store_factory: Any) -> None:
        store: HistoryStore = store_factory()
        fill_days(store, 2, 1)
        assert [(c.instance_id, c.shard, c.status) for c in census(store)] == [
            ("i-0-0", "2025-11-21", "running"),
            ("i-1-0", "2025-11-22", "running"),
        ]

    def test_migrations_prune_drops_a_runs_originals(self, store_factory: Any) -> None:
        store: HistoryStore = store_factory()
        store.import_rows(legacy_rows())
        run = migrate(store, strategy="eager")
        assert run.run_id and run.changed
        dry = prune_runs(store, dry_run=True)
        assert dry.runs == [run.run_id] and dry.rows == run.changed
        report = prune_runs(store, archive=self.tmp_path / "kept")
        assert report.runs == [run.run_id] and report.rows >= run.changed
        assert store.evolution.archived_rows(run.run_id, ("", -1, -1), 10) == []
        assert store.evolution.migration_log(run.run_id) == []
        with pytest.raises(EventStoreError, match="originals are in"):
            rollback(store, run.run_id)
        with gzip.open(report.archives[run.run_id], "rt") as f:
            assert sum(1 for _ in f) == run.changed

    def test_retention_keeps_the_execution_catalog_true(self, store_factory: Any) -> None:
        store: HistoryStore = store_factory()
        fill_days(store, 2, 2)
        run_retention(store, self._policy(1))
        assert store.catalog_record("i-0-0", 1) is None  # archived and purged
        running = store.catalog_record("i-0-1", 1)
        assert running is not None and running.status == "running"
        assert list(store.catalog_mismatches()) == []
        assert {r.instance_id for r in store.catalog_executions()} == {"i-0-1", "i-1-0", "i-1-1"}

    def test_a_reused_execution_id_is_the_tables_never_the_archives(
        self, store_factory: Any
    ) -> None:
        """The rule for an id reused after a purge (a runtime restarting an
        instance by id): the table's rows are the execution; archived again,
        the newest copy is the one reads, export and verify follow."""
        store: HistoryStore = store_factory()
        fill_days(store, 1, 2)
        first_life = store.read("i-0-0", 1)
        run_retention(store, self._policy(1))
        assert store.read("i-0-0", 1) == first_life  # from the archive
        at = FIRST_DAY_MS + 3_600_000
        started = ev.OrchestrationStarted(
            event_id=1, name="Order", version="2.0.0", input="99", timestamp_ms=at
        )
        store.append("i-0-0", 1, [started, scheduled(2)])  # the id again: not refused
        second_life = store.read("i-0-0", 1)
        assert [e.event_id for e in second_life] == [1, 2]
        assert second_life != first_life[:2]
        assert store.read("i-0-0") == second_life
        assert store.executions("i-0-0", include_archived=True) == [1]
        assert not [r for r in archived_export_rows(store) if r["instance_id"] == "i-0-0"]

        store.append(
            "i-0-0", 1, [completed(3, 2), ev.OrchestrationCompleted(event_id=4, output='"again"')]
        )
        newer(store)  # so that i-0-0 no longer holds the newest row
        second_life = store.read("i-0-0", 1)
        report = run_retention(store, self._policy(1))
        assert report.purged_rows == 4  # archived again, and purged this time
        assert not [k for k in table_rows(store) if k[0] == "i-0-0"]
        assert store.read("i-0-0", 1) == second_life  # the newest archive
        exported = [r for r in archived_export_rows(store) if r["instance_id"] == "i-0-0"]
        assert sorted(r["event_id"] for r in exported) == [1, 2, 3, 4]
        assert '"2.0.0"' in exported[0]["event_data"]
        assert all(check.ok for check in verify_archives(store))
        assert list(store.catalog_mismatches()) == []
        assert run_retention(store, self._policy(1)).rows == 0  # nothing left to move

    def test_the_catalog_census_is_the_history_scans(self, store_factory: Any) -> None:
        """Retention and `shards` read the execution catalog where the store
        keeps one; it says what a scan of the history says, execution by
        execution (shard, status, start, rows, bytes, generations)."""
        store: HistoryStore = store_factory()
        fill_days(store, 2, 3, executions=2)
        store.import_rows(legacy_rows())  # legacy rows: root, generation V0
        cancelled = ev.OrchestrationFailed(
            event_id=2,
            details=ev.ApplicationError(
                kind=ev.Cancelled(reason="operator"), message="", retryable=False
            ),
        )
        started = ev.OrchestrationStarted(
            event_id=1, name="Order", version="1.0.0", input="7", timestamp_ms=FIRST_DAY_MS
        )
        store.append("cancelled", 1, [started, cancelled])
        assert store.lifecycle.has_catalog_census()
        scanned = list(census(store))
        from_catalog = list(shard_census(store))
        assert from_catalog == scanned
        assert {i.status for i in scanned} >= {"running", "completed", "failed", "continued_as_new"}
        assert {g for i in scanned for g in i.generations} == {"V0", "V1"}
        legacy = [r for r in scanned if r.shard == "root"]
        assert legacy and all(r.generations == {"V0"} for r in legacy)

    def test_catalog_catch_up_after_a_purge_of_its_position(self, store_factory: Any) -> None:
        """The row the catalog was caught up to may be purged (PostgreSQL's
        feed resumes only after a row it holds): catching up still works."""
        store: HistoryStore = store_factory()
        fill_days(store, 2, 2)
        store.append("i-0-1", 1, [ev.OrchestrationCompleted(event_id=4, output='"ok"')])
        store.catalog_catch_up()  # caught up to i-0-1's last row, the feed's newest
        store.append("i-1-1", 1, [ev.OrchestrationCompleted(event_id=4, output='"ok"')])
        assert run_retention(store, self._policy(1)).purged_rows == 8
        newer(store)
        assert store.catalog_catch_up() == 0  # the appends kept their own rows
        assert run_retention(store, self._policy(1)).rows == 0
        assert list(store.catalog_mismatches()) == []
