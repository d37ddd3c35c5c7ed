"""Workload: histories shaped like real ones.

The executions duroxide itself wrote (tests/fixtures/duroxide-0.1.32: 26
executions of 4 to 12 events, about 6 on average), replicated under new
instance ids until the store holds the run's size, in a table duroxide
created (its own database file) and in one eventstore created. The legacy
rewrites of the same histories (tests/fixtures/legacy) make the V0 and mixed
stores.

Baselines, same run, same data, alternating rounds:
- reads: raw sqlite3 selecting each execution's data in event-id order and
  decoding every row with a bare msgspec typed decode of its V1 form;
- the feed: a raw scan of the table in rowid order with the same decode;
- appends: raw sqlite3 inserting the same rows, pre-encoded, with
  executemany, one transaction per append, the same pragmas.

Appends are split into turns as a runtime writes them: a turn ends where a
completion (a result the runtime waits for) arrives, results arriving
together make one turn, and the first turn of an execution holds at least
three events. "New" appends are every execution's
first turn (`expected_last_event_id=0`); "continuing" ones are the later
turns, round by round across the executions, into a store holding the first.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

import eventstore
from eventstore import events as ev
from eventstore.codec.decoders import _dec_hook
from eventstore.events import KnownEvent

from .common import FIXTURES, Result, fresh_path

_Row = tuple[str, int, int, str, str]
_INSERT = (
    "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
    " VALUES (?, ?, ?, ?, ?)"
)
# The bare typed decode a reader must do at least; ErrorDetails (the
# failures' externally tagged enum) takes the codec's hook, as in any reader.
_TYPED = msgspec.json.Decoder(KnownEvent, dec_hook=_dec_hook)


def _fixture_rows(name: str) -> list[_Row]:
    rows = []
    with open(FIXTURES / name, encoding="utf-8") as handle:
        for line in handle:
            r = json.loads(line)
            rows.append(
                (
                    r["instance_id"],
                    r["execution_id"],
                    r["event_id"],
                    r["event_type"],
                    r["event_data"],
                )
            )
    return rows


def _replicated(rows: list[_Row], size: int) -> list[_Row]:
    """The rows copied under new instance ids (`<id>~<n>`) until `size` rows."""
    out: list[_Row] = []
    copy = 0
    while len(out) < size:
        for i, x, e, t, d in rows:
            new = f"{i}~{copy}"
            out.append((new, x, e, t, d.replace(f'"instance_id":"{i}"', f'"instance_id":"{new}"')))
        copy += 1
    return out


def _write(path: str, rows: list[_Row], *, duroxide_table: bool) -> None:
    if duroxide_table:
        shutil.copyfile(FIXTURES / "duroxide-0.1.32" / "runtime.db", path)
        Path(path).chmod(0o644)
    else:
        eventstore.open(path).close()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("BEGIN")
    con.execute("DELETE FROM history")
    con.executemany(_INSERT, rows)
    con.execute("COMMIT")
    con.close()


def _keys(rows: list[_Row]) -> list[tuple[str, int]]:
    return list(dict.fromkeys((r[0], r[1]) for r in rows))


def _alternate(works: list[Callable[[], int]], rounds: int) -> list[float]:
    rates: list[list[float]] = [[] for _ in works]
    for _ in range(rounds):
        for work, out in zip(works, rates, strict=True):
            started = time.perf_counter()
            done = work()
            out.append(done / (time.perf_counter() - started))
    return [sorted(r)[len(r) // 2] for r in rates]


def _reads(directory: Path, size: int, rounds: int) -> list[Result]:
    v1 = _replicated(_fixture_rows("duroxide-0.1.32/history.jsonl"), size)
    v0 = _replicated(_fixture_rows("legacy/v0b-history.jsonl"), size)
    mixed = _replicated(_fixture_rows("legacy/mixed-history.jsonl"), size)
    stores = {}
    for label, rows, duroxide_table in (
        ("V1, duroxide's table", v1, True),
        ("V1, eventstore's table", v1, False),
        ("V0", v0, True),
        ("mixed", mixed, True),
    ):
        path = fresh_path(directory, f"real-{len(stores)}.db")
        _write(path, rows, duroxide_table=duroxide_table)
        stores[label] = (path, _keys(rows))
    raw_path, raw_keys = stores["V1, duroxide's table"]

    def raw() -> int:
        con = sqlite3.connect(raw_path)
        query = (
            "SELECT event_data FROM history WHERE instance_id = ? AND execution_id = ?"
            " ORDER BY event_id"
        )
        decode = _TYPED.decode
        count = 0
        for key in raw_keys:
            count += len([decode(d) for (d,) in con.execute(query, key)])
        con.close()
        return count

    def raw_feed() -> int:
        con = sqlite3.connect(raw_path)
        decode = _TYPED.decode
        count = len(
            [decode(d) for (d,) in con.execute("SELECT event_data FROM history ORDER BY rowid")]
        )
        con.close()
        return count

    results = []
    targets = {"V1, duroxide's table": 0.9, "V1, eventstore's table": 0.9, "V0": 0.7}
    for label, (path, keys) in stores.items():

        def ours(path: str = path, keys: list[tuple[str, int]] = keys) -> int:
            with eventstore.open(path, readonly=True) as store:
                read = store.read
                return sum(len(read(i, x)) for i, x in keys)

        mine, limit = _alternate([ours, raw], rounds)
        results.append(
            Result(f"real-shaped read, {label}", size, mine, "raw sqlite3 + msgspec typed (V1)",
                   limit, target=targets.get(label), rounds=rounds)
        )  # fmt: skip

    def feed() -> int:
        with eventstore.open(raw_path, readonly=True) as store:
            return sum(1 for _ in store.read_all())

    mine, limit = _alternate([feed, raw_feed], rounds)
    results.append(
        Result("real-shaped feed read_all, V1", size, mine, "raw sqlite3 scan + msgspec typed",
               limit, target=0.8, rounds=rounds)
    )  # fmt: skip
    return results


def _turns(events: list[ev.Event]) -> list[list[ev.Event]]:
    turns: list[list[ev.Event]] = [[]]
    previous = ""
    for event in events:
        arrives = event.event_type in ev.COMPLETION_SOURCES
        if arrives and previous not in ev.COMPLETION_SOURCES and len(turns[0]) >= 3:
            turns.append([])  # results that arrive together make one turn
        turns[-1].append(event)
        previous = event.event_type
    return turns


_Work = list[tuple[tuple[str, int], list[ev.Event], int]]


def real_turns(size: int) -> tuple[_Work, _Work]:
    """The replicated fixture's executions as the runtime appends them: each
    execution's first turn (new executions), then every later turn, after the
    turn before it (continuing executions)."""
    rows = _replicated(_fixture_rows("duroxide-0.1.32/history.jsonl"), size)
    by_execution: dict[tuple[str, int], list[ev.Event]] = {}
    for i, x, _, _, data in rows:
        by_execution.setdefault((i, x), []).append(eventstore.codec.decode(data.encode()))
    turns = {key: _turns(events) for key, events in by_execution.items()}
    first: _Work = [(key, t[0], 0) for key, t in turns.items()]
    later: _Work = []
    for depth in range(1, max(map(len, turns.values()))):
        for key, t in turns.items():
            if depth < len(t):
                later.append((key, t[depth], t[depth - 1][-1].event_id))
    return first, later


def _appends(directory: Path, size: int, rounds: int) -> list[Result]:
    first, later = real_turns(size)
    results = []
    for label, work, prefill in (("new executions", first, []), ("continuing", later, first)):
        results.append(_append_pair(directory, label, work, prefill, rounds))
    return results


def _append_pair(directory: Path, label: str, work: _Work, prefill: _Work, rounds: int) -> Result:
    template = fresh_path(directory, "real-append-template.db")
    with eventstore.open(template) as store:
        for (i, x), events, last in prefill:
            store.append(i, x, events, expected_last_event_id=last)
    encoded = [
        [(i, x, e.event_id, e.event_type, eventstore.codec.encode(e).decode()) for e in events]
        for (i, x), events, _ in work
    ]
    total = sum(map(len, encoded))
    ours_rates: list[float] = []
    raw_rates: list[float] = []
    for _ in range(rounds):
        path = fresh_path(directory, "real-append.db")
        shutil.copyfile(template, path)
        started = time.perf_counter()
        with eventstore.open(path) as store:
            append = store.append
            for (i, x), events, last in work:
                append(i, x, events, expected_last_event_id=last)
        ours_rates.append(total / (time.perf_counter() - started))
        path = fresh_path(directory, "real-append.db")
        shutil.copyfile(template, path)
        started = time.perf_counter()
        con = sqlite3.connect(path, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        for batch in encoded:
            con.execute("BEGIN IMMEDIATE")
            con.executemany(_INSERT, batch)
            con.execute("COMMIT")
        con.close()
        raw_rates.append(total / (time.perf_counter() - started))
    mid = rounds // 2
    return Result(f"real-shaped append, {label}", total, sorted(ours_rates)[mid],
                  "raw sqlite3 executemany, pre-encoded", sorted(raw_rates)[mid], target=0.85,
                  rounds=rounds, note=f"{len(work):,} appends")  # fmt: skip


def run(directory: Path, sizes: list[int], rounds: int) -> list[Result]:
    results = []
    for size in sizes:
        results += _reads(directory, size, rounds)
        results += _appends(directory, size, rounds)
    return results
