"""Histories the viewer's tests (and proposals/viewer.md's screenshots) look at.

`order-1` is laid out on a 1,000 ms clock so that the bars' places are known:
Reserve runs 200-700 ms (20% from the left, 50% wide), the timer waits
200-500 ms and fires late at 600 ms, Charge fails 700-800 ms, and the Ship
sub-orchestration is scheduled at 800 ms, starts at 850 ms (its own history is
in the store) and completes at 950 ms.
"""

from __future__ import annotations

import json
from typing import Final

import msgspec

from eventstore import events as ev
from eventstore.samples import legacy_rows
from eventstore.store import HistoryStore
from eventstore.testing import HistoryBuilder
from eventstore.testing.builder import DEFAULT_START_MS

T: Final = DEFAULT_START_MS
HOSTILE: Final = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
HOSTILE_INSTANCE: Final = "hostile-<b>bold</b>"
LEGACY_INSTANCE: Final = "legacy-v0b-parent-7-0"


def _append(store: HistoryStore, events: list[ev.Event]) -> None:
    first = events[0]
    store.append(first.instance_id, first.execution_id, events, expected_last_event_id=0)


def _with(event: ev.Event, **fields: object) -> ev.Event:
    return msgspec.structs.replace(event, **fields)


def order(store: HistoryStore) -> None:
    b = HistoryBuilder("order-1", "Checkout", {"order": 1}, start_ms=T, step_ms=0)
    b.advance(200).activity_scheduled("Reserve", {"sku": "A-1"}).timer_created(300)
    b.advance(400).timer_fired().advance(100).activity_completed("reserved", name="Reserve")
    b.activity_scheduled("Charge", {"amount": 12}).advance(100).activity_failed("card declined")
    b.sub_orchestration_scheduled("Ship", {"to": "Bern"}, instance="order-1-ship")
    b.advance(150).sub_orchestration_completed({"parcel": "P-9"}).advance(50).completed("done")
    events = b.build()
    events[0] = _with(events[0], trace_id="trace-7f3a", worker_id="worker-a")
    events[1] = _with(events[1], retry_count=2, scheduled_by_worker_id="worker-a")
    events[4] = _with(events[4], completed_by_worker_id="worker-b")
    _append(store, events)
    child = HistoryBuilder(
        "order-1-ship",
        "Ship",
        {"to": "Bern"},
        start_ms=T + 850,
        step_ms=0,
        parent_instance="order-1",
        parent_id=8,
    )
    _append(store, child.advance(100).completed({"parcel": "P-9"}).build())


def chain(store: HistoryStore) -> None:
    first = HistoryBuilder("chain-1", "Poller", 1, start_ms=T, step_ms=10)
    _append(store, first.activity("Poll", 1, result=False).continued_as_new(2).build())
    second = HistoryBuilder("chain-1", "Poller", 2, execution_id=2, start_ms=T + 100, step_ms=10)
    _append(store, second.activity("Poll", 2, result=True).completed("found").build())


def hostile(store: HistoryStore) -> None:
    b = HistoryBuilder(HOSTILE_INSTANCE, f"Evil{HOSTILE}", HOSTILE, start_ms=T, step_ms=5)
    b.activity(HOSTILE, HOSTILE, result={"html": HOSTILE})
    b.activity_scheduled("Boom", None).activity_failed(HOSTILE)
    b.activity("Far", None, result=1)
    events = b.failed(HOSTILE).build()
    # a completion stamped at the largest time a row can hold (past any calendar)
    events[6] = _with(events[6], timestamp_ms=2**63 - 1)
    _append(store, events)


def large(store: HistoryStore) -> None:
    document = {f"key-{i:03}": f"value {i}" for i in range(60)}
    b = HistoryBuilder("large-1", "Bulk", document, start_ms=T, step_ms=5)
    _append(store, b.completed(json.dumps(document)).build())


def long(store: HistoryStore) -> None:
    """522 events: more than a page shows at once (500)."""
    b = HistoryBuilder("long-1", "Batch", None, start_ms=T, step_ms=1)
    for i in range(260):
        b.activity("Step", i, result=i)
    _append(store, b.completed("all done").build())


def running(store: HistoryStore) -> None:
    """Started, an activity scheduled and not yet done: what the live test completes."""
    b = HistoryBuilder("waiting-1", "Waiter", None, start_ms=T, step_ms=100)
    _append(store, b.activity_scheduled("Slow", None).build())


def seed(store: HistoryStore) -> None:
    """Every history above, and the shipped legacy samples (no timestamps)."""
    order(store)
    chain(store)
    hostile(store)
    large(store)
    long(store)
    running(store)
    store.import_rows(legacy_rows())
