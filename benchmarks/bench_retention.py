"""Workload: retention with an archive (eventstore.lifecycle), at 100k and 1M events.

* SQLite: a store of real-shaped executions (6 events each, all completed,
  spread over 10 days, the execution catalog kept) loses the 9 oldest days
  to `run_retention`, archived and purged, in a fresh interpreter: rows/s
  against `export` of the same store in the same run (both stream the whole
  store), peak memory (VmHWM) at 100k against 1M (flat means a ratio near
  1), the longest write transaction retention held (every `writing()` of the
  backend timed: the manifest's and the purges') and the longest `BEGIN
  IMMEDIATE` wait of another process probing all along, each against the 50
  ms budget; and the census retention and `shards` stand on, from the
  execution catalog against the history scan it replaced (same store, same
  interpreter).
* PostgreSQL: 4 threads appending (batches of 6, one execution each) for a
  fixed time, alone and while retention runs in another process on the same
  store: the ratio of their event rates (target at least 0.8). Each phase is
  timed (the COPY fill, the catalog's rebuild, the appenders alone before,
  retention's census, archive and purge steps and its process's CPU
  seconds, alone after) and the load average is noted: on a shared 2-core
  host the wall-clock ratio swings with other jobs, the CPU seconds do not.

  The appenders are threads of one process, as in a runtime embedding the
  store (one process whose dispatchers append for the executions they run).
  They are bound by that process's GIL to about one core of Python plus
  their server backends, which is the honest shape of one runtime; it also
  means retention, in a process of its own, competes with them for the
  second core and the server, not for their interpreter. Appenders in
  several processes (bench_postgres_scale.py's model, many runtimes on one
  database) would fill both cores alone, and any background job would then
  cost them its whole CPU share: that measures the host's spare capacity,
  not how retention yields.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import eventstore
from eventstore.codec import encode

from .common import Result, execution_events, fresh_path, stamped

PER_EXECUTION = 6
DAYS = 10
FIRST_DAY_MS = 1_763_683_200_000  # 2025-11-21
CUT = "2025-11-30"  # the last day stays
LOCK_BUDGET_MS = 50.0

_PROBE = """
import json, sys, time, datetime as dt
from pathlib import Path
import eventstore
from eventstore.backends.sqlite.backend import SQLiteBackend
from eventstore.lifecycle.retention import RetentionPolicy, run_retention
op, path, out = sys.argv[1:4]
holds = []
original = SQLiteBackend.writing

class Timed:
    def __init__(self, unit):
        self.unit = unit
    def __enter__(self):
        writer = self.unit.__enter__()
        self.started = time.perf_counter()
        return writer
    def __exit__(self, *exc):
        try:
            return self.unit.__exit__(*exc)
        finally:
            holds.append((time.perf_counter() - self.started) * 1000)

SQLiteBackend.writing = lambda self: Timed(original(self))
# An appender's view, from another process: how long BEGIN IMMEDIATE waits.
flag = Path(out + ".running")
flag.touch()
import subprocess
prober = subprocess.Popen([sys.executable, "-c", PROBER, path, str(flag)],
                          stdout=subprocess.PIPE, text=True) if op == "retention" else None
time.sleep(0.5 if prober else 0)
started = time.perf_counter()
with eventstore.open(path) as store:
    if op == "retention":
        policy = RetentionPolicy(dt.date.fromisoformat(sys.argv[4]), Path(out))
        rows = run_retention(store, policy).purged_rows
    else:
        with open(out, "w", encoding="utf-8") as handle:
            rows = 0
            for row in store.export_rows():
                handle.write(json.dumps(row) + "\\n")
                rows += 1
seconds = time.perf_counter() - started
flag.unlink()
waited = (json.loads(prober.communicate()[0]) if prober
          else {"max": 0.0, "p99": 0.0, "probes": 0})
with open("/proc/self/status", encoding="ascii") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
holds.sort()
p99 = holds[int(len(holds) * 0.99)] if holds else 0.0
print(json.dumps({"rows": rows, "seconds": seconds, "peak_kib": peak,
                  "longest_hold_ms": max(holds, default=0.0), "writes": len(holds),
                  "p99_hold_ms": p99, "p99_wait_ms": waited["p99"],
                  "longest_wait_ms": waited["max"], "probes": waited["probes"]}))
