"""Workloads 2 and 3: read whole executions and decode them; the global feed.

Stores of V1 rows, V0 rows (the same events in the legacy shape) and a mix;
baselines, same run:
- raw sqlite3 fetch of the same rows plus a bare msgspec typed decode of
  their V1 form (the limit for what a reader must do), iterating the cursor;
- the same with fetchall() and a list comprehension, the fastest plain
  per-row code found (informative, so the limit is not flattered);
- the `eventsourcing` library reading the same events back through its SQLite
  recorder (select_events) and decoding each event's state with its JSON
  transcoder: its path from a row to Python data (the Python peer).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

import msgspec

import eventstore
from eventstore.events import KnownEvent

from .common import (
    Result,
    eventsourcing_datastore,
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

        peer = _eventsourcing(directory, v1_path)
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
            works = [raw, raw_fetchall, ours] + ([peer] if peer is not None else [])
            rates = dict(zip(works, interleaved_all(works, rounds), strict=True))
            mine = rates[ours]
            for name, baseline, goal in (
                ("raw sqlite3 + msgspec typed (V1)", raw, target),
                ("raw sqlite3 fetchall + msgspec typed", raw_fetchall, None),
                ("eventsourcing 9 recorder + transcoder", peer, 10.0),
            ):
                if baseline in rates:
                    results.append(
                        Result("read executions + decode, V1 rows", total, mine, name,
                               rates[baseline], target=goal, rounds=rounds)
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


def _eventsourcing(directory: Path, source: str) -> Callable[[], int] | None:
    """eventsourcing reading the same events back (None if it is not installed):
    select_events per execution plus its JSON transcoder on each event."""
    try:
        from eventsourcing.persistence import JSONTranscoder, StoredEvent
        from eventsourcing.sqlite import SQLiteApplicationRecorder
    except ImportError:
        return None
    path = fresh_path(directory, "eventsourcing-read.db")
    datastore = eventsourcing_datastore(path)
    recorder = SQLiteApplicationRecorder(datastore)
    recorder.create_table()
    con = sqlite3.connect(source)
    by_instance: dict[str, list[StoredEvent]] = {}
    for instance_id, event_id, event_type, data in con.execute(
        "SELECT instance_id, event_id, event_type, event_data FROM history ORDER BY rowid"
    ):
        originator = uuid.uuid5(uuid.NAMESPACE_URL, instance_id)
        by_instance.setdefault(instance_id, []).append(
            StoredEvent(originator, event_id, event_type, data.encode())
        )
    con.close()
    for stored in by_instance.values():
        recorder.insert_events(stored)
    datastore.close()
    originators = [uuid.uuid5(uuid.NAMESPACE_URL, i) for i in by_instance]

    def peer() -> int:
        datastore = eventsourcing_datastore(path)  # opened per round, as eventstore is
        recorder = SQLiteApplicationRecorder(datastore)
        transcoder = JSONTranscoder()
        decode = transcoder.decode
        count = 0
        for originator in originators:
            count += len([decode(e.state) for e in recorder.select_events(originator)])
        datastore.close()
        return count

    return peer
