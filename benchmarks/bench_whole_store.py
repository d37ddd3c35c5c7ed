"""Workload 5: whole-store operations (verify, export): throughput and peak memory.

Each operation runs in a fresh interpreter so its peak resident memory
(ru_maxrss) is its own; memory must not grow with the store's size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .common import Result, fill_store, fresh_path

_PROBE = """
import json, resource, sys, time
import eventstore
from eventstore.verify import verify
op, path, out = sys.argv[1:4]
started = time.perf_counter()
with eventstore.open(path, readonly=True) as store:
    if op == "verify":
        rows = verify(store).rows
    else:
        with open(out, "w", encoding="utf-8") as handle:
            rows = 0
            for row in store.export_rows():
                handle.write(json.dumps(row) + "\\n")
                rows += 1
seconds = time.perf_counter() - started
print(json.dumps({"rows": rows, "seconds": seconds,
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _probe(op: str, path: str, out: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, op, path, out], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def run(directory: Path, sizes: list[int], rounds: int) -> list[Result]:
    results = []
    peaks: dict[str, dict[int, float]] = {"verify": {}, "export": {}}
    for total in sizes:
        if total < 100_000:
            continue
        path = fresh_path(directory, "whole.db")
        fill_store(path, total)
        for op in ("verify", "export"):
            probe = _probe(op, path, str(directory / "export.jsonl"))
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
