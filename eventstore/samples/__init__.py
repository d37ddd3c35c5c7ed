"""Sample histories for `eventstore demo` (and `make run`).

V1 histories are built from the event types, one batch per orchestration turn
as a runtime would append them; the legacy rows are a slice of histories that
duroxide wrote, rewritten in the V0a and V0b formats (packaged as JSON lines).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

from .. import events as ev

__all__ = ["legacy_rows", "sample_histories"]

Turn = list[ev.Event]


def _greeting(now_ms: int) -> list[Turn]:
    return [
        [
            ev.OrchestrationStarted(event_id=1, name="Greeting", version="1.0.0", input='"ada"'),
            ev.ActivityScheduled(event_id=2, name="Greet", input='"ada"'),
        ],
        [
            ev.ActivityCompleted(event_id=3, source_event_id=2, result='"hello, ada"'),
            ev.TimerCreated(event_id=4, fire_at_ms=now_ms + 500),
        ],
        [
            ev.TimerFired(event_id=5, source_event_id=4, fire_at_ms=now_ms + 500),
            ev.OrchestrationCompleted(event_id=6, output='"hello, ada"'),
        ],
    ]


def _payment() -> list[Turn]:
    return [
        [
            ev.OrchestrationStarted(
                event_id=1, name="Payment", version="2.1.0", input='{"eur":12}'
            ),
            ev.ActivityScheduled(event_id=2, name="Charge", input='{"eur":12}', tag="billing"),
        ],
        [
            ev.ActivityFailed(
                event_id=3,
                source_event_id=2,
                details=ev.ApplicationError(
                    kind="ActivityFailed", message="card declined", retryable=False
                ),
            ),
            ev.CustomStatusUpdated(event_id=4, status="declined"),
            ev.OrchestrationFailed(
                event_id=5,
                details=ev.ApplicationError(
                    kind="OrchestrationFailed", message="payment failed", retryable=False
                ),
            ),
        ],
    ]


def _approval() -> list[Turn]:
    return [
        [
            ev.OrchestrationStarted(event_id=1, name="Approval", version="1.0.0", input="null"),
            ev.ExternalSubscribed(event_id=2, name="Approve"),
        ],
        [
            ev.ExternalEvent(event_id=3, name="Approve", data='{"by":"ops"}'),
            ev.SubOrchestrationScheduled(
                event_id=4, name="Notify", instance="approval-1::sub::4", input='"ops"'
            ),
        ],
    ]


def sample_histories(now_ms: int) -> Iterator[tuple[str, int, list[Turn]]]:
    """(instance, execution, turns) for a few V1 histories; the last one is running."""
    yield "greeting-1", 1, _greeting(now_ms)
    yield "payment-1", 1, _payment()
    yield "approval-1", 1, _approval()


def legacy_rows() -> Iterator[dict[str, Any]]:
    """Whole legacy rows (V0a and V0b), as `eventstore import` takes them."""
    text = resources.files(__package__).joinpath("legacy.jsonl").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.strip():
            yield json.loads(line)
