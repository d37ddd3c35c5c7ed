"""Retention with an archive: old terminal executions out of the table, into files.

The order of one shard, each step durable before the next starts:

1. record the archive in the manifest as `writing` (its location);
2. write the shard's terminal executions before the cut (chosen from the
   execution catalog where the store keeps one, `census.shard_census`) to
   the archive (`store/archive_file.py`: gzip JSON lines, rows verbatim),
   indexing each
   execution (which gzip member) in short manifest transactions; fsync,
   rename into place;
3. verify the file against the checksum computed while writing (read back
   from disk, every member decompressed, the rows counted);
4. record the archive as `verified` with its row count and checksum;
5. only then delete the archived executions from the table, a bounded batch
   per transaction, each execution whole and only while it holds exactly
   the rows archived, its last row at the archived position (an id reused
   after a purge is another execution); then mark the archive `purged`.

Why a run killed anywhere is finished by running it again, with every row
read back exactly once: until step 4 commits, reads ignore the archive (they
follow it only for an execution whose rows are all gone from the table, and
none is deleted before step 5), and the next run forgets a `writing` archive
and deletes its file; after step 4, the next run verifies the file again and
completes step 5. A read sees an execution's rows in the table (delete not
committed) or in the verified archive (committed), never both and never
neither, because an execution is deleted whole in one transaction.

The run holds the store's run lock (no migration or backfill rewrites rows
between archiving and deleting them), and running executions always stay.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ..errors import ValidationError
from ..store import HistoryStore
from ..store.archive_file import ARCHIVE_SUFFIX, ArchiveWriter, verify_archive
from ..store.lifecycle import StoreLifecycle
from ..store.lifecycle_protocol import (
    ArchivedExecution,
    PurgeKey,
    ShardArchiveRow,
)
from ..store.shard_key import ROOT_SHARD
from .census import TERMINAL_STATUSES, ExecutionInfo, ShardTotals, shard_census
from .manifest import record_shards
from .partition import drop_purged_partitions
from .retention_report import RetentionReport, ShardOutcome
from .spill import SpilledKeys

__all__ = ["RetentionPolicy", "RetentionReport", "ShardOutcome", "run_retention"]

MEMBER_EXECUTIONS: Final = 64
"""Executions per gzip member: what `store.read()` of one decompresses."""
PURGE_ROWS: Final = 200
"""At most about this many rows deleted per transaction (the write-lock hold)."""
INDEX_BATCH: Final = 250
"""At most this many executions indexed per manifest transaction."""
HOLD_BUDGET_MS: Final = 10.0
"""What one retention write transaction should take, BEGIN to COMMIT: batches
shrink (down to one execution) while a transaction takes longer and grow back
while they take under half of it. On SQLite this is how long an appender may
wait for the write lock behind retention, so it sits well under the 50 ms
the issue allows: a loaded host stretches a few transactions several times."""
AUTO_THROTTLE: Final = 1.0
"""The default pacing where appenders run beside retention (PostgreSQL):
sleep as long as each step took, busy at most half the time (measured in
proposals/lifecycle.md)."""
PACE_SLICE_S: Final = HOLD_BUDGET_MS / 1000
"""Paced retention works for at least this long (steps added up: a census
row, an archive member, a purge batch) before each pause, so that it pauses
in slices of about the write budget rather than after every census row
(tens of thousands of sleeps of microseconds, each a wake-up that costs the
appenders' cores more than it leaves them)."""

Progress = Callable[[str, int | None], Callable[[int], object]]
"""progress(label, total) -> advance(n): how a caller shows progress."""


class WriteBudget:
    """The size of retention's write transactions, held to `HOLD_BUDGET_MS`
    where they hold a lock other writers wait for (SQLite).

    Each transaction's time from BEGIN to COMMIT is what another writer of
    a SQLite file may wait for the lock. PostgreSQL's appenders do not wait
    on retention's transactions: there the size stays at `ceiling` and no
    pause follows a transaction (see `held`). The
    size halves when a transaction overran the budget and grows by a quarter
    when one took under half of it, between one unit and `ceiling`. After
    each transaction retention pauses for `pause` times as long as it held
    the lock (at least `min_pause_s`): an appender of another process whose
    busy handler is sleeping then finds the lock free at its next try
    instead of retention's next transaction (SQLite's waiters poll; they do
    not queue), which is what bounds their wait, not the hold alone.
    """

    __slots__ = ("ceiling", "lifecycle", "longest_ms", "size")

    pause: Final = 1.0
    min_pause_s: Final = 0.002

    def __init__(self, lifecycle: StoreLifecycle, ceiling: int) -> None:
        self.lifecycle = lifecycle
        self.ceiling = ceiling
        self.size = ceiling
        self.longest_ms = 0.0

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Time one write transaction, adapt the size, then pause (where the
        backend's writes hold a lock other writers wait for)."""
        started = time.perf_counter()
        yield
        # The backend's own figure where it has one (SQLite: lock to commit,
        # without the wait for the lock or the checkpoint after a purge).
        seconds = self.lifecycle.last_write_seconds()
        if seconds is None:
            # No lock others wait for (PostgreSQL: retention's transactions
            # take none of the appenders' locks). Shrinking the batch would
            # only add commits, each costing the server more work per row
            # than the rows themselves: under load every transaction took
            # over the budget, batches fell to one execution and the purge
            # to 60 rows/s. The size stays; pacing (`_paced`) yields the CPU.
            held_ms = (time.perf_counter() - started) * 1000
            self.longest_ms = max(self.longest_ms, held_ms)
            return
        held_ms = seconds * 1000
        self.longest_ms = max(self.longest_ms, held_ms)
        if held_ms > HOLD_BUDGET_MS:
            self.size = max(1, self.size // 2)
        elif held_ms < HOLD_BUDGET_MS / 2:
            self.size = min(self.ceiling, self.size + max(1, self.size // 4))
        time.sleep(max(self.min_pause_s, seconds * self.pause))


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """What a run retires: terminal executions of shards before `cut` (a day)."""

    cut: dt.date
    archive_dir: Path
    statuses: tuple[str, ...] = TERMINAL_STATUSES
    keep_last: int = 0
    dry_run: bool = False
    throttle: float | None = None
    """Sleep this many times as long as each step took (0: full speed; 3:
    busy a quarter of the time), to leave a busy host to its appenders.
    None: `AUTO_THROTTLE` where appends run beside retention (PostgreSQL),
    else full speed."""

    def __post_init__(self) -> None:
        bad = [s for s in self.statuses if s not in TERMINAL_STATUSES]
        if bad:
            raise ValidationError(
                f"--status {', '.join(bad)}: retention takes only terminal statuses"
                f" ({', '.join(TERMINAL_STATUSES)})"
            )
        if self.keep_last < 0:
            raise ValidationError(f"keep_last must be 0 or more, not {self.keep_last}")
        if self.throttle is not None and not 0 <= self.throttle <= 100:
            raise ValidationError(f"throttle must be from 0 to 100, not {self.throttle}")

    def retires(self, info: ExecutionInfo) -> bool:
        return (
            info.shard != ROOT_SHARD
            and info.shard < self.cut.isoformat()
            and info.status in self.statuses
        )


def _no_progress(label: str, total: int | None) -> Callable[[int], object]:
    return lambda n: None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


class _Retention:
    def __init__(self, store: HistoryStore, policy: RetentionPolicy, progress: Progress) -> None:
        self.store = store
        self.lifecycle = store.lifecycle
        self.policy = policy
        self.progress = progress
        self.report = RetentionReport(policy.dry_run, policy.cut.isoformat())
        self.newest: tuple[str, int] | None = None
        self.throttle = policy.throttle
        if self.throttle is None:
            self.throttle = AUTO_THROTTLE if self.lifecycle.appends_run_beside else 0.0
        self.totals: dict[str, ShardTotals] = {}
        self.purges = WriteBudget(self.lifecycle, PURGE_ROWS)
        self.indexes = WriteBudget(self.lifecycle, INDEX_BATCH)

    def _paced(self, advance: Callable[[int], object]) -> Callable[[int], object]:
        """`advance`, sleeping `throttle` times as long as the steps took
        since the last pause, once they add up to `PACE_SLICE_S`."""
        factor = self.throttle
        if not factor:
            return advance
        mark = time.perf_counter()

        def paced(n: int) -> None:
            nonlocal mark
            advance(n)
            busy = time.perf_counter() - mark
            if busy >= PACE_SLICE_S:
                self.report.paused_seconds += busy * factor
                time.sleep(busy * factor)
                mark = time.perf_counter()

        return paced

    # -- the plan ------------------------------------------------------------

    def plan(self, spill: SpilledKeys) -> None:
        """One census pass: shard totals, and the keys to retire spilled by shard."""
        advance = self._paced(self.progress("census", self.store.count()))
        # The execution holding the feed's newest row stays for a later run.
        # SQLite gives a new row max(rowid) + 1: deleting the newest row
        # would hand its position out again, and a feed reader resuming
        # after it (the exporter, the catalog's catch-up, `tail`) would miss
        # every row written next. Once a newer row exists it goes like any
        # other. (PostgreSQL's identity never repeats; one rule for both.)
        # The purge statement refuses it too, where the deletion happens.
        head = self.store.read_last_raw(1)
        self.newest = (str(head[0].instance_id), int(head[0].execution_id)) if head else None
        instance: list[ExecutionInfo] = []
        infos = shard_census(self.store, catch_up=not self.policy.dry_run, progress=advance)
        for info in infos:
            self.totals.setdefault(info.shard, ShardTotals()).add(info)
            if instance and info.instance_id != instance[0].instance_id:
                self._choose(instance, spill)
                instance = []
            instance.append(info)
        if instance:
            self._choose(instance, spill)

    def _choose(self, executions: list[ExecutionInfo], spill: SpilledKeys) -> None:
        newest = sorted(executions, key=lambda e: e.execution_id, reverse=True)
        keep = self.policy.keep_last
        for rank, info in enumerate(newest):
            if info.shard == ROOT_SHARD:
                self.report.root_executions += 1
            if not self.policy.retires(info):
                self.report.kept_running += info.status == "running"
            elif rank < keep:
                self.report.kept_last += 1
            elif (info.instance_id, info.execution_id) == self.newest:
                self.report.kept_newest = f"{info.instance_id}/{info.execution_id}"
            else:
                spill.add(info.shard, info.instance_id, info.execution_id, info.rows)

    # -- one shard -----------------------------------------------------------

    def archive_shard(self, shard: str, keys: Iterator[tuple[str, int, int]], rows: int) -> None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        archive_id = f"{shard}.{stamp}"
        path = (self.policy.archive_dir / shard / (archive_id + ARCHIVE_SUFFIX)).resolve()
        record = ShardArchiveRow(archive_id, shard, "writing", str(path), 0, 0, "", _now())
        with self.lifecycle.writing() as w:
            w.save_archive(record)
        writer = ArchiveWriter(path)
        try:
            executions, written = self._write(writer, record, keys, rows)
        except BaseException:
            writer.abandon()
            raise
        count, checksum = writer.close()
        # Verify from disk before anything can be deleted (see the module).
        verify_archive(path, shard, checksum, count)
        verified = record._replace(
            state="verified", rows=count, executions=executions, checksum=checksum
        )
        with self.lifecycle.writing() as w:
            w.save_archive(verified)
        outcome = ShardOutcome(shard, executions, count, str(path), checksum)
        self.report.shards.append(outcome)
        self.purge(verified, outcome)
        totals = self.totals.get(shard)
        if totals is not None:
            totals.executions -= executions - outcome.kept_changed
            totals.rows -= outcome.purged_rows
            totals.bytes -= written if not outcome.kept_changed else 0

    def _write(
        self,
        writer: ArchiveWriter,
        record: ShardArchiveRow,
        keys: Iterator[tuple[str, int, int]],
        rows: int,
    ) -> tuple[int, int]:
        advance = self._paced(self.progress(f"archive {record.shard}", rows))
        index: list[ArchivedExecution] = []
        executions = written = 0
        for chunk in _chunks(keys, MEMBER_EXECUTIONS):
            stored = self.lifecycle.executions_rows([(k[0], k[1]) for k in chunk], record.shard)
            if not stored:
                continue
            offset = writer.add(stored)
            counts: dict[tuple[str, int], int] = {}
            last: dict[tuple[str, int], int] = {}
            for row in stored:
                key = (row.instance_id, row.execution_id)
                counts[key] = counts.get(key, 0) + 1
                last[key] = max(last.get(key, 0), row.position)
                written += len(row.event_data)
            # The last row's position goes with the count into the purge's
            # condition (0: a table without positions, not checked).
            index += [
                ArchivedExecution(
                    i, e, record.archive_id, record.shard, n, offset, last[(i, e)] or None
                )
                for (i, e), n in counts.items()
            ]
            executions += len(counts)
            advance(len(stored))
            while len(index) >= self.indexes.size:
                index = self._index(index)
        while index:
            index = self._index(index)
        return executions, written

    def _index(self, index: list[ArchivedExecution]) -> list[ArchivedExecution]:
        """Index up to a budget's worth of `index` in one transaction; the rest."""
        size = self.indexes.size
        with self.indexes.held(), self.lifecycle.writing() as w:
            w.index_archived(index[:size])
        self.report.longest_write_ms = max(self.report.longest_write_ms, self.indexes.longest_ms)
        return index[size:]

    def purge(self, archive: ShardArchiveRow, outcome: ShardOutcome) -> None:
        """Delete the archive's executions from the table, then mark it purged.

        On a table partitioned by shard, a day whose partition holds exactly
        this archive's rows (every execution of it retired) loses the whole
        partition instead: detached and dropped, no row deleted, so
        appenders do not compete with a row-by-row delete (see
        `ShardPartitions.drop_archived`). Anything else is deleted row by row."""
        advance = self._paced(self.progress(f"purge {archive.shard}", archive.rows))
        dropped = self.lifecycle.drop_archived_partition(
            archive.shard, archive.archive_id, archive.rows
        )
        if dropped is not None:
            outcome.purged_rows += dropped
            self.report.dropped_partitions.append(archive.shard)
            advance(archive.rows)
            with self.lifecycle.writing() as w:
                w.save_archive(archive._replace(state="purged"))
            return
        batch: list[PurgeKey] = []
        pending = 0
        for entry in self.lifecycle.archived_in(archive.archive_id):
            batch.append((entry.instance_id, entry.execution_id, entry.rows, entry.last_position))
            pending += entry.rows
            if pending >= self.purges.size:
                self._purge_batch(batch, pending, outcome, advance)
                batch, pending = [], 0
        self._purge_batch(batch, pending, outcome, advance)
        with self.lifecycle.writing() as w:
            w.save_archive(archive._replace(state="purged"))

    def _purge_batch(
        self,
        batch: list[PurgeKey],
        expected: int,
        outcome: ShardOutcome,
        advance: Callable[[int], object],
    ) -> None:
        if not batch:
            return
        with self.purges.held():
            deleted = self.lifecycle.purge_executions(batch)
        self.report.longest_purge_ms = max(self.report.longest_purge_ms, self.purges.longest_ms)
        self.report.longest_write_ms = max(self.report.longest_write_ms, self.purges.longest_ms)
        outcome.purged_rows += deleted
        if deleted != expected:
            outcome.kept_changed += sum(1 for k in batch if self._still_stored(k))
        advance(expected)

    def _still_stored(self, key: PurgeKey) -> bool:
        return bool(self.lifecycle.executions_rows([(key[0], key[1])]))

    # -- an interrupted run --------------------------------------------------

    def resume(self) -> None:
        """Finish what an interrupted run left (see the module docstring)."""
        for archive in self.lifecycle.archives():
            if archive.state == "writing":
                path = Path(archive.location)
                for leftover in (
                    path,
                    path.with_name(path.name + ".partial"),
                    path.with_name(path.name + ".sha256"),
                ):
                    with contextlib.suppress(FileNotFoundError):
                        leftover.unlink()
                with self.lifecycle.writing() as w:
                    w.forget_archive(archive.archive_id)
                self.report.resumed.append(f"{archive.archive_id}: forgotten (unverified)")
            elif archive.state == "verified":
                verify_archive(
                    Path(archive.location), archive.shard, archive.checksum, archive.rows
                )
                outcome = ShardOutcome(
                    archive.shard,
                    archive.executions,
                    archive.rows,
                    archive.location,
                    archive.checksum,
                )
                self.purge(archive, outcome)
                self.report.shards.append(outcome)
                self.report.resumed.append(f"{archive.archive_id}: purged")


def _chunks(
    keys: Iterator[tuple[str, int, int]], size: int
) -> Iterator[list[tuple[str, int, int]]]:
    chunk: list[tuple[str, int, int]] = []
    for key in keys:
        chunk.append(key)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run_retention(
    store: HistoryStore, policy: RetentionPolicy, *, progress: Progress = _no_progress
) -> RetentionReport:
    """Archive and delete what `policy` retires, shard by shard, oldest first."""
    job = _Retention(store, policy, progress)
    lock = contextlib.nullcontext() if policy.dry_run else store.evolution.run_lock("retention")
    spill = SpilledKeys()
    try:
        with lock:
            if not policy.dry_run:
                with store.lifecycle.writing() as w:
                    w.ensure_lifecycle_tables()
                job.resume()
            job.plan(spill)
            for shard in spill.shards():
                if policy.dry_run:
                    job.report.shards.append(
                        ShardOutcome(shard, spill.counts[shard], spill.rows[shard])
                    )
                    continue
                job.archive_shard(shard, spill.keys(shard), spill.rows[shard])
            if not policy.dry_run:
                record_shards(store, job.totals)
                job.report.dropped_partitions += drop_purged_partitions(
                    store, job.report.dropped_partitions
                )
    finally:
        spill.close()
    return job.report