"""

_PROBER = """
import json, sqlite3, sys, time
from pathlib import Path
path, flag = sys.argv[1:3]
con = sqlite3.connect(path, isolation_level=None, timeout=60)
waits = []
while Path(flag).exists():
    started = time.perf_counter()
    con.execute("BEGIN IMMEDIATE")
    waits.append((time.perf_counter() - started) * 1000)
    con.execute("ROLLBACK")
    time.sleep(0.002)
waits.sort()
print(json.dumps({"max": max(waits, default=0.0), "probes": len(waits),
                  "p99": waits[int(len(waits) * 0.99)] if waits else 0.0}))
"""


def _rows(total: int) -> Iterator[tuple[str, int, int, str, str]]:
    template = execution_events(PER_EXECUTION)
    per_day = max(1, total // PER_EXECUTION // DAYS)
    n = written = 0
    while written < total:
        instance_id = f"order-{n:07d}"
        at = FIRST_DAY_MS + min(n // per_day, DAYS - 1) * 86_400_000 + n
        for event in stamped(template, instance_id, at):
            yield (instance_id, 1, event.event_id, event.event_type, encode(event).decode())
            written += 1
        n += 1


_CENSUS = """
import json, sys, time
import eventstore
from eventstore.lifecycle.census import census, shard_census
with eventstore.open(sys.argv[1], readonly=True) as store:
    assert store.lifecycle.has_catalog_census()
    timed = {}
    for route, run in (("scan", census), ("catalog", shard_census)):
        wall, cpu = time.perf_counter(), time.process_time()
        executions = sum(1 for _ in run(store))
        timed[route] = (time.perf_counter() - wall, time.process_time() - cpu, executions)
