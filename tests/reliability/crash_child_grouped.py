"""The process the group-commit crash tests kill: many appenders, one commit for several.

    python -m tests.reliability.crash_child_grouped TARGET SEED aio|threads

APPENDERS asyncio tasks (eventstore.aio) or threads (group_commit=True) each
append batches forever to instances of their own, so their appends meet in
groups. Every event's payload names its batch and the batch's size; after
an append returns, its appender prints `ACK instance first last` and
flushes: from then on the batch must survive anything.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import threading
from typing import Any

import eventstore
import eventstore.aio
from eventstore import events as ev

APPENDERS = 16
_print = threading.Lock()


def _batch(rnd: random.Random, first: int, batch_id: str) -> list[ev.Event]:
    size = rnd.randint(1, 20)
    batch: list[ev.Event] = []
    for event_id in range(first, first + size):
        payload = json.dumps({"batch": batch_id, "size": size, "pad": "x" * rnd.randint(0, 300)})
        if event_id == 1:
            batch.append(
                ev.OrchestrationStarted(event_id=1, name="Crash", version="1.0.0", input=payload)
            )
        else:
            batch.append(ev.ActivityScheduled(event_id=event_id, name="Work", input=payload))
    return batch


def _ack(instance_id: str, first: int, last: int) -> None:
    with _print:
        sys.stdout.write(f"ACK {instance_id} {first} {last}\n")
        sys.stdout.flush()


async def _task(store: Any, seed: int, k: int) -> None:
    rnd = random.Random(seed * 1000 + k)
    names = [f"crash-{k}-{n}" for n in range(2)]
    last = {name: await store.last_event_id(name, 1) for name in names}
    for number in range(10**9):
        name = rnd.choice(names)
        batch = _batch(rnd, last[name] + 1, f"{seed}-{k}-{number}")
        await store.append(name, 1, batch, expected_last_event_id=last[name])
        _ack(name, last[name] + 1, batch[-1].event_id)
        last[name] = batch[-1].event_id


def _thread(store: eventstore.HistoryStore, seed: int, k: int) -> None:
    rnd = random.Random(seed * 1000 + k)
    names = [f"crash-{k}-{n}" for n in range(2)]
    last = {name: store.last_event_id(name, 1) for name in names}
    for number in range(10**9):
        name = rnd.choice(names)
        batch = _batch(rnd, last[name] + 1, f"{seed}-{k}-{number}")
        store.append(name, 1, batch, expected_last_event_id=last[name])
        _ack(name, last[name] + 1, batch[-1].event_id)
        last[name] = batch[-1].event_id


async def _tasks(target: str, seed: int) -> None:
    store = await eventstore.aio.open(target, busy_timeout_ms=30_000)
    await asyncio.gather(*(_task(store, seed, k) for k in range(APPENDERS)))


def main() -> None:
    target, seed, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode == "aio":
        asyncio.run(_tasks(target, seed))
        return
    store = eventstore.open(target, busy_timeout_ms=30_000, group_commit=True)
    threads = [threading.Thread(target=_thread, args=(store, seed, k)) for k in range(APPENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
