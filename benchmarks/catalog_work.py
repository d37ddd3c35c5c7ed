"""One workload of the execution catalog's instruction counts (run under callgrind).

    python -m benchmarks.catalog_work MODE COUNT STORE
    python -m benchmarks.catalog_work prepare 1|0 STORE   (with|without the catalog)

MODE:
  append-catalog   COUNT appends to a store that keeps the catalog
  append-plain     the same appends to a store without one (its tables dropped)
  last-history     COUNT `last_event_id` reads as the store does them (MAX(event_id)
                   over the history's key index)
  last-catalog     COUNT reads of the same id from the catalog's row, on the same path

Appends are shaped like duroxide's turns: executions of six events written in
three appends of two (start and schedule, completion and schedule, completion
and the end). `benchmarks/catalog_callgrind.py` runs two counts of each mode and
divides the difference, so start-up cancels.
"""

from __future__ import annotations

import sys
from pathlib import Path

import eventstore
from eventstore import events as ev

from .common import drop_catalog

PRELOAD = 2000
"""Executions stored before the measured part (the indexes have depth)."""


def _turns(instance_id: str) -> list[list[ev.Event]]:
    return [
        [
            ev.OrchestrationStarted(event_id=1, name="Order", version="1.0.0", input='{"n": 1}'),
            ev.ActivityScheduled(event_id=2, name="Charge", input='{"amount": 12}'),
        ],
        [
            ev.ActivityCompleted(event_id=3, source_event_id=2, result='{"ok": true}'),
            ev.ActivityScheduled(event_id=4, name="Ship", input='{"to": "x"}'),
        ],
        [
            ev.ActivityCompleted(event_id=5, source_event_id=4, result='"shipped"'),
            ev.OrchestrationCompleted(event_id=6, output='"done"'),
        ],
    ]


def prepare(path: Path, keep_catalog: bool) -> None:
    """The preloaded store a measured run opens (made outside callgrind)."""
    with eventstore.open(str(path)) as store:
        for n in range(PRELOAD):
            for turn in _turns(f"pre-{n}"):
                store.append(f"pre-{n}", 1, turn)
    if not keep_catalog:
        drop_catalog(path)


def main() -> None:
    mode, count, path = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    if mode == "prepare":
        prepare(path, keep_catalog=count == 1)
        return
    store = eventstore.open(str(path))
    if mode.startswith("append"):
        appends = 0
        n = 0
        while appends < count:
            instance_id = f"run-{n}"
            for turn in _turns(instance_id):
                store.append(instance_id, 1, turn)
                appends += 1
            n += 1
    else:
        backend = store.backend
        history = "SELECT MAX(event_id) FROM history WHERE instance_id = ? AND execution_id = ?"
        catalog = (
            "SELECT last_event_id FROM eventstore_executions"
            " WHERE instance_id = ? AND execution_id = ?"
        )
        sql = history if mode == "last-history" else catalog
        read = backend._all  # type: ignore[attr-defined]  # the path last_event_id takes
        for n in range(count):
            read(sql, (f"pre-{n % PRELOAD}", 1))
    store.close()


if __name__ == "__main__":
    main()
