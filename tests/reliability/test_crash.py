"""Crash safety: SIGKILL a writer at random moments; nothing acknowledged is lost.

CI runs a short version (KILLS, default 25 per backend); `make soak` sets
EVENTSTORE_SOAK=1 for 500 kills and prints the figures.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import eventstore

ROOT = Path(__file__).resolve().parents[2]
SOAK = os.environ.get("EVENTSTORE_SOAK") == "1"
KILLS = int(os.environ.get("EVENTSTORE_KILLS", "500" if SOAK else "25"))


def _spawn(target: str, seed: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.crash_child", target, str(seed)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_at_random(child: subprocess.Popen[str], rnd: random.Random) -> list[tuple[str, int, int]]:
    """Let the child run a random while, SIGKILL it, return what it acknowledged."""
    acks: list[tuple[str, int, int]] = []
    assert child.stdout is not None

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            parts = line.split()
            if len(parts) == 4 and parts[0] == "ACK":
                acks.append((parts[1], int(parts[2]), int(parts[3])))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    # Wait for the first acknowledgement (start-up), then a random moment.
    deadline = time.monotonic() + 30
    while not acks and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    if child.poll() is not None:
        raise AssertionError(
            f"the writer died by itself: {child.stderr.read() if child.stderr else ''}"
        )
    time.sleep(rnd.uniform(0.0, 0.08))
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    reader.join(timeout=30)
    # Both pipes closed here: the reader reaching EOF does not close stdout.
    for pipe in (child.stdout, child.stderr):
        if pipe is not None:
            pipe.close()
    return acks


class _Checker:
    """Checks what was appended since the last check, through the global feed.

    Earlier checks proved everything before `position` whole, and the store
    only grows, so each round reads only the new events (the soak's 500
    rounds stay linear in the number of events).
    """

    def __init__(self) -> None:
        self.position = 0
        self.last_id: dict[str, int] = {}
        self.events = 0

    def check(self, store: eventstore.HistoryStore, acked: dict[str, int]) -> int:
        counts: Counter[str] = Counter()
        sizes: dict[str, int] = {}
        for record in store.read_all(after=self.position):
            instance_id, event = record.instance_id, record.event
            expected = self.last_id.get(instance_id, 0) + 1
            assert event.event_id == expected, f"{instance_id}: ids not contiguous"
            self.last_id[instance_id] = event.event_id
            payload: dict[str, Any] = json.loads(event.input)  # type: ignore[union-attr]
            counts[payload["batch"]] += 1
            sizes[payload["batch"]] = payload["size"]
            self.position = record.position
            self.events += 1
        for batch, seen in counts.items():
            assert seen == sizes[batch], f"batch {batch} partly visible"
        for instance_id, last in acked.items():
            assert self.last_id.get(instance_id, 0) >= last, (
                f"{instance_id}: acknowledged events lost"
            )
        assert self.events == store.count()
        return self.events


def _run(target: str, integrity: Any, kills: int, seed: int) -> dict[str, int]:
    rnd = random.Random(seed)
    acked: dict[str, int] = {}
    acknowledged_batches = 0
    events = 0
    checker = _Checker()
    for kill in range(kills):
        acks = _kill_at_random(_spawn(target, seed * 100_000 + kill), rnd)
        acknowledged_batches += len(acks)
        for instance_id, _, last in acks:
            acked[instance_id] = max(acked.get(instance_id, 0), last)
        integrity()
        with eventstore.open(target) as store:  # reopens, and appending continues next round
            events = checker.check(store, acked)
            # The execution catalog commits with the rows or not at all: a
            # killed append never leaves it disagreeing with the history.
            assert list(store.catalog_mismatches()) == []
    return {"kills": kills, "acknowledged_batches": acknowledged_batches, "events": events}


def _report(name: str, figures: dict[str, int]) -> None:
    line = (
        f"{name}: {figures['kills']} kills survived, {figures['acknowledged_batches']} "
        f"acknowledged batches, {figures['events']} events checked, lost: 0"
    )
    print(line)
    out = os.environ.get("EVENTSTORE_SOAK_REPORT")
    if out:
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def test_sigkill_sqlite_writer_loses_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "crash.db")
    eventstore.open(path).close()

    def integrity() -> None:
        con = sqlite3.connect(path)
        try:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            con.close()

    figures = _run(path, integrity, KILLS, seed=7)
    assert figures["acknowledged_batches"] >= KILLS
    _report("sqlite", figures)


@pytest.mark.postgres
def test_sigkill_postgres_client_loses_nothing(request: pytest.FixtureRequest) -> None:
    try:
        factory = request.getfixturevalue("postgres_target_factory")
    except pytest.FixtureLookupError:
        pytest.skip("the PostgreSQL test server fixture is not available")
    target = factory()
    eventstore.open(target).close()

    def integrity() -> None:
        # The server survives a killed client; its transactions are all or nothing.
        with eventstore.open(target, readonly=True) as store:
            store.count()

    figures = _run(target, integrity, max(KILLS // 2, 12), seed=11)
    assert figures["acknowledged_batches"] >= 12
    _report("postgres", figures)
