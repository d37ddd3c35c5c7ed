"""Workload 5: whole-store operations (verify, export): throughput and peak memory.

Each operation runs in a fresh interpreter so its peak resident memory
(VmHWM) is its own; memory must not grow with the store's size. The full run
(sizes up to 1M) also measures verify, export and retention at 10M events
against 1M (issue 20's floor: at most 1.2x). Retention runs last, on the
store the others read, after `rebuild_catalog()` (a store eventstore wrote
keeps its execution catalog; the raw fill does not, and the rebuild is kept
out of the verify and export figures): every execution is on one day and
terminal, so it archives and purges the whole store.

Stores are filled by `fast_fill`: the template execution is encoded once and
each execution's rows are spliced from its pieces (instance id, timestamps),
then written with `executemany` in transactions of a million rows; going
through the codec per event (`common.fill_store`) would take minutes at 10M.
"""

from __future__ import annotations

import itertools
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import eventstore
from eventstore.codec import encode

from .bench_read import _legacy_copy
from .common import Result, execution_events, fresh_path, stamped

LARGE: int = 10_000_000
"""The extra size of the full run, measured for verify and export only."""
PER_EXECUTION = 50
_INSTANCE = "order-@@@@@@@"
_BASE_MS = 1_795_000_000_000
_TRANSACTION = 1_000_000

_PROBE = """
import json, sys, time
import eventstore
from eventstore.store.verify import verify
op, path, out = sys.argv[1:4]
started = time.perf_counter()
with eventstore.open(path, readonly=op not in ("migrate", "retention")) as store:
    if op == "migrate":
        from eventstore.evolution.migrate import migrate
        rows = migrate(store, strategy="eager").scanned
    elif op == "retention":
        import datetime as dt
        from pathlib import Path
        from eventstore.lifecycle.retention import RetentionPolicy, run_retention
        policy = RetentionPolicy(dt.date.fromisoformat(CUT), Path(out + ".archive"))
        rows = run_retention(store, policy).purged_rows
    elif op == "verify":
        rows = verify(store).rows
    else:
        with open(out, "w", encoding="utf-8") as handle:
            rows = 0
            for row in store.export_rows():
                handle.write(json.dumps(row) + "\\n")
                rows += 1
seconds = time.perf_counter() - started
# VmHWM belongs to this process's own address space; ru_maxrss would include
# the peak of the (large) benchmark process this child was forked from.
with open("/proc/self/status", encoding="ascii") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"rows": rows, "seconds": seconds, "peak_kib": peak}))
"""


def _template() -> list[tuple[int, str, tuple[str, str, str]]]:
    """The template execution's rows: event id, type, and its JSON cut around the
    instance id and the timestamp (the only parts that differ between executions)."""
    out = []
    for event in stamped(execution_events(PER_EXECUTION), _INSTANCE, _BASE_MS):
        text = encode(event).decode()
        head, rest = text.split(f'"{_INSTANCE}"')
        middle, tail = rest.split(f'"timestamp_ms":{event.timestamp_ms}')
        out.append(
            (event.event_id, event.event_type, (head + '"', '"' + middle + '"timestamp_ms":', tail))
        )
    return out


def _fast_rows(total: int) -> Iterator[tuple[str, int, int, str, str]]:
    """The same rows as `common.fill_store` writes (same ids, types, JSON), spliced."""
    template = _template()
    written = n = 0
    while written < total:
        instance_id = f"order-{n:07d}"
        base = _BASE_MS + n
        for offset, (event_id, event_type, (head, middle, tail)) in enumerate(template):
            if written == total:
                return
            yield (
                instance_id,
                1,
                event_id,
                event_type,
                f"{head}{instance_id}{middle}{base + offset}{tail}",
            )
            written += 1
        n += 1


def fast_fill(path: str, total: int) -> float:
    """Write `total` V1 rows straight into a new store's table; returns the seconds taken."""
    started = time.perf_counter()
    eventstore.open(path).close()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    rows = _fast_rows(total)
    sql = (
        "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
        " VALUES (?,?,?,?,?)"
    )
    for _ in range(0, total, _TRANSACTION):
        con.execute("BEGIN")
        con.executemany(sql, itertools.islice(rows, _TRANSACTION))
        con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return time.perf_counter() - started


