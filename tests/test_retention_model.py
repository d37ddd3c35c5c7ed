"""A Hypothesis state machine: appends, retention runs (some interrupted), and reads.

Whatever the order of appends on any day (execution ids reused after a purge
too), retention runs with any cut and --keep-last, and interruptions at any
step of a run (an exception from its progress callback: mid-census, mid-
archive, mid-purge), the table plus the verified archives hold every row
exactly once, byte for byte, and `store.read()` returns every execution as
it was appended.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

import eventstore
from eventstore import events as ev
from eventstore.lifecycle import retention
from eventstore.testing.lifecycle_conformance import DAY_MS, FIRST_DAY_MS
from tests.test_retention_crash import holdings


class _Interrupted(Exception):
    pass


class RetentionModel(RuleBasedStateMachine):
    directory: Path

    def __init__(self) -> None:
        super().__init__()
        self.path = self.directory / f"model-{uuid.uuid4().hex}"
        self.store = eventstore.open(str(self.path.with_suffix(".db")))
        self.names = itertools.count()
        self.rows: dict[Any, dict[str, Any]] = {}
        self.events: dict[tuple[str, int], list[ev.Event]] = {}

    def teardown(self) -> None:
        self.store.close()

    @rule(
        day=st.integers(0, 2),
        executions=st.integers(1, 3),
        last_ends=st.sampled_from(["completed", "completed", "failed", "running"]),
        copies=st.integers(1, 4),
    )
    def add_instances(self, day: int, executions: int, last_ends: str, copies: int) -> None:
        for _ in range(copies):
            self._add(f"m-{next(self.names)}", day, executions, last_ends)

    def _add(self, instance: str, day: int, executions: int, last_ends: str) -> None:
        at = FIRST_DAY_MS + day * DAY_MS
        for execution in range(1, executions + 1):
            batch: list[ev.Event] = [
                ev.OrchestrationStarted(
                    event_id=1, name="N", version="1.0.0", input="1", timestamp_ms=at
                )
            ]
            if execution < executions:
                batch.append(ev.OrchestrationContinuedAsNew(event_id=2, input="2"))
            elif last_ends == "completed":
                batch.append(ev.OrchestrationCompleted(event_id=2, output="3"))
            elif last_ends == "failed":
                batch.append(
                    ev.OrchestrationFailed(
                        event_id=2,
                        details=ev.ApplicationError(
                            kind="ActivityFailed", message="boom", retryable=False
                        ),
                    )
                )
            self.store.append(instance, execution, batch)
            self.events[(instance, execution)] = self.store.read(instance, execution)
        for row in self.store.export_rows():
            if row["instance_id"] == instance:
                self.rows[(instance, row["execution_id"], row["event_id"])] = row

    @rule(data=st.data(), day=st.integers(0, 2))
    def reuse_an_archived_id(self, data: st.DataObject, day: int) -> None:
        """A runtime starting a purged instance's execution 1 again: the table's
        rows are that execution from then on, and archived again, the newest copy."""
        gone = sorted(i for (i, e) in self.events if e == 1 and self.store.last_event_id(i, 1) == 0)
        if not gone:
            return
        instance = data.draw(st.sampled_from(gone))
        at = FIRST_DAY_MS + day * DAY_MS
        self.store.append(
            instance,
            1,
            [
                ev.OrchestrationStarted(
                    event_id=1, name="N", version="2.0.0", input="9", timestamp_ms=at
                ),
                ev.OrchestrationCompleted(event_id=2, output="again"),
            ],
        )
        self.events[(instance, 1)] = self.store.read(instance, 1)
        for key in [k for k in self.rows if k[:2] == (instance, 1)]:
            del self.rows[key]
        for row in self.store.export_rows():
            if row["instance_id"] == instance and row["execution_id"] == 1:
                self.rows[(instance, 1, row["event_id"])] = row

    @rule(
        cut=st.integers(1, 4),
        keep_last=st.integers(0, 2),
        stop_at=st.one_of(st.none(), st.integers(2, 6)),
    )
    def retire(self, cut: int, keep_last: int, stop_at: int | None) -> None:
        ticks = 0

        def progress(label: str, total: int | None) -> Callable[[int], object]:
            def advance(n: int = 1) -> None:
                nonlocal ticks
                ticks += 1
                if stop_at is not None and ticks >= stop_at:
                    raise _Interrupted

            return advance

        policy = retention.RetentionPolicy(
            cut=dt.date(2025, 11, 21) + dt.timedelta(days=cut),
            archive_dir=self.path,
            keep_last=keep_last,
        )
        with contextlib.suppress(_Interrupted):
            retention.run_retention(self.store, policy, progress=progress)
            # Finished: what it retired left the table, so the same run again
            # has nothing to move (a reused id archived again included).
            assert retention.run_retention(self.store, policy).rows == 0

    @invariant()
    def every_row_exactly_once(self) -> None:
        assert holdings(self.store) == self.rows

    @invariant()
    def reads_are_unchanged(self) -> None:
        for key, events in self.events.items():
            assert self.store.read(*key) == events


@pytest.fixture(autouse=True)
def small_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    # Many small members and purge batches: more places to be interrupted.
    monkeypatch.setattr(retention, "MEMBER_EXECUTIONS", 2)
    monkeypatch.setattr(retention, "PURGE_ROWS", 3)
    monkeypatch.setattr(retention, "INDEX_BATCH", 2)


def test_table_and_archives_hold_every_row_exactly_once(tmp_path: Path) -> None:
    machine = type("RetentionModelRun", (RetentionModel,), {"directory": tmp_path})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=40,
            stateful_step_count=16,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
