"""A Hypothesis state machine drives concurrent tasks against eventstore.aio.

Each step starts a handful of tasks at once (asyncio.gather): next batches,
stale expected ids, identical retries, appends that must start an execution
and do not, over a few executions, so that one group holds appends to the
same execution, refusals and retries together. The tasks queue in the order
they start, and a group must equal its appends committed one after another
in that order: the model applies them so and predicts each outcome; the
invariant compares what the store holds, read back two ways.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

import eventstore.aio
from eventstore import ConcurrencyError, EventOrderError, MissingStartError
from eventstore import events as ev
from eventstore.testing._model import fixed_clock, scheduled, started

KEYS = [("a", 1), ("a", 2), ("b", 1)]
KINDS = ["next", "next", "stale", "retry", "no-start"]
_UNSTAMPED = {"instance_id": "", "execution_id": 0, "timestamp_ms": 0, "duroxide_version": ""}

Plan = tuple[str, int, list[ev.Event], int | None, Any]
"""instance, execution, batch, expected id, and what must come of it."""


class ConcurrentAppends(RuleBasedStateMachine):
    directory: Path
    group_size: int

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        # A fresh file per example: id(self) may be reused once an example's
        # machine is freed, and a reused file would hold its events.
        self.path = str(self.directory / f"model-{uuid.uuid4().hex}.db")
        self.store = self.loop.run_until_complete(
            eventstore.aio.open(self.path, clock=fixed_clock, group_size=self.group_size)
        )
        self.model: dict[tuple[str, int], list[ev.Event]] = {key: [] for key in KEYS}

    def teardown(self) -> None:
        self.loop.run_until_complete(self.store.close())
        self.loop.close()

    def _plan(self, kind: str, key: tuple[str, int], size: int, pending: dict[Any, int]) -> Plan:
        """One task's append, and its outcome, given the appends planned before it."""
        stored = self.model[key]
        last = pending.get(key, stored[-1].event_id if stored else 0)
        instance, execution = key
        if kind == "retry" and stored:
            resent = [msgspec.structs.replace(e, **_UNSTAMPED) for e in stored[-size:]]
            return instance, execution, resent, None, "retry"
        if kind == "stale" and last > 0:
            return instance, execution, [scheduled(last + 1)], last - 1, ConcurrencyError
        if kind == "no-start" and last == 0:
            return instance, execution, [scheduled(1)], 0, MissingStartError
        batch: list[ev.Event] = [
            started(n) if n == 1 else scheduled(n, data=json.dumps(n))
            for n in range(last + 1, last + 1 + size)
        ]
        pending[key] = last + size
        return instance, execution, batch, last, "written"

    @rule(
        steps=st.lists(
            st.tuples(st.sampled_from(KINDS), st.sampled_from(KEYS), st.integers(1, 3)),
            min_size=1,
            max_size=10,
        )
    )
    def tasks_append_at_once(self, steps: list[tuple[str, tuple[str, int], int]]) -> None:
        pending: dict[Any, int] = {}
        plans = [self._plan(kind, key, size, pending) for kind, key, size in steps]

        async def together() -> list[Any]:
            calls = [
                self.store.append(i, x, batch, expected_last_event_id=expected)
                for i, x, batch, expected, _ in plans
            ]
            return await asyncio.gather(*calls, return_exceptions=True)

        outcomes = self.loop.run_until_complete(together())
        for (instance, execution, batch, _, expected), got in zip(plans, outcomes, strict=True):
            if expected == "written":
                assert not isinstance(got, BaseException), got
                assert got.written
                self.model[(instance, execution)].extend(got.events)
            elif expected == "retry":
                assert not isinstance(got, BaseException), got
                assert not got.written and len(got.events) == len(batch)
            else:
                assert isinstance(got, expected | EventOrderError), got

    @invariant()
    def store_matches_model(self) -> None:
        async def read() -> tuple[dict[Any, list[ev.Event]], list[Any]]:
            held = {key: await self.store.read(*key) for key in KEYS}
            return held, [r async for r in self.store.read_all()]

        held, feed = self.loop.run_until_complete(read())
        assert held == self.model
        assert len(feed) == sum(map(len, self.model.values()))
        for key in KEYS:  # the feed holds each execution's events in id order
            ids = [r.event.event_id for r in feed if (r.instance_id, r.execution_id) == key]
            assert ids == [e.event_id for e in self.model[key]]


@pytest.mark.parametrize("group_size", [128, 3])
def test_concurrent_tasks_keep_the_append_contract(tmp_path: Path, group_size: int) -> None:
    machine = type(
        "ConcurrentAppendsRun",
        (ConcurrentAppends,),
        {"directory": tmp_path, "group_size": group_size},
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=40,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
