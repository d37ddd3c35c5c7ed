"""PostgreSQL at scale: writers of different executions in parallel, a tailing reader
that never skips or repeats, the same execution's writers taking turns."""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator

import pytest

import eventstore
from eventstore import events as ev
from eventstore.errors import ConcurrencyError
from eventstore.store import FeedRecord, HistoryStore

pytestmark = pytest.mark.postgres

WRITERS = 16
ROUNDS = 30
SHARED = 4  # executions every writer also appends to (they take turns on these)


def _batch(last: int, size: int, tag: str) -> list[ev.Event]:
    batch: list[ev.Event] = []
    for event_id in range(last + 1, last + 1 + size):
        if event_id == 1:
            batch.append(ev.OrchestrationStarted(event_id=1, name="S", version="1", input=tag))
        else:
            batch.append(ev.ActivityScheduled(event_id=event_id, name="W", input=tag))
    return batch


def _write(store: HistoryStore, worker: int, errors: list[BaseException]) -> None:
    """Own executions and shared ones; some appends held open in transaction()
    for a moment after drawing their positions, so commits interleave."""
    rng = random.Random(worker)
    try:
        for n in range(ROUNDS):
            own = rng.random() < 0.6
            instance_id = f"w{worker}-{n % 5}" if own else f"shared-{rng.randrange(SHARED)}"
            size = rng.randint(1, 4)
            while True:
                last = store.last_event_id(instance_id, 1)
                batch = _batch(last, size, f'"{worker}-{n}"')
                try:
                    if rng.random() < 0.5:
                        with store.transaction() as tx:
                            tx.append(instance_id, 1, batch, expected_last_event_id=last)
                            time.sleep(rng.random() * 0.01)
                    else:
                        store.append(instance_id, 1, batch, expected_last_event_id=last)
                    break
                except ConcurrencyError:
                    continue
    except BaseException as exc:  # reported by the test
        errors.append(exc)


def _tail(store: HistoryStore, stop: threading.Event, out: list[FeedRecord]) -> None:
    """Follow the feed, resuming after the last record each time."""
    last: FeedRecord | None = None
    while True:
        finishing = stop.is_set()
        for record in store.read_all(after=last if last is not None else 0):
            out.append(record)
            last = record
        if finishing:
            return
        store.wait_for_events(last.position if last is not None else 0, 0.2)


@pytest.fixture
def stores(postgres_target_factory: Callable[[], str]) -> Iterator[list[HistoryStore]]:
    url = postgres_target_factory()
    opened = [eventstore.open(url) for _ in range(WRITERS + 1)]
    yield opened
    for store in opened:
        store.close()


def test_a_tailing_reader_under_16_writers_sees_every_event_once_in_history_order(
    stores: list[HistoryStore],
) -> None:
    reader, writers = stores[0], stores[1:]
    stop = threading.Event()
    seen: list[FeedRecord] = []
    errors: list[BaseException] = []
    tail = threading.Thread(target=_tail, args=(reader, stop, seen))
    tail.start()
    threads = [
        threading.Thread(target=_write, args=(store, n, errors)) for n, store in enumerate(writers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    stop.set()
    tail.join(120)
    assert not errors and not tail.is_alive()
    assert not any(thread.is_alive() for thread in threads)

    final = list(reader.read_all())
    keys = [(r.instance_id, r.execution_id, r.event.event_id) for r in seen]
    assert len(set(keys)) == len(keys), "the tailing reader saw an event twice"
    assert seen == final, "the tailing reader's feed differs from the final feed"
    assert len(final) == reader.count()
    by_execution: dict[tuple[str, int], list[int]] = defaultdict(list)
    for instance_id, execution_id, event_id in keys:
        by_execution[(instance_id, execution_id)].append(event_id)
    for (instance_id, execution_id), ids in by_execution.items():
        assert ids == list(range(1, len(ids) + 1)), (instance_id, ids)
        assert ids == [e.event_id for e in reader.read(instance_id, execution_id)]
    # Some commits really did land out of position order (else nothing was tested).
    positions = [r.position for r in final]
    assert positions != sorted(positions)


def test_writers_of_one_execution_take_turns_and_others_do_not_wait(
    stores: list[HistoryStore],
) -> None:
    """While one transaction holds an append to `x` open, an append to `y`
    commits at once, and a second writer of `x` waits, then checks against
    what the first one committed."""
    first, second, third = stores[:3]
    first.append("x", 1, _batch(0, 1, '"a"'))
    outcome: list[BaseException | None] = []
    late = threading.Thread(
        target=lambda: outcome.append(_append_or_error(third, "x", 1, expected=1))
    )
    with first.transaction() as tx:
        tx.append("x", 1, _batch(1, 2, '"b"'))
        assert second.append("y", 1, _batch(0, 1, '"c"')).written
        late.start()
        _wait_for_a_lock_wait(second)
        assert not outcome
    late.join(60)
    (error,) = outcome
    assert isinstance(error, ConcurrencyError) and (error.expected, error.actual) == (1, 3)


def _wait_for_a_lock_wait(store: HistoryStore) -> None:
    """Until some session waits on an advisory lock (a cap against hangs only)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with store.transaction() as tx:
            row = tx.connection.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()
        if row is not None and row[0]:
            return
        time.sleep(0.01)
    pytest.fail("no writer waited on an advisory lock")


def _append_or_error(
    store: HistoryStore, instance_id: str, execution_id: int, *, expected: int
) -> BaseException | None:
    try:
        store.append(
            instance_id,
            execution_id,
            _batch(expected, 1, '"late"'),
            expected_last_event_id=expected,
        )
    except BaseException as exc:  # reported by the test
        return exc
    return None
