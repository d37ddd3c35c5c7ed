"""Read whole executions: eventstore against duroxide's own client, same database.

The database is the real one duroxide wrote (tests/fixtures), its history rows
replicated under new instance ids until it holds `size` events. duroxide's
`Client.read_execution_history` runs in a child process: duroxide links its
own SQLite library, and two SQLite libraries in one process do not share
locks. Both sides read every execution once per round; the child reports its
own rate. Needs the `duroxide` package (the `bench` extra).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import eventstore

from .common import FIXTURES, Result, median_rate

_CHILD = """
import json, statistics, sys, time
import duroxide
path, rounds = sys.argv[1], int(sys.argv[2])
keys = json.loads(sys.stdin.read())
client = duroxide.Client(duroxide.SqliteProvider.open(f"sqlite:{path}?mode=rwc"))
rates = []
for _ in range(rounds):
    started = time.perf_counter()
    count = sum(len(client.read_execution_history(i, x)) for i, x in keys)
    rates.append(count / (time.perf_counter() - started))
print(statistics.median(rates))
"""


def _scaled_copy(path: Path, size: int) -> list[tuple[str, int]]:
    shutil.copyfile(FIXTURES / "duroxide-0.1.32" / "runtime.db", path)
    path.chmod(0o644)
    con = sqlite3.connect(path, isolation_level=None)
    rows = con.execute(
        "SELECT instance_id, execution_id, event_id, event_type, event_data FROM history"
    ).fetchall()
    keys = sorted({(r[0], r[1]) for r in rows})
    copy = 0
    total = len(rows)
    con.execute("BEGIN")
    while total < size:
        copy += 1
        batch = [
            (
                f"{i}~{copy}",
                x,
                e,
                t,
                d.replace(f'"instance_id":"{i}"', f'"instance_id":"{i}~{copy}"'),
            )
            for i, x, e, t, d in rows
        ]
        con.executemany(
            "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
            " VALUES (?, ?, ?, ?, ?)",
            batch,
        )
        keys += [(f"{i}~{copy}", x) for i, x in sorted({(r[0], r[1]) for r in rows})]
        total += len(batch)
    con.execute("COMMIT")
    con.close()
    return keys


def run(directory: Path, sizes: list[int], rounds: int) -> list[Result]:
    try:
        import duroxide  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        print("   skipped: duroxide is not installed (pip install -e '.[bench]')")
        return []
    results = []
    for size in sizes[:2]:  # duroxide's client is the slow side: 10k and 100k suffice
        path = directory / "duroxide-read.db"
        keys = _scaled_copy(path, size)

        def ours(keys: list[tuple[str, int]] = keys, path: Path = path) -> int:
            with eventstore.open(str(path), readonly=True) as store:
                return sum(len(store.read(i, x)) for i, x in keys)

        mine = median_rate(ours, rounds)
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), str(rounds)],
            input=json.dumps(keys),
            capture_output=True,
            text=True,
            check=True,
        )
        theirs = float(child.stdout.strip())
        results.append(
            Result("read executions, duroxide's database", size, mine,
                   "duroxide Client.read_execution_history", theirs, target=2.5, rounds=rounds)
        )  # fmt: skip
        path.unlink()
    return results
