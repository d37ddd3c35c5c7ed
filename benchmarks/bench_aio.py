"""Workload: eventstore.aio, many tasks appending 10-event executions (group commit).

Baselines, same run, same machine, same table and pragmas, the same
synchronous setting on both sides:
- raw sqlite3 committing one transaction per 10-event batch (executemany of
  the rows pre-encoded): the one-commit-at-a-time limit group commit passes;
  64 tasks must reach 1.5x it at synchronous=normal and 3x at full;
- the sync store appending the same executions one after another: a single
  task must lose at most a tenth against it.

Append latency (each `await append` of each task, start to return) is
reported as p50 and p99 at 1, 8, 64 and 256 tasks, in each row's note and
`extra`. Timings stay here: tests assert no timing.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
from pathlib import Path

import msgspec

import eventstore
import eventstore.aio
from eventstore.codec import encode

from .common import Result, execution_events, fresh_path, interleaved_all

PER_EXECUTION = 10
TASKS = (1, 8, 64, 256)
_TEMPLATE = execution_events(PER_EXECUTION)


def _rows(executions: int) -> list[list[tuple[str, int, int, str, str]]]:
    """Each execution's rows, stamped and encoded as the store would write them."""
    out = []
    for n in range(executions):
        instance_id = f"order-{n:07d}"
        out.append([
            (instance_id, 1, e.event_id, e.event_type, encode(msgspec.structs.replace(
                e, instance_id=instance_id, execution_id=1,
                timestamp_ms=1_795_000_000_000, duroxide_version="0.1.32",
            )).decode())
            for e in _TEMPLATE
        ])  # fmt: skip
    return out


def _raw(path: str, batches: list[list[tuple[str, int, int, str, str]]], sync: str) -> int:
    eventstore.open(path).close()  # the same table and indexes
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(f"PRAGMA synchronous={sync}")
    insert = (
        "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
        " VALUES (?,?,?,?,?)"
    )
    for rows in batches:
        con.execute("BEGIN IMMEDIATE")
        con.executemany(insert, rows)
        con.execute("COMMIT")
    con.close()
    return sum(map(len, batches))


def _sync_store(path: str, executions: int, sync: str) -> int:
    with eventstore.open(path, synchronous=sync) as store:
        append = store.append
        for n in range(executions):
            append(f"order-{n:07d}", 1, _TEMPLATE, expected_last_event_id=0)
    return executions * PER_EXECUTION


async def _tasks(path: str, executions: int, tasks: int, sync: str, latencies: list[float]) -> int:
    async with await eventstore.aio.open(path, synchronous=sync) as store:
        append = store.append
        clock = time.perf_counter

        async def worker(first: int) -> None:
            for n in range(first, executions, tasks):
                started = clock()
                await append(f"order-{n:07d}", 1, _TEMPLATE, expected_last_event_id=0)
                latencies.append(clock() - started)

        await asyncio.gather(*(worker(k) for k in range(tasks)))
    return executions * PER_EXECUTION


def _percentiles(latencies: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"p50_us": round(cuts[49] * 1e6, 1), "p99_us": round(cuts[98] * 1e6, 1)}


def _measure(
    directory: Path, total: int, sync: str, rounds: int, tasks: int
) -> tuple[float, float, float, dict[str, float]]:
    """(ours, raw, sync store) rates and our latency percentiles, rounds interleaved."""
    executions = total // PER_EXECUTION
    batches = _rows(executions)
    latencies: list[float] = []

    def ours() -> int:
        latencies.clear()
        return asyncio.run(
            _tasks(fresh_path(directory, "aio.db"), executions, tasks, sync, latencies)
        )

    def raw() -> int:
        return _raw(fresh_path(directory, "raw.db"), batches, sync)

    def plain() -> int:
        return _sync_store(fresh_path(directory, "sync.db"), executions, sync)

    works = [ours, raw, plain] if tasks == 1 else [ours, raw]  # the sync store: 1 task only
    rates = interleaved_all(works, rounds)
    sync_rate = rates[2] if tasks == 1 else float("nan")
    return rates[0], rates[1], sync_rate, _percentiles(latencies)


def run(directory: Path, sizes: list[int], rounds: int) -> list[Result]:
    results = []
    for sync, floor in (("normal", 1.5), ("full", 3.0)):
        for total in sizes:
            if total > 100_000 or (sync == "full" and total > 10_000):
                continue  # one fsync per raw commit: 100k at full takes most of a minute
            for tasks in TASKS:
                ours, raw, plain, latency = _measure(directory, total, sync, rounds, tasks)
                note = f"p50 {latency['p50_us']} us, p99 {latency['p99_us']} us"
                extra = {"tasks": tasks, "synchronous": sync, **latency}
                name = f"aio append, {tasks} tasks, synchronous={sync}"
                target = floor if tasks == 64 else None
                results.append(Result(
                    name, total, ours, "raw sqlite3, a transaction per batch", raw,
                    target=target, note=note, rounds=rounds, extra=extra,
                ))  # fmt: skip
                if tasks == 1:
                    results.append(Result(
                        f"aio append, 1 task vs sync store, synchronous={sync}", total, ours,
                        "sync store", plain, target=0.9, note=note, rounds=rounds, extra=extra,
                    ))  # fmt: skip
                print(f"   {name} @ {total:,}: {note}", flush=True)
    return results
