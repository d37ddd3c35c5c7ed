"""One append workload for instruction counts (run under callgrind).

    python -m benchmarks.append_work prepare SHAPE STORE [plain]
    python -m benchmarks.append_work SIDE SHAPE COUNT STORE

SHAPE:
  batch10      batches of ten events into executions of 100 (bench_append's
               batch-10 workload, its template events)
  new          the first turn of real-shaped executions (bench_real's "new
               executions": duroxide's own histories, replicated)
  continuing   their later turns, into a store holding the first turns
SIDE:
  ours         HistoryStore.append with expected_last_event_id, as the benchmarks call it
  raw          raw sqlite3: BEGIN IMMEDIATE, executemany of the pre-encoded rows, COMMIT

With APPEND_WORK_FRAMES=1 (outside callgrind) a run prints the pages it
wrote to the write-ahead log per append, checkpoints held off.

Both sides build the whole work list whatever COUNT is, so two runs that
differ only in COUNT differ only in the appends made;
`benchmarks/append_callgrind.py` divides the difference.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import msgspec

import eventstore
from eventstore import events as ev
from eventstore.codec import encode

from .bench_real import real_turns
from .common import drop_catalog, execution_events

_Work = list[tuple[tuple[str, int], list[ev.Event], int]]
_INSERT = (
    "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
    " VALUES (?, ?, ?, ?, ?)"
)
LIMIT = 1000
"""Appends in every work list (a run makes COUNT <= LIMIT of them)."""


def _batch10() -> _Work:
    template = execution_events(100)
    return [
        ((f"order-{n:07d}", 1), template[start : start + 10], start)
        for n in range(LIMIT // 10)
        for start in range(0, 100, 10)
    ]


def work_of(shape: str) -> tuple[_Work, _Work]:
    """(the work, what the store holds before it)."""
    if shape == "batch10":
        return _batch10(), []
    first, later = real_turns(12_000)
    return (first[:LIMIT], []) if shape == "new" else (later[:LIMIT], first)


def _filled(events: list[ev.Event], instance_id: str, execution_id: int) -> list[ev.Event]:
    return [
        msgspec.structs.replace(
            e, instance_id=instance_id, execution_id=execution_id,
            timestamp_ms=e.timestamp_ms or 1_795_000_000_000,
            duroxide_version=e.duroxide_version or "0.1.32",
        )
        for e in events
    ]  # fmt: skip


def prepare(shape: str, path: Path, keep_catalog: bool) -> None:
    _, prefill = work_of(shape)
    with eventstore.open(str(path)) as store:
        for (i, x), events, last in prefill:
            store.append(i, x, events, expected_last_event_id=last)
    if not keep_catalog:  # a store without the execution catalog: its cost, by difference
        drop_catalog(path)


def main() -> None:
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2], Path(sys.argv[3]), keep_catalog=sys.argv[4:] != ["plain"])
        return
    side, shape, count, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    work, _ = work_of(shape)
    frames = os.environ.get("APPEND_WORK_FRAMES") == "1"
    if side == "ours":
        with eventstore.open(path) as store:
            con = store.backend._con  # type: ignore[attr-defined]
            if frames:
                con.execute("PRAGMA wal_autocheckpoint = 0")
            append = store.append
            for (i, x), events, last in work[:count]:
                append(i, x, events, expected_last_event_id=last)
            if frames:
                _print_frames(con, path, count)
        return
    # Pre-encoded for the whole work list whatever COUNT is (as the benchmarks
    # encode outside their timing): only the inserts differ between two runs.
    rows = [
        [(i, x, e.event_id, e.event_type, encode(e).decode()) for e in _filled(events, i, x)]
        for (i, x), events, _ in work
    ][:count]
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    if frames:
        con.execute("PRAGMA wal_autocheckpoint = 0")
    for batch in rows:
        con.execute("BEGIN IMMEDIATE")
        con.executemany(_INSERT, batch)
        con.execute("COMMIT")
    if frames:
        _print_frames(con, path, count)
    con.close()


def _print_frames(con: sqlite3.Connection, path: str, appends: int) -> None:
    """Pages written to the write-ahead log per append (no checkpoint ran):
    what each commit costs beyond instructions, in write calls and bytes."""
    page = con.execute("PRAGMA page_size").fetchone()[0]
    size = os.path.getsize(f"{path}-wal")
    print(f"WAL frames per append: {(size - 32) / (page + 24) / appends:.2f}")


if __name__ == "__main__":
    main()
