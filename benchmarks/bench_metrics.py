"""Exporter cost: per scrape as the store grows, and full catch-up throughput.

For each store size (10k, 100k and 1M stored events; --quick stops at 100k):

* catch-up: a fresh FeedExporter reads the whole feed once (target, issue
  20: at least 300k events/s over 1M events);
* per scrape: NEW events are appended, then one poll plus one rendering of
  the exposition (what a scrape after an interval costs). Median of ROUNDS.
  It must stay flat as the store grows: the ratio to the smallest store is
  printed.

Run: python benchmarks/bench_metrics.py [--quick]
Stores are built with plain SQL inserts of pre-encoded V1 rows (building
them is not measured), ten events per execution, a hundred executions
interleaved so that starts are in flight across pages.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # runnable as a script

import eventstore
from benchmarks.common import Result
from eventstore.metrics.exporter import FeedExporter

NEW = 1_000
ROUNDS = 15
INTERLEAVE = 100
T0 = 1_795_000_000_000
EVENTS_PER_EXECUTION = 10


def _execution(instance: str, start: int) -> list[tuple[int, str, str]]:
    """One execution's (event_id, type, JSON) rows: activities, a timer, a child, the end."""
    common = '"instance_id":"{i}","execution_id":1,"timestamp_ms":{t},"duroxide_version":"0.1.32"'

    def row(event_id: int, source: int | None, ms: int, kind: str, fields: str) -> str:
        src = "null" if source is None else str(source)
        head = common.format(i=instance, t=start + ms)
        return f'{{"event_id":{event_id},"source_event_id":{src},{head},"type":"{kind}"{fields}}}'

    failure = (
        ',"details":{"Application":{"kind":"ActivityFailed","message":"boom","retryable":false}}'
    )
    return [
        (
            1,
            "OrchestrationStarted",
            row(
                1,
                None,
                0,
                "OrchestrationStarted",
                ',"name":"Bench","version":"1.0.0","input":"0","parent_instance":null,'
                '"parent_id":null',
            ),
        ),
        (2, "ActivityScheduled", row(2, None, 1, "ActivityScheduled", ',"name":"A","input":"1"')),
        (3, "ActivityCompleted", row(3, 2, 40, "ActivityCompleted", ',"result":"2"')),
        (4, "ActivityScheduled", row(4, None, 41, "ActivityScheduled", ',"name":"B","input":"2"')),
        (5, "ActivityFailed", row(5, 4, 90, "ActivityFailed", failure)),
        (6, "TimerCreated", row(6, None, 91, "TimerCreated", f',"fire_at_ms":{start + 200}')),
        (7, "TimerFired", row(7, 6, 200, "TimerFired", f',"fire_at_ms":{start + 200}')),
        (
            8,
            "SubOrchestrationScheduled",
            row(
                8,
                None,
                201,
                "SubOrchestrationScheduled",
                f',"name":"Child","instance":"{instance}::child","input":"3"',
            ),
        ),
        (
            9,
            "SubOrchestrationCompleted",
            row(9, 8, 700, "SubOrchestrationCompleted", ',"result":"4"'),
        ),
        (
            10,
            "OrchestrationCompleted",
            row(10, None, 750, "OrchestrationCompleted", ',"output":"4"'),
        ),
    ]


def _rows(first_execution: int, events: int) -> Iterator[tuple[str, int, int, str, str]]:
    """`events` rows of executions numbered from `first_execution`, interleaved."""
    executions = events // EVENTS_PER_EXECUTION
    for block in range(first_execution, first_execution + executions, INTERLEAVE):
        members = range(block, min(block + INTERLEAVE, first_execution + executions))
        histories = [(f"bench-{n}", _execution(f"bench-{n}", T0 + n * 1000)) for n in members]
        for index in range(EVENTS_PER_EXECUTION):
            for instance, history in histories:
                event_id, kind, data = history[index]
                yield instance, 1, event_id, kind, data


def _insert(path: Path, first_execution: int, events: int) -> None:
    con = sqlite3.connect(path)
    with con:
        con.executemany(
            "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
            " VALUES (?, ?, ?, ?, ?)",
            _rows(first_execution, events),
        )
    con.close()


