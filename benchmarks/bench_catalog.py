"""The execution catalog: `eventstore ls` over 42,000 instances, and its cost per append.

1. `eventstore ls TARGET` as a user runs it (a process, the table written to a
   pipe) on a store of 42,000 instances of six events each, started over
   thirty days: with the catalog, against the same listing derived from the
   history (the catalog's tables dropped on a copy: what a store from before
   the catalog, or a database duroxide created, does). The goal is a table in
   under 2 s; `extra` has the wall-clock and CPU seconds and the load average
   (the machine is shared: CPU seconds are what the load does not change).
2. Appends shaped like duroxide's turns (three appends of two events per
   execution) to a store that keeps the catalog, against one that does not,
   alternately in the same run. callgrind's count of the same
   (benchmarks/catalog_callgrind.py) is the figure proposals/lifecycle.md gives.
"""

from __future__ import annotations

import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import msgspec

import eventstore
from eventstore import events as ev

from .catalog_work import _turns
from .common import Result

INSTANCES = 42_000
DAY_MS = 86_400_000
START_MS = 1_790_000_000_000


def _execution(n: int) -> list[ev.Event]:
    at = START_MS + (n % 30) * DAY_MS + n * 7
    events = [e for turn in _turns(f"ls-{n}") for e in turn]
    stamped = [msgspec.structs.replace(e, timestamp_ms=at + i) for i, e in enumerate(events)]
    if n % 5 == 0:  # a fifth still running
        stamped = stamped[:4]
    return stamped


def _build(path: Path) -> None:
    with eventstore.open(str(path)) as store:
        for start in range(0, INSTANCES, 1000):
            with store.transaction() as tx:
                for n in range(start, min(start + 1000, INSTANCES)):
                    tx.append(f"ls-{n:05}", 1, _execution(n))


def _drop_catalog(path: Path) -> None:
    con = sqlite3.connect(path)
    with con:
        con.execute("DROP TABLE eventstore_executions")
        con.execute("DROP TABLE eventstore_catalog_state")
    con.close()


def _ls_seconds(path: Path) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one `eventstore ls` process.

    The CPU time is the figure that does not depend on the shared machine's
    load; the child keeps its compiled bytecode as an installed package does.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "eventstore", "ls", str(path)],
        capture_output=True,
        check=True,
        env=env,
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    last = done.stdout.decode().splitlines()[-1]
    if last != f"{INSTANCES} instances":
        raise RuntimeError(f"ls listed {last!r}")
    return seconds, cpu


def _listing(directory: Path, rounds: int) -> Result:
    kept = directory / "catalog-ls.db"
    derived = directory / "catalog-ls-derived.db"
    _build(kept)
    shutil.copyfile(kept, derived)
    _drop_catalog(derived)
    _ls_seconds(kept)  # compiles the bytecode once, as installing does
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    for _ in range(rounds):
        ours.append(_ls_seconds(kept))
        theirs.append(_ls_seconds(derived))
    mine, base = statistics.median(w for w, _ in ours), statistics.median(w for w, _ in theirs)
    cpu, base_cpu = statistics.median(c for _, c in ours), statistics.median(c for _, c in theirs)
    return Result(
        f"ls {INSTANCES:,} instances as a table (catalog)",
        INSTANCES,
        INSTANCES / mine,
        "the same listing derived from the history",
        INSTANCES / base,
        unit="instances/s",
        note="a whole `eventstore ls` process, the table written to a pipe",
        rounds=rounds,
        extra={
            "seconds": round(mine, 3),
            "cpu_seconds": round(cpu, 3),
            "baseline_seconds": round(base, 3),
            "baseline_cpu_seconds": round(base_cpu, 3),
            "goal_seconds": 2,
            "load_average": round(os.getloadavg()[0], 2),
        },
    )


def _append_rate(path: Path, executions: int) -> float:
    with eventstore.open(str(path)) as store:
        started = time.perf_counter()
        for n in range(executions):
            instance_id = f"a-{path.stem}-{time.perf_counter_ns()}-{n}"
            for turn in _turns(instance_id):
                store.append(instance_id, 1, turn)
        return executions * 3 / (time.perf_counter() - started)


def _appends(directory: Path, rounds: int) -> Result:
    kept, plain = directory / "catalog-append.db", directory / "plain-append.db"
    eventstore.open(str(kept)).close()
    eventstore.open(str(plain)).close()
    _drop_catalog(plain)
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        ours.append(_append_rate(kept, 2000))
        theirs.append(_append_rate(plain, 2000))
    return Result(
        "append 2-event turns, keeping the catalog",
        6000,
        statistics.median(ours),
        "the same appends without a catalog",
        statistics.median(theirs),
        unit="appends/s",
        note="the catalog's cost per append (callgrind: benchmarks/catalog_callgrind.py)",
        rounds=rounds,
    )


def run(directory: Path, sizes: list[int], rounds: int) -> list[Result]:
    return [_listing(directory, max(3, rounds)), _appends(directory, rounds)]
