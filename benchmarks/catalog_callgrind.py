"""Instructions per append with and without the execution catalog, by callgrind.

    python -m benchmarks.catalog_callgrind [SMALL LARGE]

Wall-clock time on the shared machine varies by a quarter from run to run;
instruction counts do not. Each mode runs twice under valgrind's callgrind
(SMALL and LARGE operations, defaults 100 and 400) on a copy of the same
preloaded store, and the difference divided by LARGE - SMALL is the cost of one
operation, start-up cancelled. Prints the figures and their ratios.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import callgrind

MODES = ("append-plain", "append-catalog", "last-history", "last-catalog")


def _instructions(mode: str, count: int, store: Path, scratch: Path) -> int:
    copy = scratch / f"{mode}-{count}.db"
    shutil.copyfile(store, copy)
    out = scratch / f"{mode}-{count}.out"
    return callgrind(["benchmarks.catalog_work", mode, str(count), str(copy)], out)[0]


def main() -> None:
    small, large = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (100, 400)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        stores = {}
        for keep in (True, False):
            stores[keep] = scratch / f"base-{int(keep)}.db"
            subprocess.run(
                [sys.executable, "-m", "benchmarks.catalog_work", "prepare", str(int(keep)),
                 str(stores[keep])],
                check=True,
            )  # fmt: skip
        per = {}
        for mode in MODES:
            store = stores[mode != "append-plain"]
            counts = [_instructions(mode, n, store, scratch) for n in (small, large)]
            per[mode] = (counts[1] - counts[0]) / (large - small)
            print(f"{mode}: {per[mode]:,.0f} instructions per operation", flush=True)
    ratio = per["append-catalog"] / per["append-plain"]
    print(f"append with the catalog / without: {ratio:.3f}")
    print(f"last_event_id from the catalog / from the history: "
          f"{per['last-catalog'] / per['last-history']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
