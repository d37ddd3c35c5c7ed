"""Workload 5: whole-store operations (verify, export): throughput and peak memory.

Each operation runs in a fresh interpreter so its peak resident memory
(VmHWM) is its own; memory must not grow with the store's size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .bench_read import _legacy_copy
from .common import Result, fill_store, fresh_path

_PROBE = """
import json, sys, time
import eventstore
from eventstore.store.verify import verify
op, path, out = sys.argv[1:4]
started = time.perf_counter()
with eventstore.open(path, readonly=op != "migrate") as store:
    if op == "migrate":
        from eventstore.evolution.migrate import migrate
        rows = migrate(store, strategy="eager").scanned
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


def _probe(op: str, path: str, out: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, op, path, out], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def run(directory: Path, sizes: list[int], rounds: int) -> list[Result]:
    results = []
    peaks: dict[str, dict[int, float]] = {"verify": {}, "export": {}, "eager migrate": {}}
    for total in sizes:
        if total < 100_000:
            continue
        path = fresh_path(directory, "whole.db")
        fill_store(path, total)
        legacy = fresh_path(directory, "whole-v0.db")
        _legacy_copy(path, legacy, 1)
        for op, target in (("verify", path), ("export", path), ("eager migrate", legacy)):
            probe = _probe(op.split()[-1], target, str(directory / "export.jsonl"))
            peaks[op][total] = probe["peak_kib"]
            results.append(
                Result(f"{op} throughput", total, probe["rows"] / probe["seconds"],
                       "(none)", probe["rows"] / probe["seconds"],
                       note=f"peak memory {probe['peak_kib'] / 1024:.1f} MiB", rounds=1)
            )  # fmt: skip
    for op, by_size in peaks.items():
        if 100_000 in by_size and 1_000_000 in by_size:
            results.append(
                Result(f"{op} peak memory 1M vs 100k (inverse)", 1_000_000,
                       by_size[100_000], "peak KiB at 1M", by_size[1_000_000], unit="KiB",
                       target=1 / 1.2, note="ratio = peak(100k)/peak(1M); target: 1M <= 1.2x")
            )  # fmt: skip
    return results
