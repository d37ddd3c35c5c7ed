"""Workloads 2 and 3: read whole executions and decode them; the global feed.

Stores of V1 rows, V0 rows (the same events in the legacy shape) and a mix;
baselines, same run:
- raw sqlite3 fetch of the same rows plus a bare msgspec typed decode of
  their V1 form (the limit for what a reader must do), iterating the cursor;
- the same with fetchall() and a list comprehension, the fastest plain
  per-row code found (informative, so the limit is not flattered);
- the fastest read found: each execution's data concatenated by SQLite and
  decoded with one decode_lines call, checking nothing (informative; the
  ceiling row sets it against the peer);
- the `eventsourcing` library reading the same events back through its SQLite
  recorder (select_events) and its Mapper into its typed domain events, as
  eventstore reads typed events (the Python peer); informative, the same with
  each state decoded to plain dicts by its JSON transcoder; and the ceiling:
  the raw limit against the peer.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import msgspec

import eventstore
from eventstore.events import KnownEvent

from .common import (
    Result,
    fill_store,
    fresh_path,
    interleaved,
    interleaved_all,
)

PER_EXECUTION = 50
_V0_KEEP = {"event_id", "source_event_id", "name", "version", "input", "parent_instance",
            "parent_id", "result", "output"}  # fmt: skip


def _to_legacy(data: str) -> str:
    wire = json.loads(data)
    event_type = wire.pop("type")
    body = {k: v for k, v in wire.items() if k in _V0_KEEP}
    if event_type == "ActivityScheduled":
        body["execution_id"] = wire["execution_id"]
    return json.dumps({event_type: body}, separators=(",", ":"))


def _legacy_copy(source: str, target: str, every: int) -> None:
    """Copy a store, rewriting every `every`-th row (1: all) to the V0 shape."""
    eventstore.open(target).close()
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target, isolation_level=None)
    dst.execute("BEGIN")
    for n, (iid, xid, eid, etype, data) in enumerate(
        src.execute(
            "SELECT instance_id, execution_id, event_id, event_type, event_data"
            " FROM history ORDER BY rowid"
        )
    ):
        dst.execute(
            "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
            " VALUES (?,?,?,?,?)",
            (iid, xid, eid, etype, _to_legacy(data) if n % every == 0 else data),
        )
    dst.execute("COMMIT")
    src.close()
    dst.close()


def run(directory: Path, sizes: list[int], rounds: int) -> list[Result]:
    results = []
    typed = msgspec.json.Decoder(KnownEvent)
    for total in sizes:
        v1_path = fresh_path(directory, "read-v1.db")
        executions = fill_store(v1_path, total, PER_EXECUTION)
        instances = [f"order-{n:07d}" for n in range(executions)]
        v0_path = fresh_path(directory, "read-v0.db")
        _legacy_copy(v1_path, v0_path, 1)
        mixed_path = fresh_path(directory, "read-mixed.db")
        _legacy_copy(v1_path, mixed_path, 2)

        def raw(path: str = v1_path, instances: list[str] = instances) -> int:
            con = sqlite3.connect(path)
            count = 0
            for instance_id in instances:
                for (data,) in con.execute(
                    "SELECT event_data FROM history WHERE instance_id = ? AND execution_id = 1"
                    " ORDER BY event_id",
                    (instance_id,),
                ):
                    typed.decode(data)
                    count += 1
            con.close()
            return count

        def raw_fetchall(path: str = v1_path, instances: list[str] = instances) -> int:
            con = sqlite3.connect(path)
            query = (
                "SELECT event_data FROM history WHERE instance_id = ? AND execution_id = 1"
                " ORDER BY event_id"
            )
            decode = typed.decode
            count = 0
            for instance_id in instances:
                count += len([decode(d) for (d,) in con.execute(query, (instance_id,)).fetchall()])
            con.close()
            return count

        def raw_packed(path: str = v1_path, instances: list[str] = instances) -> int:
            # The fastest read found: the data only, concatenated by SQLite,
            # one decode_lines per execution, and no check of any column.
            con = sqlite3.connect(path)
            query = (
                "SELECT CAST(group_concat(event_data, '\n') AS BLOB) FROM history"
                " WHERE instance_id = ? AND execution_id = 1"
            )
            decode_lines = typed.decode_lines
            count = 0
            for instance_id in instances:
                ((data,),) = con.execute(query, (instance_id,)).fetchall()
                count += len(decode_lines(data))
            con.close()
            return count

        peers = _eventsourcing(directory, v1_path)
        for label, path, target in (("V1", v1_path, 0.9), ("V0", v0_path, None),
                                    ("mixed", mixed_path, None)):  # fmt: skip

            def ours(path: str = path, instances: list[str] = instances) -> int:
                count = 0
                with eventstore.open(path, readonly=True) as store:
                    for instance_id in instances:
                        count += len(store.read(instance_id, 1))
                return count

            if label != "V1":
                mine, limit = interleaved(ours, raw, rounds)
                results.append(
                    Result(f"read executions + decode, {label} rows", total, mine,
                           "raw sqlite3 + msgspec typed (V1)", limit, rounds=rounds)
                )  # fmt: skip
                continue
            works = [raw, raw_fetchall, raw_packed, ours, *(peers or ())]
            rates = dict(zip(works, interleaved_all(works, rounds), strict=True))
            mine = rates[ours]
            baselines: list[tuple[str, Callable[[], int], float | None]] = [
                ("raw sqlite3 + msgspec typed (V1)", raw, target),
                ("raw sqlite3 fetchall + msgspec typed", raw_fetchall, None),
                ("raw sqlite3 packed data + decode_lines, no checks", raw_packed, None),
            ]
            if peers is not None:
                baselines += [
                    ("eventsourcing 9 recorder + mapper", peers[0], None),
                    ("eventsourcing 9 recorder + transcoder to dicts", peers[1], None),
                ]
            for name, baseline, goal in baselines:
                results.append(
                    Result("read executions + decode, V1 rows", total, mine, name,
                           rates[baseline], target=goal, rounds=rounds)
                )  # fmt: skip
            if peers is not None:
                # What the fastest read found, with no checks at all, scores.
                results.append(
                    Result("read executions + decode, V1 rows: ceiling", total,
                           rates[raw_packed], "eventsourcing 9 recorder + mapper",
                           rates[peers[0]], rounds=rounds,
                           note="raw packed read without checks against the peer")
                )  # fmt: skip

        def feed(path: str = v1_path) -> int:
            with eventstore.open(path, readonly=True) as store:
                return sum(1 for _ in store.read_all())

        def raw_feed(path: str = v1_path) -> int:
            con = sqlite3.connect(path)
            count = 0
            for (data,) in con.execute("SELECT event_data FROM history ORDER BY rowid"):
                typed.decode(data)
                count += 1
            con.close()
            return count

        mine, limit = interleaved(feed, raw_feed, rounds)
        results.append(
            Result("global feed read_all, V1", total, mine, "raw sqlite3 scan + msgspec typed",
                   limit, rounds=rounds)
        )  # fmt: skip
    return results


def _eventsourcing(
    directory: Path, source: str
) -> tuple[Callable[[], int], Callable[[], int]] | None:
    """eventsourcing reading the same events back (None if it is not installed).

    Its database holds the events as it writes them: each V1 row of `source`
    mirrored as an eventsourcing domain event and stored through its Mapper.
    The peer reads each execution with select_events and turns every stored
    event into its domain event with the Mapper (typed, as eventstore's read
    is); informative, the same reads decoding the state to plain dicts with
    its JSON transcoder only.
    """
    try:
        from . import peer_eventsourcing as peer
    except ImportError:
        return None
    path = fresh_path(directory, "eventsourcing-read.db")
    datastore = peer.datastore(path)
    recorder = peer.SQLiteApplicationRecorder(datastore)
    recorder.create_table()
    to_stored = peer.mapper().to_stored_event
    originators = []
    with eventstore.open(source, readonly=True) as store:
        for instance_id in store.instances():
            events = store.read(instance_id, 1)
            recorder.insert_events(
                [to_stored(peer.mirrored(e, instance_id, e.timestamp_ms)) for e in events]
            )
            originators.append(peer.originator(instance_id))
    datastore.close()

    def typed() -> int:
        datastore = peer.datastore(path)  # opened per round, as eventstore is
        recorder = peer.SQLiteApplicationRecorder(datastore)
        to_domain = peer.mapper().to_domain_event
        count = 0
        for originator in originators:
            count += len([to_domain(e) for e in recorder.select_events(originator)])
        datastore.close()
        return count

    def dicts() -> int:
        datastore = peer.datastore(path)
        recorder = peer.SQLiteApplicationRecorder(datastore)
        decode = peer.mapper().transcoder.decode
        count = 0
        for originator in originators:
            count += len([decode(e.state) for e in recorder.select_events(originator)])
        datastore.close()
        return count

    return typed, dicts
