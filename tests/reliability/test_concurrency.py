"""Concurrent writers on shared instances, with readers watching, on every backend.

Writers race for the same few instances with optimistic retries (re-read the
last id on ConcurrencyError); a reader process reads the same instances the
whole time. Afterwards exactly the expected events exist, ids have no
duplicates or gaps, the global feed yields every event once in commit order,
and no read ever saw part of a batch.
"""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import eventstore
from eventstore import ConcurrencyError
from eventstore import events as ev

WRITERS = 4
BATCHES = 25  # per writer
INSTANCES = 3


def _options(target: str) -> dict[str, Any]:
    return {} if target.startswith("postgresql://") else {"busy_timeout_ms": 60_000}


def _writer(target: str, worker: int) -> None:
    with eventstore.open(target, **_options(target)) as store:
        for n in range(BATCHES):
            instance_id = f"shared-{(worker + n) % INSTANCES}"
            size = 1 + (worker * 7 + n) % 5
            while True:
                events = store.read(instance_id, 1)
                last = events[-1].event_id if events else 0
                batch: list[ev.Event] = []
                for event_id in range(last + 1, last + 1 + size):
                    payload = json.dumps({"batch": f"{worker}-{n}", "size": size})
                    if event_id == 1:
                        batch.append(
                            ev.OrchestrationStarted(
                                event_id=1, name="S", version="1", input=payload
                            )
                        )
                    else:
                        batch.append(
                            ev.ActivityScheduled(event_id=event_id, name="W", input=payload)
                        )
                try:
                    store.append(instance_id, 1, batch, expected_last_event_id=last)
                    break
                except ConcurrencyError:
                    continue  # someone else appended first: re-read and retry


def _whole_batches(events: list[ev.Event]) -> bool:
    counts: Counter[str] = Counter()
    sizes: dict[str, int] = {}
    for event in events:
        payload = json.loads(event.input)  # type: ignore[union-attr]
        counts[payload["batch"]] += 1
        sizes[payload["batch"]] = payload["size"]
    return all(counts[b] == sizes[b] for b in counts)


def _reader(target: str, ready: Any, stop: Any, reads: Any, torn: Any) -> None:
    with eventstore.open(target, readonly=True) as store:
        ready.set()
        while True:
            for n in range(INSTANCES):
                events = store.read(f"shared-{n}", 1)
                reads.value += 1
                if not _whole_batches(events):
                    torn.value += 1
            if stop.is_set():
                return


@pytest.fixture(params=["sqlite-file", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite-file":
        path = str(tmp_path / "shared.db")
        eventstore.open(path).close()
        return path
    factory: Callable[[], str] = request.getfixturevalue("postgres_target_factory")
    url = factory()
    eventstore.open(url).close()
    return url


def test_writers_race_on_shared_instances_readers_never_see_a_partial_batch(target: str) -> None:
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    reads = context.Value("i", 0)
    torn = context.Value("i", 0)
    ready = context.Event()
    reader = context.Process(target=_reader, args=(target, ready, stop, reads, torn))
    reader.start()
    # Writers start once the reader is reading: on a loaded machine a spawned
    # reader can otherwise start after every writer has finished.
    assert ready.wait(timeout=120)
    writers = [context.Process(target=_writer, args=(target, w)) for w in range(WRITERS)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=300)
        assert process.exitcode == 0
    stop.set()
    reader.join(timeout=60)
    assert reader.exitcode == 0
    assert reads.value > 0 and torn.value == 0

    expected_events = sum(1 + (w * 7 + n) % 5 for w in range(WRITERS) for n in range(BATCHES))
    with eventstore.open(target) as store:
        total = 0
        for n in range(INSTANCES):
            events = store.read(f"shared-{n}", 1)
            assert [e.event_id for e in events] == list(range(1, len(events) + 1))
            assert _whole_batches(events)
            total += len(events)
        batches = {json.loads(e.input)["batch"] for n in range(INSTANCES)  # type: ignore[union-attr]
                   for e in store.read(f"shared-{n}", 1)}  # fmt: skip
        assert len(batches) == WRITERS * BATCHES  # every batch exactly once
        assert total == expected_events == store.count()
        feed = list(store.read_all())
        assert len(feed) == total
        keys = [(r.instance_id, r.event.event_id) for r in feed]
        assert len(set(keys)) == total
        if not target.startswith("postgresql://"):
            positions = [r.position for r in feed]
            assert positions == sorted(positions)  # one writer at a time
        else:  # (transaction, position) order: every record resumes to the rest
            for index in range(0, len(feed), 7):
                assert list(store.read_all(after=feed[index])) == feed[index + 1 :]
        # Commit order: within each instance the feed yields ids in order.
        for n in range(INSTANCES):
            ids = [r.event.event_id for r in feed if r.instance_id == f"shared-{n}"]
            assert ids == sorted(ids)
