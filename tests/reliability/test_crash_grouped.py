"""Crash safety of group commit: SIGKILL a process whose appends commit in groups.

A real child process (tests/reliability/crash_child_grouped.py) appends from
16 asyncio tasks, or 16 threads with group_commit=True, to a real SQLite
file, and acknowledges each append once its await (or call) returned; the
test kills it at random moments and checks, through the feed, that every
acknowledged batch is there and that no batch is partly visible (the
checker of test_crash.py). KILLS as there, halved: each round is a process.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import eventstore
from tests.reliability.test_crash import KILLS, ROOT, _Checker, _kill_at_random, _report


def _spawn(target: str, seed: int, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.crash_child_grouped", target, str(seed), mode],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("mode", ["aio", "threads"])
def test_sigkill_during_group_commits_loses_nothing(tmp_path: Path, mode: str) -> None:
    path = str(tmp_path / "grouped.db")
    eventstore.open(path).close()
    rnd = random.Random(23)
    kills = max(KILLS // 2, 10)
    acked: dict[str, int] = {}
    batches = 0
    checker = _Checker()
    for kill in range(kills):
        acks = _kill_at_random(_spawn(path, 1000 + kill, mode), rnd)
        batches += len(acks)
        for instance_id, _, last in acks:
            acked[instance_id] = max(acked.get(instance_id, 0), last)
        con = sqlite3.connect(path)
        try:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            con.close()
        with eventstore.open(path) as store:
            events = checker.check(store, acked)
            assert list(store.catalog_mismatches()) == []  # kept in each append's savepoint
    assert batches >= kills
    _report(f"sqlite group commit ({mode})", {
        "kills": kills, "acknowledged_batches": batches, "events": events,
    })  # fmt: skip
