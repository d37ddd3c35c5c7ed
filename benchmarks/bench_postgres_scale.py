"""Concurrent writers and feed catch-up on PostgreSQL, against raw psycopg in the same run.

* writers: N processes (1, 4, 16, 64), each appending new 10-event
  executions (one append each, expected id 0) through its own store; against
  N processes doing the same multi-row INSERT of the same rows in their own
  transaction (BEGIN, INSERT, COMMIT) with psycopg, into an identical table
  (made by eventstore in another schema: same columns, indexes and defaults).
  Rate: all events over the wall time from the common start to the last
  writer's end. Interleaved runs, medians.
* CPU per event: the writers' own CPU time (user + system, from their start
  line to their end) plus the throwaway server's (every postgres process:
  the postmaster, the backends it reaped meanwhile and those still running,
  read from /proc before and after each run), over the events written;
  store ÷ raw. Unlike the wall-clock rate it barely moves when other
  programs load the machine, so it is the figure to compare under load.
  Not measured against `--url` (the server is not ours to read).
* feed: the whole store through `read_all` against a raw keyset scan of the
  same table in position order plus a typed msgspec decode of every row;
  two scans: of every column (the floor's first measure), and of only the
  columns a FeedRecord is made of (no created_at, which read_all never
  returns: the stricter baseline).
* hold: how long an event takes to reach a tailing reader, without and with
  another transaction held open (it has written, so it holds the horizon).

Durability: the server runs with PostgreSQL's defaults (fsync, synchronous
commit, full page writes), unless --fast.

Usage: python -m benchmarks.bench_postgres_scale [--writers 1,4,16,64] [--repeat 3] [--fast]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
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
_TICKS: int = os.sysconf("SC_CLK_TCK")
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


def _own_cpu() -> float:
    """This process's CPU seconds (user + system, every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _ticks(pid: int) -> tuple[int, int, int]:
    """(parent pid, own CPU ticks, reaped children's CPU ticks) from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def server_cpu(postmaster: int) -> float:
    """CPU seconds the server has spent so far: the postmaster, the backends
    it has reaped, and its live children (backends, WAL writer, checkpointer)."""
    live = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent, own, _ = _ticks(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
            live += own if parent == postmaster else 0
    _, own, reaped = _ticks(postmaster)
    return (own + reaped + live) / _TICKS


def postmaster_of(data: Path) -> int:
    """The server's postmaster pid (the first line of its data directory's postmaster.pid)."""
    return int((data / "postmaster.pid").read_text().split()[0])


def _store_writer(url: str, names: list[str], barriers: tuple[Barrier, Barrier], out: Any) -> None:
    work = [(name, execution(name)) for name in names]
    with eventstore.open(url, pool_min_size=1, pool_max_size=1) as store:
        store.append(f"warm-{names[0]}", 1, execution("warm"))
        barriers[0].wait()
        barriers[1].wait()
        started, cpu = time.monotonic(), _own_cpu()
        for name, events in work:
            store.append(name, 1, events, expected_last_event_id=0)
        out.put((started, time.monotonic(), _own_cpu() - cpu))


def _raw_writer(url: str, names: list[str], barriers: tuple[Barrier, Barrier], out: Any) -> None:
    work = [raw_rows(name) for name in names]
    with psycopg.connect(url, autocommit=True) as con, con.cursor() as cur:
        con.execute("SELECT 1")
        barriers[0].wait()
        barriers[1].wait()
        started, cpu = time.monotonic(), _own_cpu()
        for params in work:
            with con.transaction():
                cur.execute(_INSERT, params)
        out.put((started, time.monotonic(), _own_cpu() - cpu))


def run_writers(
    url: str, writers: int, prefix: str, *, raw: bool, postmaster: int | None
) -> tuple[float, float | None]:
    """Events per second of `writers` processes writing EXECUTIONS executions,
    and CPU microseconds per event (writers and server; None without the
    server's pid). Every writer is set up (connected, warmed) before the
    server's CPU is read and the start is given."""
    names = [f"{prefix}-{n}" for n in range(EXECUTIONS)]
    context = multiprocessing.get_context("fork")
    barriers = (context.Barrier(writers + 1), context.Barrier(writers + 1))
    out = context.Queue()
    target = _raw_writer if raw else _store_writer
    procs = [
        context.Process(target=target, args=(url, names[n::writers], barriers, out))
        for n in range(writers)
    ]
    for proc in procs:
        proc.start()
    barriers[0].wait(timeout=600)
    server_before = server_cpu(postmaster) if postmaster else 0.0
    barriers[1].wait(timeout=600)
    spans = [out.get(timeout=600) for _ in procs]
    server_after = server_cpu(postmaster) if postmaster else 0.0
    for proc in procs:
        proc.join()
    events = EXECUTIONS * 10
    rate = events / (max(s[1] for s in spans) - min(s[0] for s in spans))
    if not postmaster:
        return rate, None
    cpu = sum(s[2] for s in spans) + server_after - server_before
    return rate, cpu / events * 1e6


_RAW_COLUMNS = {
    "all columns": "instance_id, execution_id, event_id, event_type, event_data, created_at",
    "the record's columns": "instance_id, execution_id, event_id, event_type, event_data",
}
"""The raw scans: every column (as the floor was first measured), and only
the columns a FeedRecord is made of (`read_all` never returns created_at,
whose parse costs the first scan about a third of its client work)."""


def feed_rates(url: str) -> tuple[float, ...]:
    """(store read_all, then each raw keyset scan + typed decode) in events/s."""
    with eventstore.open(url) as store:
        started = time.perf_counter()
        count = sum(1 for _ in store.read_all())
        rates = [count / (time.perf_counter() - started)]
    with psycopg.connect(url, autocommit=True) as con:
        for columns in _RAW_COLUMNS.values():
            query = (
                f"SELECT eventstore_position, {columns} FROM public.history"
                " WHERE eventstore_position > %s ORDER BY eventstore_position LIMIT 1000"
            )
            started = time.perf_counter()
            total, after = 0, 0
            while True:
                page = con.execute(query, (after,)).fetchall()
                events = [_DECODER.decode(row[5]) for row in page]
                total += len(events)
                if len(page) < 1000:
                    break
                after = page[-1][0]
            rates.append(total / (time.perf_counter() - started))
    return tuple(rates)


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
        postmaster = None if args.url else postmaster_of(server.data)
        layout = {"partition_by_shard": not args.unpartitioned}
        eventstore.open(url, **layout).close()
        eventstore.open(url, schema="raw", **layout).close()
        print("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        measure(url, counts, args.repeat, postmaster)
        print("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


def measure(url: str, counts: list[int], repeat: int, postmaster: int | None = None) -> None:
    rates: dict[int, tuple[list[float], list[float]]] = {n: ([], []) for n in counts}
    cpus: dict[int, tuple[list[float], list[float]]] = {n: ([], []) for n in counts}
    for rep in range(repeat):
        for n in counts:
            order = (False, True) if rep % 2 == 0 else (True, False)
            for raw in order:
                prefix = f"r{rep}-w{n}-{'raw' if raw else 'es'}"
                rate, cpu = run_writers(url, n, prefix, raw=raw, postmaster=postmaster)
                rates[n][1 if raw else 0].append(rate)
                if cpu is not None:
                    cpus[n][1 if raw else 0].append(cpu)
    for n, (ours, theirs) in rates.items():
        a, b = statistics.median(ours), statistics.median(theirs)
        runs = ", ".join(f"{x / y:.2f}" for x, y in zip(ours, theirs, strict=True))
        print(
            f"{n:>3} writers  store {a:>9,.0f} ev/s  raw psycopg {b:>9,.0f} ev/s"
            f"  ratio {a / b:.2f}  (each run: {runs})"
        )
    for n, (ours, theirs) in cpus.items():
        if not ours:
            continue
        a, b = statistics.median(ours), statistics.median(theirs)
        runs = ", ".join(f"{x / y:.2f}" for x, y in zip(ours, theirs, strict=True))
        print(
            f"{n:>3} writers  CPU per event (writers + server)  store {a:>6.1f} us"
            f"  raw psycopg {b:>6.1f} us  store / raw {a / b:.2f}  (each run: {runs})"
        )
    feeds = [feed_rates(url) for _ in range(max(7, repeat))]
    store_rate = statistics.median(f[0] for f in feeds)
    for n, name in enumerate(_RAW_COLUMNS, start=1):
        raw_rate = statistics.median(f[n] for f in feeds)
        runs = ", ".join(f"{f[0] / f[n]:.2f}" for f in feeds)
        print(
            f"feed catch-up  store {store_rate:>9,.0f} ev/s  raw scan+decode of {name}"
            f" {raw_rate:>9,.0f} ev/s  ratio {store_rate / raw_rate:.2f}  (each run: {runs})"
        )
    for hold in (0.0, 1.0, 3.0):
        delay, held = feed_delay(url, hold)
        print(
            f"feed delay, a transaction open {hold:.0f} s: {delay * 1000:,.0f} ms"
            f" (held back meanwhile: {held})"
        )


if __name__ == "__main__":
    main()
