"""Workload 1: appending typed events on SQLite, in batches of 1, 10 and 100.

Baselines, same run, same machine, same table, pragmas and transaction size:
- raw sqlite3 inserting the same rows pre-encoded with executemany (the
  limit the targets are set against);
- raw sqlite3 inserting them with one multi-row INSERT per transaction, as
  eventstore itself does (informative: the stricter limit);
- the `eventsourcing` library's SQLite application recorder appending the same
  number of events, pre-serialized (the Python peer), when it is installed.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

import msgspec

import eventstore
from eventstore import events as ev
from eventstore.codec import encode

from .common import (
    Result,
    eventsourcing_datastore,
    execution_events,
    fresh_path,
    interleaved_all,
)

PER_EXECUTION = 100


def _batches(total: int, batch: int) -> list[tuple[str, list[ev.Event], int]]:
    template = execution_events(PER_EXECUTION)
    out = []
    for n in range(total // PER_EXECUTION):
        instance_id = f"order-{n:07d}"
        for start in range(0, PER_EXECUTION, batch):
            out.append((instance_id, template[start : start + batch], start))
    return out


def run(directory: Path, sizes: list[int], rounds: int) -> list[Result]:
    results = []
    for total in sizes:
        for batch in (1, 10, 100):
            if batch == 1 and total > 100_000:
                continue  # one transaction per event: 1M would take minutes, the trend is clear
            work = _batches(total, batch)
            # Pre-encoded rows for the raw baseline: what the store would write.
            filled = [
                (
                    instance_id,
                    [
                        (instance_id, 1, e.event_id, e.event_type, encode(
                            msgspec.structs.replace(
                                e, instance_id=instance_id, execution_id=1,
                                timestamp_ms=1_795_000_000_000, duroxide_version="0.1.32",
                            )
                        ).decode())
                        for e in events
                    ],
                )
                for instance_id, events, _ in work
            ]  # fmt: skip

            def ours(work: list[tuple[str, list[ev.Event], int]] = work, total: int = total) -> int:
                path = fresh_path(directory, "ours.db")
                with eventstore.open(path) as store:
                    append = store.append
                    for instance_id, events, last in work:
                        append(instance_id, 1, events, expected_last_event_id=last)
                return total

            def raw(
                filled: list[tuple[str, list[tuple[str, int, int, str, str]]]] = filled,
                total: int = total,
            ) -> int:
                path = fresh_path(directory, "raw.db")
                eventstore.open(path).close()  # the same table and indexes
                con = sqlite3.connect(path, isolation_level=None)
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("PRAGMA synchronous=NORMAL")
                insert = (
                    "INSERT INTO history"
                    " (instance_id, execution_id, event_id, event_type, event_data)"
                    " VALUES (?, ?, ?, ?, ?)"
                )
                for _, rows in filled:
                    con.execute("BEGIN IMMEDIATE")
                    con.executemany(insert, rows)
                    con.execute("COMMIT")
                con.close()
                return total

            def raw_multi(
                filled: list[tuple[str, list[tuple[str, int, int, str, str]]]] = filled,
                total: int = total,
            ) -> int:
                statements: dict[int, str] = {}
                path = fresh_path(directory, "raw-multi.db")
                eventstore.open(path).close()
                con = sqlite3.connect(path, isolation_level=None)
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("PRAGMA synchronous=NORMAL")
                for _, rows in filled:
                    sql = statements.get(len(rows))
                    if sql is None:
                        sql = statements[len(rows)] = (
                            "INSERT INTO history"
                            " (instance_id, execution_id, event_id, event_type, event_data)"
                            " VALUES " + ",".join(["(?, ?, ?, ?, ?)"] * len(rows))
                        )
                    con.execute("BEGIN IMMEDIATE")
                    con.execute(sql, [value for row in rows for value in row])
                    con.execute("COMMIT")
                con.close()
                return total

            works = [raw, ours]
            if batch in (10, 100):
                works.append(raw_multi)
            peer = _eventsourcing(directory, filled, total)
            if peer is not None:
                works.append(peer)
            rates = dict(zip(works, interleaved_all(works, rounds), strict=True))
            mine = rates[ours]
            results.append(
                Result(
                    f"append SQLite, batch {batch}",
                    total,
                    mine,
                    "raw sqlite3",
                    rates[raw],
                    target=0.8 if batch in (10, 100) else None,
                    rounds=rounds,
                )
            )
            if raw_multi in rates:
                results.append(
                    Result(f"append SQLite, batch {batch}", total, mine,
                           "raw sqlite3 multi-row INSERT", rates[raw_multi], rounds=rounds)
                )  # fmt: skip
            if peer is not None:
                results.append(
                    Result(f"append SQLite, batch {batch}", total, mine,
                           "eventsourcing 9 recorder", rates[peer], target=8.0, rounds=rounds)
                )  # fmt: skip
    return results


def _eventsourcing(
    directory: Path, filled: list[tuple[str, list[tuple[str, int, int, str, str]]]], total: int
) -> Callable[[], int] | None:
    """eventsourcing's recorder appending the same batches (None if not installed).

    Timed like eventstore: opening the database and creating the table count;
    building its StoredEvent objects (the serialized input) does not.
    """
    try:
        from eventsourcing.persistence import StoredEvent
        from eventsourcing.sqlite import SQLiteApplicationRecorder
    except ImportError:
        return None
    ids = {instance_id: uuid.uuid5(uuid.NAMESPACE_URL, instance_id) for instance_id, _ in filled}
    batches = [
        [
            StoredEvent(ids[instance_id], event_id, event_type, data.encode())
            for instance_id, _, event_id, event_type, data in rows
        ]
        for _, rows in filled
    ]

    def peer() -> int:
        datastore = eventsourcing_datastore(fresh_path(directory, "eventsourcing.db"))
        recorder = SQLiteApplicationRecorder(datastore)
        recorder.create_table()
        for stored in batches:
            recorder.insert_events(stored)
        datastore.close()
        return total

    return peer
