"""Instructions per event of the real-shaped reads and their raw baselines, by callgrind.

    python -m benchmarks.read_callgrind [MODE ...]

Wall-clock time on the shared machine varies by a quarter from run to run;
instruction counts do not. Each mode (`benchmarks/read_work.py`) runs twice
under valgrind's callgrind, over few and many executions (200 and 800) or
feed events (5,000 and 15,000), on the same prepared stores; the difference
of instructions divided by the difference of events is the cost of one event,
start-up cancelled. Prints each figure and the floors' ratios (issue 20:
short reads 0.9 of raw, V0 reads 0.7 of raw V1, the feed 0.8 of a raw scan).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from .common import callgrind

COUNTS = {
    "read": (200, 800),
    "read-v0": (200, 800),
    "raw-read": (200, 800),
    "feed": (5_000, 15_000),
    "raw-feed": (5_000, 15_000),
}
FLOORS = (("read", "raw-read", 0.9), ("read-v0", "raw-read", 0.7), ("feed", "raw-feed", 0.8))


def _run(mode: str, count: int, stores: Path, scratch: Path) -> tuple[int, int]:
    out = scratch / f"{mode}-{count}.out"
    instructions, stdout = callgrind(["benchmarks.read_work", mode, str(count), str(stores)], out)
    return instructions, int(stdout.split()[-1])


def main() -> None:
    modes = sys.argv[1:] or list(COUNTS)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        subprocess.run([sys.executable, "-m", "benchmarks.read_work", "prepare", tmp], check=True)
        per = {}
        for mode in modes:
            (small, events_small), (large, events_large) = (
                _run(mode, n, scratch, scratch) for n in COUNTS[mode]
            )
            per[mode] = (large - small) / (events_large - events_small)
            print(f"{mode}: {per[mode]:,.0f} instructions per event", flush=True)
    for ours, raw, floor in FLOORS:
        if ours in per and raw in per:
            print(f"{ours} / {raw}: {per[raw] / per[ours]:.3f} (floor {floor})")


if __name__ == "__main__":
    main()
