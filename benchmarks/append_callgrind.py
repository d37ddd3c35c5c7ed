"""Instructions per append, eventstore against raw sqlite3, by callgrind.

    python -m benchmarks.append_callgrind [SHAPE ...] [--counts SMALL LARGE] [--sides ...]
        [--plain]

SHAPE is batch10, new or continuing (default: all three; see
benchmarks/append_work.py). Wall-clock time on the shared machine varies
by a quarter from run to run; instruction counts do not. Each side runs
twice under valgrind's callgrind (SMALL and LARGE appends, defaults 100 and
400) on a copy of the same prepared store, with PYTHONHASHSEED=0, and the
difference divided by LARGE - SMALL is one append's cost, start-up
cancelled (the raw side encodes its rows for the whole work list in both
runs, so encoding cancels too, as the benchmarks encode outside their
timing). `--plain` measures a store without the execution catalog. Ratios
are raw / ours.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import callgrind


def _instructions(args: list[str], store: Path, copy: Path) -> int:
    shutil.copyfile(store, copy)
    out = copy.with_suffix(".out")
    return callgrind(["benchmarks.append_work", *args, str(copy)], out)[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("shapes", nargs="*", default=["batch10", "new", "continuing"])
    parser.add_argument("--counts", nargs=2, type=int, default=[100, 400])
    parser.add_argument("--sides", nargs="*", default=["raw", "ours"])
    parser.add_argument(
        "--plain", action="store_true", help="on a store without the execution catalog"
    )
    options = parser.parse_args()
    small, large = options.counts
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for shape in options.shapes:
            store = scratch / f"{shape}.db"
            subprocess.run(
                [sys.executable, "-m", "benchmarks.append_work", "prepare", shape, str(store)]
                + (["plain"] if options.plain else []),
                check=True,
            )
            per = {}
            for side in options.sides:
                counts = [
                    _instructions([side, shape, str(n)], store, scratch / f"{side}-{n}.db")
                    for n in (small, large)
                ]
                per[side] = (counts[1] - counts[0]) / (large - small)
                print(f"{shape} {side}: {per[side]:,.0f} instructions per append", flush=True)
            if "raw" in per and "ours" in per:
                print(f"{shape} raw / ours: {per['raw'] / per['ours']:.3f}", flush=True)


if __name__ == "__main__":
    main()