def measure(directory: Path, size: int) -> dict[str, float]:
    path = directory / f"bench-{size}.db"
    eventstore.open(str(path)).close()
    _insert(path, 0, size)
    next_execution = size // EVENTS_PER_EXECUTION
    with eventstore.open(str(path), readonly=True) as store:
        exporter = FeedExporter(store)
        started, cpu = time.perf_counter(), time.process_time()
        first = exporter.poll()
        catch_up = time.perf_counter() - started
        catch_up_cpu = time.process_time() - cpu
        assert first.rows == size, (first.rows, size)
        exporter.exposition()
        scrapes, scrapes_cpu = [], []
        for _ in range(ROUNDS):
            _insert(path, next_execution, NEW)
            next_execution += NEW // EVENTS_PER_EXECUTION
            started, cpu = time.perf_counter(), time.process_time()
            result = exporter.poll()
            exporter.exposition()
            scrapes.append(time.perf_counter() - started)
            scrapes_cpu.append(time.process_time() - cpu)
            assert result.rows == NEW, result
        metrics = exporter.metrics
        expected = next_execution
        counted = exporter.registry.get_sample_value(
            "duroxide_orchestration_duration_seconds_count",
            {"orchestration_name": "Bench", "version": "1.0.0", "status": "success"},
        )
        assert counted == expected, (counted, expected)
        assert metrics.open_executions == 0
    path.unlink()
    return {
        "size": size,
        "catch_up_s": catch_up,
        "catch_up_rate": size / catch_up,
        "catch_up_cpu_rate": size / catch_up_cpu,
        "scrape_ms": statistics.median(scrapes) * 1000,
        "scrape_cpu_ms": statistics.median(scrapes_cpu) * 1000,
    }


def run(directory: Path, sizes: list[int], rounds: int) -> list[Result]:
    """For `python -m benchmarks.run`: catch-up rate and per-scrape cost by store size."""
    results = [measure(directory, size) for size in sizes]
    base = results[0]
    # The floor is over the largest store: a 10k catch-up carries the fixed
    # cost of a first poll (about a fifth of its time), so its rate is
    # information only.
    largest = max(r["size"] for r in results)
    out = [
        Result("metrics full catch-up", int(r["size"]), r["catch_up_rate"],
               "target rate", 300_000.0, target=1.0 if r["size"] == largest else None,
               rounds=1, note=f"{r['catch_up_cpu_rate']:,.0f} events per CPU second")
        for r in results
    ]  # fmt: skip
    out += [
        Result(f"metrics per scrape ({NEW:,} new events), inverse cost", int(r["size"]),
               1000 / r["scrape_ms"], f"same at {int(base['size']):,} stored",
               1000 / base["scrape_ms"], unit="scrapes/s", target=0.8, rounds=ROUNDS,
               note="flat: the ratio stays near 1 as the store grows")
        for r in results
    ]  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k only")
    args = parser.parse_args(argv)
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        for size in sizes:
            print(f"measuring {size:,} stored events ...", file=sys.stderr, flush=True)
            results.append(measure(Path(tmp), size))
    base = results[0]["scrape_ms"]
    base_cpu = results[0]["scrape_cpu_ms"]
    print(
        f"\nper scrape: poll of {NEW:,} new events + exposition, median of {ROUNDS}"
        f"\n{'stored events':>14} {'catch-up s':>11} {'events/s':>11} {'events/cpu-s':>13} "
        f"{'scrape ms':>10} {'ratio':>6} {'scrape cpu-ms':>14} {'ratio':>6}"
    )
    for r in results:
        print(
            f"{int(r['size']):>14,} {r['catch_up_s']:>11.2f} {r['catch_up_rate']:>11,.0f} "
            f"{r['catch_up_cpu_rate']:>13,.0f} {r['scrape_ms']:>10.2f} "
            f"{r['scrape_ms'] / base:>6.2f} {r['scrape_cpu_ms']:>14.2f} "
            f"{r['scrape_cpu_ms'] / base_cpu:>6.2f}"
        )
    largest = results[-1]
    target = 300_000
    wall = "meets" if largest["catch_up_rate"] >= target else "misses"
    cpu = "meets" if largest["catch_up_cpu_rate"] >= target else "misses"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\ncatch-up over {int(largest['size']):,} events: "
        f"{largest['catch_up_rate']:,.0f} events/s wall ({wall} the {target:,} target), "
        f"{largest['catch_up_cpu_rate']:,.0f} per CPU second ({cpu} it)"
        f"\nload average {load} on {os.cpu_count()} CPUs: on a busy machine, "
        "wall time includes waiting for a CPU; CPU time is the exporter's own cost"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
