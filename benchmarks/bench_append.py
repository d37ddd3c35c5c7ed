"""Workload 1: appending typed events on SQLite, in batches of 1, 10 and 100.

Baselines, same run, same machine, same table, pragmas and transaction size:
- raw sqlite3 inserting the same rows pre-encoded with executemany (the
  limit the targets are set against);
- raw sqlite3 inserting them with one multi-row INSERT per transaction, as
  eventstore itself does (informative: the stricter limit);
- the `eventsourcing` library appending the same events from its own typed
  domain events through its Mapper and SQLite recorder (the Python peer),
  when it is installed; its recorder fed pre-serialized events (informative);
  and the ceiling: raw sqlite3 against the peer, the ratio a store with no
  cost above the database would reach.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import msgspec

import eventstore
from eventstore import events as ev
from eventstore.codec import encode

from .common import (
    Result,
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

            works: list[Callable[[], int]] = [raw, ours]
            if batch in (10, 100):
                works.append(raw_multi)
            peers = _eventsourcing(directory, work, filled, total)
            if peers is not None:
                works.extend(peers)
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
            if peers is not None:
                typed, serialized = peers
                results += [
                    Result(f"append SQLite, batch {batch}", total, mine,
                           "eventsourcing 9 mapper + recorder", rates[typed],
                           rounds=rounds),
                    Result(f"append SQLite, batch {batch}", total, mine,
                           "eventsourcing 9 recorder, pre-serialized", rates[serialized],
                           rounds=rounds),
                    # What a store with no cost above the database would score.
                    Result(f"append SQLite, batch {batch}: ceiling", total, rates[raw],
                           "eventsourcing 9 mapper + recorder", rates[typed], rounds=rounds,
                           note="raw sqlite3 (the limit) against the peer"),
                ]  # fmt: skip
    return results


def _eventsourcing(
    directory: Path,
    work: list[tuple[str, list[ev.Event], int]],
    filled: list[tuple[str, list[tuple[str, int, int, str, str]]]],
    total: int,
) -> tuple[Callable[[], int], Callable[[], int]] | None:
    """eventsourcing appending the same batches (None if not installed): from
    its typed domain events through its Mapper, and (informative) its
    recorder alone, fed pre-serialized StoredEvents.

    Timed like eventstore: opening the database and creating the table count;
    building the input (domain events, or StoredEvents) does not.
    """
    try:
        from . import peer_eventsourcing as peer
    except ImportError:
        return None
    typed = [
        [peer.mirrored(e, instance_id, 1_795_000_000_000) for e in events]
        for instance_id, events, _ in work
    ]
    serialized = [
        [
            peer.StoredEvent(peer.originator(instance_id), event_id, event_type, data.encode())
            for instance_id, _, event_id, event_type, data in rows
        ]
        for _, rows in filled
    ]

    def through_mapper() -> int:
        datastore = peer.datastore(fresh_path(directory, "eventsourcing.db"))
        recorder = peer.SQLiteApplicationRecorder(datastore)
        recorder.create_table()
        to_stored = peer.mapper().to_stored_event
        for events in typed:
            recorder.insert_events([to_stored(e) for e in events])
        datastore.close()
        return total

    def recorder_only() -> int:
        datastore = peer.datastore(fresh_path(directory, "eventsourcing-pre.db"))
        recorder = peer.SQLiteApplicationRecorder(datastore)
        recorder.create_table()
        for stored in serialized:
            recorder.insert_events(stored)
        datastore.close()
        return total

    return through_mapper, recorder_only
