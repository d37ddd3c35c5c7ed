"""`eventstore shards partition TARGET`: an unpartitioned PostgreSQL history
table converted into partitions by day shard, offline, resumable.

Checked on real servers: every row lands in its execution's partition with
its position, transaction id and created_at unchanged (the feed and every
resume token are the same), reads are the same, appends go on after it (the
position sequence continues), a run SIGKILLed after any batch is finished by
running it again, also when rows were appended between the kills, and a
table duroxide created is refused.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import psycopg
import pytest

import eventstore
from eventstore import events as ev
from eventstore.store import HistoryStore
from eventstore.testing.lifecycle_conformance import FIRST_DAY_MS, fill_days
from tests.conftest import V0B_JSONL
from tests.test_migrate_crash import ROOT, run_cli
from tests.test_postgres_partitions import partitions, shard_of_rows

pytestmark = pytest.mark.postgres


def table_rows(target: str) -> list[tuple[Any, ...]]:
    """Every row with its position, transaction id and created_at, by position."""
    with psycopg.connect(target) as con:
        return con.execute(
            "SELECT eventstore_position, eventstore_xid::text, instance_id, execution_id,"
            " event_id, event_type, event_data, created_at FROM history"
            " ORDER BY eventstore_position"
        ).fetchall()


def feed(store: HistoryStore) -> list[tuple[int, str, int, int]]:
    return [(r.position, r.instance_id, r.execution_id, r.event.event_id) for r in store.read_all()]


def fill(store: HistoryStore) -> None:
    fill_days(store, 3, 4)
    store.import_rows(
        [json.loads(line) for line in V0B_JSONL.read_text().splitlines() if line.strip()]
    )


@pytest.fixture
def plain(postgres_target_factory: Any) -> str:
    url = str(postgres_target_factory())
    with eventstore.open(url, partition_by_shard=False) as store:
        fill(store)
    return url


def check_converted(target: str, rows_before: list[tuple[Any, ...]]) -> None:
    assert table_rows(target) == rows_before
    with eventstore.open(target) as store:
        assert store.lifecycle.partitioned
        assert list(store.catalog_mismatches()) == []
        shards = {(r.instance_id, r.execution_id): r.shard for r in store.catalog_executions()}
    placed = shard_of_rows(target)
    for key, tables in placed.items():
        assert tables == {"history_" + shards[key].replace("-", "_")}, key


def test_a_plain_table_is_converted_keeping_every_row_and_the_feed(plain: str) -> None:
    rows_before = table_rows(plain)
    with eventstore.open(plain) as store:
        feed_before = feed(store)
        executions = {(r[2], r[3]) for r in rows_before}
        reads_before = {key: store.read(*key) for key in executions}
        middle = feed_before[len(feed_before) // 2]
    done = run_cli("shards", "partition", plain)
    assert done.returncode == 0, done.stderr
    assert "partitioned by day shard now" in done.stdout
    check_converted(plain, rows_before)
    assert set(partitions(plain)) >= {"history_root", "history_2025_11_21", "history_2025_11_23"}
    with eventstore.open(plain) as store:
        assert feed(store) == feed_before
        # A reader's checkpoint resumes where it stood.
        resumed = [(r.position, r.instance_id) for r in store.read_all(after=middle[0])]
        assert resumed == [(f[0], f[1]) for f in feed_before[len(feed_before) // 2 + 1 :]]
        assert {key: store.read(*key) for key in executions} == reads_before
        # Appends go on: new positions come after every old one.
        started = ev.OrchestrationStarted(
            event_id=1, name="N", version="1", input="1", timestamp_ms=FIRST_DAY_MS
        )
        store.append("after", 1, [started])
        last = list(store.read_all(after=feed_before[-1][0]))
        assert [(r.instance_id, r.position > max(f[0] for f in feed_before)) for r in last] == [
            ("after", True)
        ]
    assert shard_of_rows(plain)[("after", 1)] == {"history_2025_11_21"}
    again = run_cli("shards", "partition", plain)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    shown = run_cli("shards", plain, "--json")
    assert json.loads(shown.stdout)["partitioned_by_shard"] is True


_KILLED = textwrap.dedent(
    """
    import os, signal, sys
    import eventstore
    from eventstore.lifecycle.partition import partition_store
    target, ticks = sys.argv[1], int(sys.argv[2])
    seen = 0

    def progress(label, total):
        def advance(n=1):
            global seen
            seen += 1
            if seen >= ticks:
                os.kill(os.getpid(), signal.SIGKILL)
        return advance

    with eventstore.open(target) as store:
        partition_store(store, batch=7, progress=progress)
    print("finished before the kill")
    """
)


def test_a_conversion_killed_anywhere_is_finished_by_running_it_again(plain: str) -> None:
    killed = 0
    for round_, ticks in enumerate([2, 3, 5, 8]):
        child = subprocess.run(
            [sys.executable, "-c", _KILLED, plain, str(ticks)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert child.returncode in (-9, 0), child.stderr
        killed += child.returncode == -9
        if child.returncode == 0:
            break
        # Between runs the old table is the store: writers go on (new
        # executions, and one added to an execution already copied).
        with eventstore.open(plain) as store:
            assert not store.lifecycle.partitioned
            started = ev.OrchestrationStarted(
                event_id=1, name="N", version="1", input="1", timestamp_ms=FIRST_DAY_MS
            )
            store.append(f"between-{round_}", 1, [started])
            store.append(
                "i-0-3", 1, [ev.ActivityScheduled(event_id=4 + round_, name="A", input="1")]
            )
    assert killed >= 2
    rows_before = table_rows(plain)
    with eventstore.open(plain) as store:
        feed_before = feed(store)
    done = run_cli("shards", "partition", plain, "--batch-rows", "7")
    assert done.returncode == 0, done.stderr
    check_converted(plain, rows_before)
    with eventstore.open(plain) as store:
        assert feed(store) == feed_before


def test_a_table_duroxide_created_is_refused(postgres_target_factory: Any) -> None:
    url = str(postgres_target_factory())
    with psycopg.connect(url) as con:
        con.execute(
            "CREATE TABLE history (instance_id TEXT NOT NULL,"
            " execution_id BIGINT NOT NULL, event_id BIGINT NOT NULL, event_type TEXT NOT NULL,"
            " event_data TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL,"
            " PRIMARY KEY (instance_id, execution_id, event_id))"
        )
    done = run_cli("shards", "partition", url)
    assert done.returncode != 0
    assert "created by another program" in done.stderr
    assert "Traceback" not in done.stderr
    assert partitions(url) == {}


def test_a_store_opened_before_another_conversion_does_not_convert_again(plain: str) -> None:
    """The store's own answer (partitioned or not) dates from its open; the
    conversion asks again under the table's key, so a store opened before
    another process converted the table leaves it as that process made it."""
    from eventstore.lifecycle.partition import partition_store

    with eventstore.open(plain) as stale:
        assert not stale.lifecycle.partitioned
        with eventstore.open(plain) as first:
            assert partition_store(first) > 0
        rows_after_first = table_rows(plain)
        steps: list[str] = []

        def progress(label: str, total: int | None) -> Any:
            steps.append(label)
            return lambda n=1: None

        assert partition_store(stale, progress=progress) == -1
        assert steps == []  # nothing copied
    assert table_rows(plain) == rows_after_first
    check_converted(plain, rows_after_first)
