"""Event helpers for the conformance suite, and its Hypothesis model of append.

The model runs random appends, stale expected ids and retried slices against
one store and a plain-Python picture of what it must hold. Every example
works in instances of its own, so one store serves every example (a fresh
store per example would open dozens of databases on a server backend).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from .. import events as ev
from ..errors import ConcurrencyError, EventOrderError
from ..store import HistoryStore

CLOCK_MS = 1_700_000_000_000


def fixed_clock() -> int:
    return CLOCK_MS


def started(event_id: int = 1, **kw: Any) -> ev.OrchestrationStarted:
    return ev.OrchestrationStarted(
        event_id=event_id, name="Order", version="1.0.0", input="7", **kw
    )


def scheduled(event_id: int, name: str = "Greet", data: str = '"x"') -> ev.ActivityScheduled:
    return ev.ActivityScheduled(event_id=event_id, name=name, input=data)


def completed(event_id: int, source: int, result: str = '"ok"') -> ev.ActivityCompleted:
    return ev.ActivityCompleted(event_id=event_id, source_event_id=source, result=result)


_UNSTAMPED = {"instance_id": "", "execution_id": 0, "timestamp_ms": 0, "duroxide_version": ""}
"""What the runtime's own events carry before the store stamps them."""


class AppendModel(RuleBasedStateMachine):
    """Random appends, retries and conflicts against a plain-Python model."""

    store: HistoryStore
    runs: Iterator[int]

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[tuple[str, int], list[ev.Event]] = {}
        self.prefix = f"model-{next(self.runs)}"
        self.baseline = self.store.count()

    def _instance(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    @rule(
        instance=st.sampled_from(["a", "b"]),
        execution=st.integers(1, 2),
        size=st.integers(1, 4),
        use_expected=st.booleans(),
    )
    def append_next(self, instance: str, execution: int, size: int, use_expected: bool) -> None:
        stored = self.model.setdefault((instance, execution), [])
        last = stored[-1].event_id if stored else 0
        batch: list[ev.Event] = []
        for n in range(last + 1, last + 1 + size):
            batch.append(started(n) if n == 1 else scheduled(n, data=json.dumps(n)))
        result = self.store.append(
            self._instance(instance),
            execution,
            batch,
            expected_last_event_id=last if use_expected else None,
        )
        assert result.written
        stored.extend(result.events)

    @rule(
        instance=st.sampled_from(["a", "b"]), execution=st.integers(1, 2), wrong=st.integers(1, 3)
    )
    def stale_expected_id_fails(self, instance: str, execution: int, wrong: int) -> None:
        stored = self.model.get((instance, execution), [])
        last = stored[-1].event_id if stored else 0
        with pytest.raises((ConcurrencyError, EventOrderError)):
            self.store.append(
                self._instance(instance),
                execution,
                [scheduled(last + 5)],
                expected_last_event_id=last + wrong,
            )

    @rule(instance=st.sampled_from(["a", "b"]), execution=st.integers(1, 2), data=st.data())
    def retry_a_stored_slice(self, instance: str, execution: int, data: st.DataObject) -> None:
        stored = self.model.get((instance, execution), [])
        if not stored:
            return
        start = data.draw(st.integers(0, len(stored) - 1))
        end = data.draw(st.integers(start + 1, len(stored)))
        # The runtime's own (unstamped) events, as it would resend them.
        resent = [msgspec.structs.replace(e, **_UNSTAMPED) for e in stored[start:end]]
        result = self.store.append(self._instance(instance), execution, resent)
        assert not result.written
        assert result.events == stored[start:end]

    @invariant()
    def store_matches_model(self) -> None:
        for (instance, execution), events in self.model.items():
            assert self.store.read(self._instance(instance), execution) == events
        expected = self.baseline + sum(len(v) for v in self.model.values())
        assert self.store.count() == expected


def check_append_model(store: HistoryStore, max_examples: int = 60) -> None:
    """Run the model against `store` (its clock should be `fixed_clock`)."""
    # A subclass per run: Hypothesis builds the machine with no arguments.
    machine = type("AppendModelRun", (AppendModel,), {"store": store, "runs": itertools.count()})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
