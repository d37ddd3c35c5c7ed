"""Concurrent writers and feed catch-up on PostgreSQL, against raw psycopg in the same run.

* writers: N processes (1, 4, 16, 64), each appending new 10-event
  executions (one append each, expected id 0) through its own store; against
  N processes doing the same multi-row INSERT of the same rows in their own
  transaction (BEGIN, INSERT, COMMIT) with psycopg, into an identical table
  (made by eventstore in another schema: same columns, indexes and defaults).
  Rate: all events over the wall time from the common start to the last
  writer's end. Interleaved runs, medians.
* feed: the whole store through `read_all` against a raw keyset scan of the
  same table in position order plus a typed msgspec decode of every row.
* hold: how long an event takes to reach a tailing reader, without and with
  another transaction held open (it has written, so it holds the horizon).

Durability: the server runs with PostgreSQL's defaults (fsync, synchronous
commit, full page writes), unless --fast.

Usage: python -m benchmarks.bench_postgres_scale [--writers 1,4,16,64] [--repeat 3] [--fast]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import threading
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import msgspec
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import eventstore
from eventstore import events as ev
from eventstore.codec import encode

EXECUTIONS = 1280
"""New executions per run (each 10 events), split among the writers."""

_DECODER: Any = msgspec.json.Decoder(ev.KnownEvent)
_INSERT = (
    "INSERT INTO raw.history (instance_id, execution_id, event_id, event_type, event_data,"
    " created_at) VALUES " + ", ".join(["(%s, %s, %s, %s, %s, now())"] * 10)
)


def execution(instance_id: str) -> list[ev.Event]:
    """A real-shaped execution: started, then activities scheduled and completed."""
    events: list[ev.Event] = [
        ev.OrchestrationStarted(event_id=1, name="Bench", version="1.0.0", input='"in"')
    ]
    for n in range(2, 11):
        if n % 2 == 0:
            events.append(ev.ActivityScheduled(event_id=n, name="Work", input=f'"{n}"'))
        else:
            events.append(ev.ActivityCompleted(event_id=n, source_event_id=n - 1, result='"r"'))
    return events


def raw_rows(instance_id: str) -> list[object]:
    """The parameters of the raw INSERT: the rows the store would write."""
    params: list[object] = []
    for event in execution(instance_id):
        filled = msgspec.structs.replace(
            event,
            instance_id=instance_id,
            execution_id=1,
            timestamp_ms=1_700_000_000_000,
            duroxide_version="0.1.0",
        )
        params += (instance_id, 1, event.event_id, event.event_type, encode(filled).decode())
    return params


def _store_writer(url: str, names: list[str], barrier: Barrier, out: Any) -> None:
    work = [(name, execution(name)) for name in names]
    with eventstore.open(url, pool_min_size=1, pool_max_size=1) as store:
        store.append(f"warm-{names[0]}", 1, execution("warm"))
        barrier.wait()
        started = time.monotonic()
        for name, events in work:
            store.append(name, 1, events, expected_last_event_id=0)
        out.put((started, time.monotonic()))


def _raw_writer(url: str, names: list[str], barrier: Barrier, out: Any) -> None:
    work = [raw_rows(name) for name in names]
    with psycopg.connect(url, autocommit=True) as con, con.cursor() as cur:
        con.execute("SELECT 1")
        barrier.wait()
        started = time.monotonic()
        for params in work:
            with con.transaction():
                cur.execute(_INSERT, params)
        out.put((started, time.monotonic()))


def run_writers(url: str, writers: int, prefix: str, *, raw: bool) -> float:
    """Events per second of `writers` processes writing EXECUTIONS executions."""
    names = [f"{prefix}-{n}" for n in range(EXECUTIONS)]
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(writers)
    out = context.Queue()
    target = _raw_writer if raw else _store_writer
    procs = [
        context.Process(target=target, args=(url, names[n::writers], barrier, out))
        for n in range(writers)
    ]
    for proc in procs:
        proc.start()
    spans = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    return EXECUTIONS * 10 / (max(s[1] for s in spans) - min(s[0] for s in spans))


def feed_rates(url: str) -> tuple[float, float]:
    """(store read_all, raw keyset scan + typed decode) in events/s."""
    with eventstore.open(url) as store:
        started = time.perf_counter()
        count = sum(1 for _ in store.read_all())
        ours = count / (time.perf_counter() - started)
    query = (
        "SELECT eventstore_position, instance_id, execution_id, event_id, event_type,"
        " event_data, created_at FROM public.history WHERE eventstore_position > %s"
        " ORDER BY eventstore_position LIMIT 1000"
    )
    with psycopg.connect(url, autocommit=True) as con:
        started = time.perf_counter()
        total, after = 0, 0
        while True:
            page = con.execute(query, (after,)).fetchall()
            events = [_DECODER.decode(row[5]) for row in page]
            total += len(events)
            if len(page) < 1000:
                break
            after = page[-1][0]
        theirs = total / (time.perf_counter() - started)
    return ours, theirs


def feed_delay(url: str, hold: float) -> tuple[float, int]:
    """Seconds from an append's return to a tailing reader having it, while
    another transaction that has written stays open `hold` seconds (0: none);
    and how many committed events the reader's store reported held back."""
    with eventstore.open(url) as writer, eventstore.open(url) as reader:
        last = list(reader.read_all())[-1:]
        after = last[0].position if last else 0
        blocker = psycopg.connect(url)
        blocker.execute("SELECT pg_current_xact_id()")  # a write transaction, left open
        if not hold:
            blocker.rollback()
        timer = threading.Timer(hold, blocker.rollback) if hold else None
        if timer is not None:
            timer.start()
        writer.append(f"tail-{time.monotonic_ns()}", 1, execution("tail"))
        appended = time.monotonic()
        held = reader.backend.held_back()[0]  # type: ignore[attr-defined]
        while not reader.wait_for_events(after, 30.0):
            pass
        assert list(reader.read_all(after=after))
        delay = time.monotonic() - appended
        if timer is not None:
            timer.join()
        blocker.close()
    return delay, int(held)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", help="an empty database (default: a throwaway server)")
    parser.add_argument("--writers", default="1,4,16,64")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fast", action="store_true", help="fsync off (the test server's)")
    parser.add_argument(
        "--unpartitioned",
        action="store_true",
        help="unpartitioned tables (appends in one call; partitioned ones take the plain route)",
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.writers.split(",")]
    from tests.postgres_server import running_server

    durable = {} if args.fast else {"fsync": "on", "full_page_writes": "on"}
    with running_server(settings=durable) as server:
        url = args.url or server.create_database()
        layout = {"partition_by_shard": not args.unpartitioned}
        eventstore.open(url, **layout).close()
        eventstore.open(url, schema="raw", **layout).close()
        measure(url, counts, args.repeat)


def measure(url: str, counts: list[int], repeat: int) -> None:
    rates: dict[int, tuple[list[float], list[float]]] = {n: ([], []) for n in counts}
    for rep in range(repeat):
        for n in counts:
            order = (False, True) if rep % 2 == 0 else (True, False)
            for raw in order:
                rate = run_writers(url, n, f"r{rep}-w{n}-{'raw' if raw else 'es'}", raw=raw)
                rates[n][1 if raw else 0].append(rate)
    for n, (ours, theirs) in rates.items():
        a, b = statistics.median(ours), statistics.median(theirs)
        runs = ", ".join(f"{x / y:.2f}" for x, y in zip(ours, theirs, strict=True))
        print(
            f"{n:>3} writers  store {a:>9,.0f} ev/s  raw psycopg {b:>9,.0f} ev/s"
            f"  ratio {a / b:.2f}  (each run: {runs})"
        )
    feeds = [feed_rates(url) for _ in range(max(7, repeat))]
    a, b = statistics.median(f[0] for f in feeds), statistics.median(f[1] for f in feeds)
    runs = ", ".join(f"{x / y:.2f}" for x, y in feeds)
    print(
        f"feed catch-up  store {a:>9,.0f} ev/s  raw scan+decode {b:>9,.0f} ev/s"
        f"  ratio {a / b:.2f}  (each run: {runs})"
    )
    for hold in (0.0, 1.0, 3.0):
        delay, held = feed_delay(url, hold)
        print(
            f"feed delay, a transaction open {hold:.0f} s: {delay * 1000:,.0f} ms"
            f" (held back meanwhile: {held})"
        )


if __name__ == "__main__":
    main()