print(json.dumps(timed))
"""


def fill(path: str, total: int) -> None:
    eventstore.open(path).close()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
        " VALUES (?,?,?,?,?)",
        _rows(total),
    )
    con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    # A store eventstore wrote keeps its execution catalog (appends keep it in
    # their transactions); the raw inserts above do not, so derive it once.
    with eventstore.open(path) as store:
        store.rebuild_catalog()


def census_routes(path: str) -> dict[str, tuple[float, float, int]]:
    """Seconds (wall, CPU) and executions of the census by history scan and by
    the execution catalog, in one fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", _CENSUS, path], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _probe(op: str, path: str, out: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", "PROBER = " + repr(_PROBER) + "\n" + _PROBE, op, path, out, CUT],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _short(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


def sqlite_results(directory: Path, sizes: list[int]) -> list[Result]:
    results: list[Result] = []
    peaks: dict[int, float] = {}
    for total in [s for s in sizes if s >= 100_000]:
        path = fresh_path(directory, f"retention-{total}")
        fill(path, total)
        routes = census_routes(path)
        (scan_s, scan_cpu, n), (cat_s, cat_cpu, _) = routes["scan"], routes["catalog"]
        results.append(
            Result(
                "SQLite retention/shards census from the execution catalog",
                total,
                n / cat_s,
                "the history scan",
                n / scan_s,
                unit="executions/s",
                note=f"{n:,} executions: {cat_s:.2f} s ({cat_cpu:.2f} s CPU) against"
                f" {scan_s:.2f} s ({scan_cpu:.2f} s CPU)",
            )
        )
        export = _probe("export", path, str(directory / "export.jsonl"))
        (directory / "export.jsonl").unlink(missing_ok=True)
        retained = _probe("retention", path, str(directory / f"archive-{total}"))
        peaks[total] = retained["peak_kib"]
        rate = retained["rows"] / retained["seconds"]
        results.append(
            Result(
                "SQLite retention archive+purge",
                total,
                rate,
                "export of the same store",
                export["rows"] / export["seconds"],
                unit="rows/s",
                note=f"{retained['rows']:,} rows archived and purged in"
                f" {retained['seconds']:.1f} s; peak {retained['peak_kib'] / 1024:.1f} MiB",
            )
        )
        results.append(
            Result(
                "SQLite retention longest write-lock hold (inverse)",
                total,
                LOCK_BUDGET_MS,
                "longest hold ms",
                retained["longest_hold_ms"],
                unit="ms",
                target=1.0,
                note=f"ratio = 50 ms budget / retention's longest write transaction,"
                f" BEGIN IMMEDIATE to COMMIT ({retained['longest_hold_ms']:.1f} ms of"
                f" {retained['writes']}; 99th percentile {retained['p99_hold_ms']:.1f} ms)",
            )
        )
        results.append(
            Result(
                "SQLite retention longest write-lock wait of another process (inverse)",
                total,
                LOCK_BUDGET_MS,
                "longest wait ms",
                retained["longest_wait_ms"],
                unit="ms",
                target=1.0,
                note=f"ratio = 50 ms budget / longest BEGIN IMMEDIATE wait of another process"
                f" over {retained['probes']} probes ({retained['longest_wait_ms']:.1f} ms;"
                f" 99th percentile {retained['p99_wait_ms']:.1f} ms)",
            )
        )
    if len(peaks) >= 2:
        small, large = min(peaks), max(peaks)
        results.append(
            Result(
                f"SQLite retention peak memory {_short(small)} vs {_short(large)} (inverse)",
                large,
                peaks[small],
                f"peak KiB at {_short(large)}",
                peaks[large],
                unit="KiB",
                target=1 / 1.2,
                note=f"ratio = peak({_short(small)})/peak({_short(large)})",
            )
        )
    return results


def _append_while(url: str, threads: int, prefix: str, until: Any) -> tuple[float, float]:
    """(events/s, seconds) of `threads` appenders running until `until()` is true."""
    counts = [0] * threads
    template = execution_events(PER_EXECUTION)
    now_ms = int(time.time() * 1000)

    def work(slot: int) -> None:
        with eventstore.open(url) as store:
            n = 0
            while not until():
                instance_id = f"{prefix}-{slot}-{n}"
                store.append(instance_id, 1, stamped(template, instance_id, now_ms))
                counts[slot] += PER_EXECUTION
                n += 1

    started = time.perf_counter()
    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    seconds = time.perf_counter() - started
    return sum(counts) / seconds, seconds


_RETENTION_SCRIPT = """
import json, resource, sys, time, datetime as dt
from pathlib import Path
import eventstore
from eventstore.lifecycle.retention import RetentionPolicy, run_retention
url, archive, cut, throttle = sys.argv[1:5]
started = time.perf_counter()
phases = {}
current = [None, started]

def progress(label, total):
    # Each step of the run announces itself (census, archive DAY, purge DAY):
    # the time until the next one is the step's, summed by kind.
    now = time.perf_counter()
    if current[0] is not None:
        phases[current[0]] = phases.get(current[0], 0.0) + now - current[1]
    current[0], current[1] = label.split()[0], now
    return lambda n: None

with eventstore.open(url) as store:
    policy = RetentionPolicy(dt.date.fromisoformat(cut), Path(archive),
                             throttle=None if throttle == "auto" else float(throttle))
    report = run_retention(store, policy, progress=progress)
now = time.perf_counter()
if current[0] is not None:
    phases[current[0]] = phases.get(current[0], 0.0) + now - current[1]
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"rows": report.purged_rows, "seconds": now - started,
                  "cpu": usage.ru_utime + usage.ru_stime, "phases": phases,
                  "dropped": len(report.dropped_partitions),
                  "longest_purge_ms": report.longest_purge_ms}))
"""


def _pg_store(server: Any, total: int, partitioned: bool, timings: dict[str, float]) -> str:
    """A store of `total` events over DAYS days, filled with COPY (both
    layouts alike: on a partitioned table each row names its day's partition,
    made first), then the execution catalog derived; `timings` gets the
    seconds of each ("copy", "catalog")."""
    import psycopg

    from eventstore.store.shard_key import derive_shard_key

    url: str = server.create_database()
    with eventstore.open(url, partition_by_shard=partitioned) as store:
        partitions = getattr(store.backend, "partitions", None)
        days = {derive_shard_key(FIRST_DAY_MS + d * 86_400_000) for d in range(DAYS)}
        for day in sorted(days):
            if partitions is not None:
                partitions.ensure(day)
    columns = "instance_id, execution_id, event_id, event_type, event_data, created_at"
    if partitioned:
        columns += ", eventstore_shard"
    statement = f"COPY history ({columns}) FROM STDIN"
    started = time.perf_counter()
    with psycopg.connect(url) as con, con.cursor() as cur, cur.copy(statement) as copy:
        for row in _rows(total):
            offset = min(int(row[0].split("-")[1]) // _per_day(total), DAYS - 1)
            shard = derive_shard_key(FIRST_DAY_MS + offset * 86_400_000)
            copy.write_row((*row, "2025-11-21 00:00:00", *((shard,) if partitioned else ())))
    timings["copy"] = time.perf_counter() - started
    started = time.perf_counter()
    with eventstore.open(url) as store:
        store.rebuild_catalog()
    timings["catalog"] = time.perf_counter() - started
    return url


def _per_day(total: int) -> int:
    return max(1, total // PER_EXECUTION // DAYS)


BEFORE_S = 10.0
"""The appenders alone before retention; after it, alone for half as long as
retention took, so that a change of the host's load during the run weighs
on both sides alike."""


def _retire(url: str, archive: str, throttle: float | None) -> tuple[float, float, dict[str, Any]]:
    """Retention in another process with the appenders beside it: (their
    events/s, seconds, what the retention process says of itself)."""
    child = subprocess.Popen(
        [sys.executable, "-c", _RETENTION_SCRIPT, url, archive, CUT,
         "auto" if throttle is None else str(throttle)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    during, seconds = _append_while(url, 4, "during", lambda: child.poll() is not None)
    out, _ = child.communicate(timeout=60)
    if child.returncode:
        raise RuntimeError(f"retention failed (exit {child.returncode})")
    return during, seconds, json.loads(out)


def _retention_ratio(
    server: Any, directory: Path, total: int, throttle: float | None, partitioned: bool
) -> Result:
    timings: dict[str, float] = {}
    url = _pg_store(server, total, partitioned, timings)
    layout = "partitioned" if partitioned else "plain"
    archive = str(directory / f"pg-archive-{layout}-{throttle}-{time.monotonic_ns()}")
    deadline = time.monotonic() + BEFORE_S
    before, timings["before"] = _append_while(
        url, 4, "before", lambda: time.monotonic() >= deadline
    )
    during, seconds, child = _retire(url, archive, throttle)
    deadline = time.monotonic() + seconds / 2
    after, timings["after"] = _append_while(url, 4, "after", lambda: time.monotonic() >= deadline)
    alone = (before * timings["before"] + after * timings["after"]) / (
        timings["before"] + timings["after"]
    )
    load = os.getloadavg()[0]
    label = " (default pacing)" if throttle is None else f" (--throttle {throttle:g})"
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in child["phases"].items())
    return Result(
        f"PostgreSQL appenders during retention, {layout} table" + label,
        total,
        during,
        "appenders alone",
        alone,
        target=0.8,
        note=f"4 threads appending 6-event executions for the {seconds:.1f} s"
        f" retention of {total:,} events took ({child['rows']:,} rows retired,"
        f" {child['dropped']} partitions dropped; retention's process {child['cpu']:.1f} s CPU;"
        f" {steps}; longest purge {child['longest_purge_ms']:.1f} ms); alone:"
        f" {timings['before']:.0f} s before it ({before:,.0f} events/s) and"
        f" {timings['after']:.0f} s after it ({after:,.0f}); fill: COPY {timings['copy']:.1f} s,"
        f" catalog {timings['catalog']:.1f} s; load average {load:.1f}",
    )


def postgres_results(
    directory: Path, total: int, runs: int = 1, throttles: tuple[float | None, ...] = (None, 0)
) -> list[Result]:
    """Alternating plain and partitioned tables, each run in the same server."""
    from tests.postgres_server import running_server

    results = []
    with running_server() as server:
        for _ in range(runs):
            for throttle in throttles:
                for partitioned in (False, True):
                    results.append(
                        _retention_ratio(server, directory, total, throttle, partitioned)
                    )
    return results


def run(directory: Path, sizes: list[int], rounds: int) -> list[Result]:
    results = sqlite_results(directory, sizes)
    try:
        results += postgres_results(directory, 200_000)
    except Exception as exc:  # no server binaries on this machine
        print(f"   skipped PostgreSQL: {exc}")
    return results


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        if "--postgres" in sys.argv:  # --postgres RUNS: alternating runs, default pacing
            found = postgres_results(Path(tmp), 200_000, int(sys.argv[-1]), (None,))
        else:
            found = run(Path(tmp), [100_000, 1_000_000], 1)
        for r in found:
            print(r.workload, r.size, f"{r.ours:,.1f}", r.baseline_name, f"{r.baseline:,.1f}",
                  f"{r.ratio:.2f}", r.note)  # fmt: skip