_CUT = "2026-11-19"
"""The day after `_BASE_MS`'s: retention retires every execution of the store."""


def _probe(op: str, path: str, out: str) -> dict[str, float]:
    script = f"CUT = {_CUT!r}\n" + _PROBE
    done = subprocess.run(
        [sys.executable, "-c", script, op, path, out], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _retention(directory: Path, path: str) -> dict[str, float]:
    """Retention of the whole store in its own interpreter, after the catalog's rebuild."""
    started = time.perf_counter()
    with eventstore.open(path) as store:
        store.rebuild_catalog()
    rebuilt = time.perf_counter() - started
    out = directory / "retention"
    try:
        probe = _probe("retention", path, str(out))
    finally:
        shutil.rmtree(str(out) + ".archive", ignore_errors=True)
    return {**probe, "rebuild_seconds": rebuilt}


def _measure(
    directory: Path, ops: tuple[tuple[str, str], ...]
) -> list[tuple[str, dict[str, float]]]:
    """Each (operation, store) probed in its own interpreter; the export file removed after."""
    out = []
    for op, target in ops:
        probe = _probe(op.split()[-1], target, str(directory / "export.jsonl"))
        out.append((op, probe))
    (directory / "export.jsonl").unlink(missing_ok=True)
    return out


def _peak_ratio(op: str, small: int, large: int, peaks: dict[int, float]) -> Result:
    name = f"{_short(large)} vs {_short(small)}"
    return Result(f"{op} peak memory {name} (inverse)", large, peaks[small],
                  f"peak KiB at {_short(large)}", peaks[large], unit="KiB", target=1 / 1.2,
                  note=f"ratio = peak({_short(small)})/peak({_short(large)}); "
                  f"target: {_short(large)} <= 1.2x")  # fmt: skip


def _short(size: int) -> str:
    return f"{size // 1_000_000}M" if size >= 1_000_000 else f"{size // 1000}k"


def run(directory: Path, sizes: list[int], rounds: int) -> list[Result]:
    results = []
    peaks: dict[str, dict[int, float]] = {
        "verify": {},
        "export": {},
        "eager migrate": {},
        "retention": {},
    }
    # The full run (up to 1M) adds 10M, for verify, export and retention: an eager
    # migrate of 10M legacy rows would add minutes and has its own 1M figure.
    measured = [s for s in sizes if s >= 100_000]
    if 1_000_000 in measured:
        measured.append(LARGE)
    for total in measured:
        path = fresh_path(directory, "whole.db")
        fill_seconds = fast_fill(path, total)
        ops: tuple[tuple[str, str], ...] = (("verify", path), ("export", path))
        legacy = fresh_path(directory, "whole-v0.db")
        if total < LARGE:
            _legacy_copy(path, legacy, 1)
            ops += (("eager migrate", legacy),)
        for op, probe in _measure(directory, ops):
            peaks[op][total] = probe["peak_kib"]
            results.append(
                Result(f"{op} throughput", total, probe["rows"] / probe["seconds"],
                       "(none)", probe["rows"] / probe["seconds"],
                       note=f"peak memory {probe['peak_kib'] / 1024:.1f} MiB; store filled in "
                       f"{fill_seconds:.1f} s", rounds=1)
            )  # fmt: skip
        retained = _retention(directory, path)
        peaks["retention"][total] = retained["peak_kib"]
        results.append(
            Result("retention throughput (archive + purge)", total,
                   retained["rows"] / retained["seconds"], "(none)",
                   retained["rows"] / retained["seconds"],
                   note=f"peak memory {retained['peak_kib'] / 1024:.1f} MiB;"
                   f" {retained['rows']:,} rows in {retained['seconds']:.1f} s; catalog rebuilt"
                   f" first in {retained['rebuild_seconds']:.1f} s", rounds=1)
        )  # fmt: skip
        for leftover in (path, legacy):
            fresh_path(directory, Path(leftover).name)
    for op, by_size in peaks.items():
        for small, large in ((100_000, 1_000_000), (1_000_000, LARGE)):
            if small in by_size and large in by_size:
                results.append(_peak_ratio(op, small, large, by_size))
    return results
