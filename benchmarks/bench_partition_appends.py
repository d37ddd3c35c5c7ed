"""Workload: appends to a PostgreSQL history table partitioned by day shard
against an unpartitioned one, on the same server.

    python -m benchmarks.bench_partition_appends wall [ROUNDS]
    python -m benchmarks.bench_partition_appends callgrind [SMALL LARGE]

Both tables hold the same 31 days (every partition made beforehand), and
every append is shaped like duroxide's turns: executions of 6 events in
three appends of 2, started on one of those days.

* `wall`: one writer, rounds alternating between the two tables; the ratio
  partitioned / plain of each round (same run, same server).
* `callgrind`: the client's instructions per append (the store's Python,
  psycopg and libpq; the server is not counted), from two runs of SMALL and
  LARGE appends under valgrind's callgrind, the difference divided by their
  difference so start-up cancels.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import eventstore
from eventstore.store import HistoryStore

from .common import callgrind as run_callgrind
from .common import execution_events, stamped

DAYS = 31
FIRST_DAY_MS = 1_763_683_200_000  # 2025-11-21


def _appends(store: HistoryStore, prefix: str, executions: int) -> int:
    """`executions` executions of 6 events in three appends of 2; the appends made."""
    template = execution_events(6)
    for n in range(executions):
        instance_id = f"{prefix}-{n}"
        events = stamped(template, instance_id, FIRST_DAY_MS + (n % DAYS) * 86_400_000 + n)
        for first in range(0, 6, 2):
            store.append(instance_id, 1, events[first : first + 2])
    return executions * 3


def _prepare(url: str, partitioned: bool) -> None:
    with eventstore.open(url, partition_by_shard=partitioned) as store:
        _appends(store, "fill", DAYS * 4)  # every day's partition made


def wall(rounds: int) -> None:
    from tests.postgres_server import running_server

    with running_server() as server:
        urls = {layout: server.create_database() for layout in ("partitioned", "plain")}
        for layout, url in urls.items():
            _prepare(url, layout == "partitioned")
        rates: dict[str, list[float]] = {"partitioned": [], "plain": []}
        for round_ in range(rounds):
            for layout, url in urls.items():
                with eventstore.open(url) as store:
                    started = time.perf_counter()
                    done = _appends(store, f"r{round_}", 150)
                    rates[layout].append(done / (time.perf_counter() - started))
        ratios = [p / q for p, q in zip(rates["partitioned"], rates["plain"], strict=True)]
        for layout, values in rates.items():
            print(f"{layout}: median {statistics.median(values):,.0f} appends/s"
                  f" ({', '.join(f'{v:,.0f}' for v in values)})")  # fmt: skip
        print(f"partitioned / plain each round: {', '.join(f'{r:.2f}' for r in ratios)};"
              f" median {statistics.median(ratios):.2f}")  # fmt: skip


def _instructions(url: str, prefix: str, count: int, scratch: Path) -> int:
    out = scratch / f"{prefix}.out"
    args = ["benchmarks.bench_partition_appends", "work", url, prefix, str(count)]
    return run_callgrind(args, out)[0]


def callgrind(small: int, large: int) -> None:
    from tests.postgres_server import running_server

    per = {}
    with running_server() as server, tempfile.TemporaryDirectory() as tmp:
        for layout in ("plain", "partitioned"):
            url = server.create_database()
            _prepare(url, layout == "partitioned")
            counts = [_instructions(url, f"{layout}-{n}", n, Path(tmp)) for n in (small, large)]
            per[layout] = (counts[1] - counts[0]) / (large - small)
            print(f"{layout}: {per[layout]:,.0f} client instructions per append", flush=True)
    print(f"partitioned / plain: {per['partitioned'] / per['plain']:.3f}")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "work":  # under callgrind: open, warm up, then `count` executions
        with eventstore.open(sys.argv[2]) as store:
            _appends(store, "warm-" + sys.argv[3], DAYS)  # every day known: no making
            _appends(store, sys.argv[3], int(sys.argv[4]) // 3 or 1)
    elif mode == "wall":
        wall(int(sys.argv[2]) if len(sys.argv) > 2 else 5)
    else:
        small, large = (int(a) for a in sys.argv[2:4]) if len(sys.argv) > 3 else (60, 240)
        callgrind(small, large)
