"""One workload of the real-shaped reads' instruction counts (run under callgrind).

    python -m benchmarks.read_work prepare DIRECTORY
    python -m benchmarks.read_work MODE COUNT DIRECTORY

MODE (COUNT executions for reads, COUNT events for the feed):
  read        `HistoryStore.read` of duroxide's executions, in duroxide's table
  read-v0     the same over their legacy (V0b) rewrite
  raw-read    raw sqlite3: each execution's data in event-id order, a typed decode
              per row (bench_real's baseline)
  feed        `read_all` of the first COUNT events of duroxide's table
  raw-feed    raw sqlite3: a plain scan in rowid order with the same typed decode

Prints the events done. `benchmarks/read_callgrind.py` runs two counts of each
mode and divides the difference by the difference of events, so start-up
cancels.
"""

from __future__ import annotations

import sqlite3
import sys
from itertools import islice
from pathlib import Path

import eventstore

from .bench_real import _TYPED, _fixture_rows, _keys, _replicated, _write

ROWS = 30_000
"""Rows per prepared store: more than any run reads."""

STORES = {"v1": "duroxide-0.1.32/history.jsonl", "v0": "legacy/v0b-history.jsonl"}


def prepare(directory: Path) -> None:
    for name, fixture in STORES.items():
        _write(str(directory / f"{name}.db"), _replicated(_fixture_rows(fixture), ROWS),
               duroxide_table=True)  # fmt: skip


def _executions(path: Path, count: int) -> list[tuple[str, int]]:
    con = sqlite3.connect(path)
    rows = con.execute("SELECT instance_id, execution_id FROM history ORDER BY rowid").fetchall()
    con.close()
    return _keys([(i, x, 0, "", "") for i, x in rows])[:count]


def run(mode: str, count: int, directory: Path) -> int:
    path = directory / ("v0.db" if mode == "read-v0" else "v1.db")
    if mode in ("read", "read-v0"):
        keys = _executions(path, count)
        with eventstore.open(str(path), readonly=True) as store:
            read = store.read
            return sum(len(read(i, x)) for i, x in keys)
    if mode == "raw-read":
        keys = _executions(path, count)
        con = sqlite3.connect(path)
        query = (
            "SELECT event_data FROM history WHERE instance_id = ? AND execution_id = ?"
            " ORDER BY event_id"
        )
        decode = _TYPED.decode
        done = sum(len([decode(d) for (d,) in con.execute(query, key)]) for key in keys)
        con.close()
        return done
    if mode == "feed":
        with eventstore.open(str(path), readonly=True) as store:
            return sum(1 for _ in store.read_all(limit=count))
    if mode == "raw-feed":
        con = sqlite3.connect(path)
        decode = _TYPED.decode
        rows = con.execute("SELECT event_data FROM history ORDER BY rowid")
        done = len([decode(d) for (d,) in islice(rows, count)])
        con.close()
        return done
    raise SystemExit(f"unknown mode {mode!r}")


def main() -> None:
    if sys.argv[1] == "prepare":
        prepare(Path(sys.argv[2]))
        return
    print(run(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])))


if __name__ == "__main__":
    main()
