"""Shared benchmark plumbing: timing, results, fixtures of generated rows.

Every workload measures eventstore and its baseline in the same process run,
on the same data, several rounds each, and reports medians and their ratio.
Benchmarks are not tests: nothing here asserts a timing.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import eventstore
from eventstore import events as ev
from eventstore.codec import encode

HERE = Path(__file__).parent
FIXTURES = HERE.parent / "tests" / "fixtures"


@dataclass
class Result:
    workload: str
    size: int
    ours: float
    baseline_name: str
    baseline: float
    unit: str = "events/s"
    target: float | None = None
    """Minimum ratio ours/baseline the project aims for (None: informative)."""
    note: str = ""
    rounds: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline else float("nan")

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.ratio >= self.target


def median_rate(work: Callable[[], int], rounds: int) -> float:
    """Median of `rounds` runs of work() (which returns how many items it did) per second."""
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        done = work()
        rates.append(done / (time.perf_counter() - started))
    return statistics.median(rates)


def interleaved(
    ours: Callable[[], int], baseline: Callable[[], int], rounds: int
) -> tuple[float, float]:
    """Medians of ours and baseline, alternating rounds so drift hits both alike."""
    baseline_rate, ours_rate = interleaved_all([baseline, ours], rounds)
    return ours_rate, baseline_rate


def interleaved_all(works: list[Callable[[], int]], rounds: int) -> list[float]:
    """Median rate of each work, taking turns round by round."""
    rates: list[list[float]] = [[] for _ in works]
    for _ in range(rounds):
        for work, out in zip(works, rates, strict=True):
            started = time.perf_counter()
            done = work()
            out.append(done / (time.perf_counter() - started))
    return [statistics.median(r) for r in rates]


def drop_catalog(path: Path) -> None:
    """Make a SQLite store one without the execution catalog (its cost per
    append is measured by difference)."""
    con = sqlite3.connect(path)
    with con:
        con.execute("DROP TABLE eventstore_executions")
        con.execute("DROP TABLE eventstore_catalog_state")
    con.close()


def fresh_path(directory: Path, name: str) -> str:
    path = directory / name
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return str(path)


def workdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="eventstore-bench-")


def execution_events(events_per_execution: int, seed: int = 0) -> list[ev.Event]:
    """A realistic execution: start, then activity pairs, a timer, completion."""
    out: list[ev.Event] = [
        ev.OrchestrationStarted(
            event_id=1, name="Order", version="1.0.0", input=json.dumps({"order": seed})
        )
    ]
    event_id = 2
    while event_id < events_per_execution:
        out.append(
            ev.ActivityScheduled(
                event_id=event_id, name="Charge", input=json.dumps({"n": event_id, "eur": 12})
            )
        )
        out.append(
            ev.ActivityCompleted(
                event_id=event_id + 1, source_event_id=event_id, result=json.dumps({"ok": True})
            )
        )
        event_id += 2
    out = out[: events_per_execution - 1]
    out.append(ev.OrchestrationCompleted(event_id=len(out) + 1, output='"done"'))
    return out


def stamped(events: list[ev.Event], instance_id: str, base_ms: int) -> list[ev.Event]:
    import msgspec

    return [
        msgspec.structs.replace(
            e,
            instance_id=instance_id,
            execution_id=1,
            timestamp_ms=base_ms + i,
            duroxide_version="0.1.32",
        )
        for i, e in enumerate(events)
    ]


def fill_store(path: str, total_events: int, per_execution: int = 50) -> int:
    """Write total_events V1 rows (stamped, encoded) straight into a store's table."""
    store = eventstore.open(path)
    store.close()
    import sqlite3

    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    template = execution_events(per_execution)
    written = 0
    con.execute("BEGIN")
    n = 0
    while written < total_events:
        instance_id = f"order-{n:07d}"
        rows = [
            (instance_id, 1, e.event_id, e.event_type, encode(e).decode())
            for e in stamped(template, instance_id, 1_795_000_000_000 + n)
        ][: total_events - written]
        con.executemany(
            "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
            " VALUES (?,?,?,?,?)",
            rows,
        )
        written += len(rows)
        n += 1
        if n % 2000 == 0:
            con.execute("COMMIT")
            con.execute("BEGIN")
    con.execute("COMMIT")
    con.close()
    return n


def machine() -> dict[str, Any]:
    import sqlite3

    import msgspec

    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
        "msgspec": msgspec.__version__,
        "eventstore": eventstore.__version__,
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpu:
            for line in cpu:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def rows_of(path: Path) -> Iterator[dict[str, Any]]:
    for line in path.read_text(encoding="utf-8").splitlines():
        yield json.loads(line)


def as_dict(result: Result) -> dict[str, Any]:
    out = asdict(result)
    out["ratio"] = result.ratio
    out["met"] = result.met
    return out


def callgrind(module_args: list[str], out: Path) -> tuple[int, str]:
    """Run `python -m <module_args>` under callgrind: the instructions it
    executed (valgrind's `Collected`) and its stdout. PYTHONHASHSEED is fixed
    so that the same run counts the same, instruction for instruction."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         sys.executable, "-m", *module_args],
        capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(done.stderr[-2000:])
    return int(found.group(1)), done.stdout
