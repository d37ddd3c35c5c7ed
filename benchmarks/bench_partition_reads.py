"""Workload: reads on a PostgreSQL table partitioned by day shard, 31 days kept.

* `store.read()` of one execution: pruned (the catalog's shard named, two
  partitions planned) against the same read unpruned (every partition
  planned) on the same table, and against an unpartitioned table holding the
  same rows; alternating rounds in one run.
* The planning and execution times PostgreSQL reports (EXPLAIN ANALYZE) for
  that read unpruned, with the shard as a constant, and as the store sends
  it (the catalog's shard as InitPlans), on a fresh connection.
* The global feed: pages of 1,000 through `read_all` on both tables (no
  pruning is possible: the feed spans every day), and its statement's
  planning time.

`python -m benchmarks.bench_partition_reads [ROUNDS]`
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import psycopg

import eventstore
from eventstore.backends.postgres.pruned import PrunedQueries
from eventstore.store import HistoryStore

from .common import execution_events, stamped

DAYS = 31
PER_DAY = 40
FIRST_DAY_MS = 1_763_683_200_000  # 2025-11-21


def _fill(store: HistoryStore) -> list[tuple[str, int]]:
    template = execution_events(6)
    keys = []
    for day in range(DAYS):
        for n in range(PER_DAY):
            instance_id = f"d{day:02d}-{n:03d}"
            store.append(
                instance_id, 1, stamped(template, instance_id, FIRST_DAY_MS + day * 86_400_000 + n)
            )
            keys.append((instance_id, 1))
    return keys


def _reads_per_second(store: HistoryStore, keys: list[tuple[str, int]]) -> float:
    started = time.perf_counter()
    for key in keys:
        store.read(*key)
    return len(keys) / (time.perf_counter() - started)


def _feed_pages_per_second(store: HistoryStore) -> float:
    started = time.perf_counter()
    pages = 0
    after = 0
    while True:
        page = list(store.read_all(after=after, limit=1000))
        if not page:
            break
        after = page[-1].position
        pages += 1
    return pages / (time.perf_counter() - started)


def _explain(url: str, query: str, args: tuple[Any, ...]) -> tuple[float, float]:
    """(planning ms, execution ms), the median of 5 on one fresh connection."""
    plans, runs = [], []
    with psycopg.connect(url) as con:
        for _ in range(5):
            rows = con.execute("EXPLAIN (ANALYZE, SUMMARY, FORMAT JSON) " + query, args).fetchone()
            assert rows is not None
            report = rows[0][0]
            plans.append(report["Planning Time"])
            runs.append(report["Execution Time"])
    return statistics.median(plans), statistics.median(runs)


def main(rounds: int) -> None:
    from tests.postgres_server import running_server

    with running_server() as server:
        part_url, plain_url = server.create_database(), server.create_database()
        with (
            eventstore.open(part_url, partition_by_shard=True) as part,
            eventstore.open(plain_url, partition_by_shard=False) as plain,
        ):
            keys = _fill(part)
            _fill(plain)
            backend: Any = part.backend
            pruned = backend._pruned
            rates: dict[str, list[float]] = {"pruned": [], "unpruned": [], "plain": []}
            feeds: dict[str, list[float]] = {"partitioned": [], "plain": []}
            for _ in range(rounds):
                backend._pruned = pruned
                rates["pruned"].append(_reads_per_second(part, keys))
                backend._pruned = None
                rates["unpruned"].append(_reads_per_second(part, keys))
                rates["plain"].append(_reads_per_second(plain, keys))
                feeds["partitioned"].append(_feed_pages_per_second(part))
                feeds["plain"].append(_feed_pages_per_second(plain))
            backend._pruned = pruned
        for name, values in rates.items():
            print(f"read one execution, {name}: median {statistics.median(values):,.0f} reads/s"
                  f" (each round: {', '.join(f'{v:,.0f}' for v in values)})")  # fmt: skip
        for name in ("unpruned", "plain"):
            ratios = [p / u for p, u in zip(rates["pruned"], rates[name], strict=True)]
            print(f"  pruned / {name}: {', '.join(f'{r:.2f}' for r in ratios)}")
        for name, values in feeds.items():
            print(f"feed pages of 1,000, {name}: median {statistics.median(values):,.1f} pages/s"
                  f" (each round: {', '.join(f'{v:,.1f}' for v in values)})")  # fmt: skip
        instance = "d15-007"
        plain_q = "SELECT event_id, event_type, event_data FROM history WHERE instance_id = %s AND execution_id = %s ORDER BY event_id"  # noqa: E501
        initplan_q = PrunedQueries("public").execution_rows.decode()
        pruned_q = plain_q.replace(" ORDER", " AND eventstore_shard IN (%s, 'root') ORDER")
        catalog_q = (
            "SELECT shard FROM eventstore_executions WHERE instance_id = %s AND execution_id = %s"
        )
        feed_q = "SELECT * FROM history WHERE eventstore_xid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY eventstore_xid, eventstore_position LIMIT 1000"  # noqa: E501
        for label, url, query, args in [
            ("execution rows, every partition", part_url, plain_q, (instance, 1)),
            ("execution rows, shard named", part_url, pruned_q, (instance, 1, "2025-12-06")),
            ("execution rows, as the store reads them", part_url, initplan_q, (instance, 1) * 3),
            ("the catalog's shard", part_url, catalog_q, (instance, 1)),
            ("execution rows, unpartitioned", plain_url, plain_q, (instance, 1)),
            ("feed page, partitioned", part_url, feed_q, ()),
            ("feed page, unpartitioned", plain_url, feed_q, ()),
        ]:
            planning, execution = _explain(url, query, args)
            print(f"EXPLAIN {label}: planning {planning:.3f} ms, execution {execution:.3f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
