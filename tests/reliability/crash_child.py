"""The process the crash tests kill: appends batches forever, acknowledging each.

    python -m tests.reliability.crash_child TARGET SEED

Each batch goes to one of a few instances; every event's payload names its
batch and the batch's size, so the parent can tell a whole batch from a part
of one. After `append` returns, the child prints `ACK instance first last` and
flushes: from then on the batch must survive anything.
"""

from __future__ import annotations

import json
import random
import sys

import eventstore
from eventstore import events as ev

INSTANCES = 5


def main() -> None:
    target, seed = sys.argv[1], int(sys.argv[2])
    rnd = random.Random(seed)
    options = {} if target.startswith("postgresql://") else {"busy_timeout_ms": 30_000}
    store = eventstore.open(target, **options)
    last = {}
    for n in range(INSTANCES):
        instance_id = f"crash-{n}"
        last[instance_id] = store.last_event_id(instance_id, 1)
    batch_number = 0
    while True:
        instance_id = f"crash-{rnd.randrange(INSTANCES)}"
        size = rnd.randint(1, 20)
        batch_id = f"{seed}-{batch_number}"
        batch_number += 1
        first = last[instance_id] + 1
        batch: list[ev.Event] = []
        for event_id in range(first, first + size):
            payload = json.dumps(
                {"batch": batch_id, "size": size, "pad": "x" * rnd.randint(0, 500)}
            )
            if event_id == 1:
                batch.append(
                    ev.OrchestrationStarted(
                        event_id=1, name="Crash", version="1.0.0", input=payload
                    )
                )
            else:
                batch.append(ev.ActivityScheduled(event_id=event_id, name="Work", input=payload))
        store.append(instance_id, 1, batch, expected_last_event_id=last[instance_id])
        last[instance_id] = first + size - 1
        sys.stdout.write(f"ACK {instance_id} {first} {first + size - 1}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
