"""Client instructions per PostgreSQL append, by callgrind: the store's routes against raw psycopg.

    python -m benchmarks.postgres_callgrind [--url URL] [--unpartitioned]
        [--modes one-flight,plain,raw] [SMALL LARGE]

Wall-clock time on the shared machine swings by a factor of three; the
client's instruction count does not. Each mode runs twice under valgrind's
callgrind (SMALL and LARGE appends of a new 10-event execution, defaults 50
and 250), and the difference divided by LARGE - SMALL is one append, start-up
cancelled. Modes: `one-flight` (the store's common route), `plain` (the
store with the one-flight route off: the four-round-trip route), `raw` (the
benchmark's raw psycopg writer: BEGIN, one multi-row INSERT, COMMIT, its
rows encoded per append as the store encodes them). The server's work is
not counted (it is another process). Starts a throwaway server unless given
`--url`; its tables are partitioned by day shard (the default) unless
`--unpartitioned`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .common import callgrind

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODES = ("one-flight", "plain", "raw")


def work(mode: str, count: int, url: str) -> None:
    """`count` appends in `mode` (run under callgrind by `main`)."""
    import psycopg

    import eventstore
    from benchmarks.bench_postgres_scale import _INSERT, execution, raw_rows

    tag = f"{mode}-{os.getpid()}-{time.time_ns()}"
    if mode == "raw":
        with psycopg.connect(url, autocommit=True) as con, con.cursor() as cur:
            for n in range(count):
                params = raw_rows(f"{tag}-{n}")
                with con.transaction():
                    cur.execute(_INSERT, params)
        return
    with eventstore.open(url, pool_min_size=1, pool_max_size=1) as store:
        if mode == "plain":
            store.backend.one_flight = False  # type: ignore[attr-defined]
        store.append(f"warm-{tag}", 1, execution("warm"))
        for n in range(count):
            store.append(f"{tag}-{n}", 1, execution("x"), expected_last_event_id=0)


def _instructions(mode: str, count: int, url: str, out: Path) -> int:
    args = ["benchmarks.postgres_callgrind", "--work", mode, str(count), "--url", url]
    return callgrind(args, out)[0]


def measure(
    url: str, small: int, large: int, scratch: Path, modes: tuple[str, ...] = MODES
) -> dict[str, float]:
    per = {}
    for mode in modes:
        counts = [_instructions(mode, n, url, scratch / f"{mode}-{n}.out") for n in (small, large)]
        per[mode] = (counts[1] - counts[0]) / (large - small)
        print(f"{mode}: {per[mode]:,.0f} instructions per append", flush=True)
    for mode in ("one-flight", "plain"):
        if mode in per and "raw" in per:
            print(f"{mode} / raw: {per[mode] / per['raw']:.2f}")
    return per


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("counts", nargs="*", type=int, default=[50, 250])
    parser.add_argument("--url", help="an empty database (default: a throwaway server)")
    parser.add_argument(
        "--modes", default=",".join(MODES), help="which of them, comma-separated (default: all)"
    )
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument(
        "--unpartitioned", action="store_true", help="tables not partitioned by day shard"
    )
    args = parser.parse_args()
    if args.work:
        work(args.work, args.counts[0], args.url)
        return
    import tempfile

    from tests.postgres_server import running_server

    small, large = args.counts
    with tempfile.TemporaryDirectory() as tmp:
        if args.url:
            measure(args.url, small, large, Path(tmp), tuple(args.modes.split(",")))
            return
        with running_server() as server:
            url = server.create_database()
            import eventstore

            layout = {"partition_by_shard": not args.unpartitioned}
            eventstore.open(url, **layout).close()
            eventstore.open(url, schema="raw", **layout).close()
            measure(url, small, large, Path(tmp), tuple(args.modes.split(",")))


if __name__ == "__main__":
    main()
