"""The execution catalog's part of the conformance suite (a base of HistoryStoreConformance).

Every test here runs wherever the suite runs (SQLite file and memory,
PostgreSQL, group commit, eventstore.aio): appends of every status, continue
as new chains, filters, refusals and retries that leave the catalog as it
was, transactions, import, and a Hypothesis model whose catalog must always
equal one derived from the history.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .. import events as ev
from ..error_details import ApplicationError, Cancelled
from ..errors import ConcurrencyError, EventOrderError, HistoryRuleError
from ..samples import legacy_rows
from ..store import HistoryStore
from ._hostile import HOSTILE
from ._model import CLOCK_MS, completed, fixed_clock, scheduled, started

__all__ = ["CatalogConformance"]

DAY = "2023-11-14"
"""The UTC day of CLOCK_MS (the suite's fixed clock)."""


def _failed(event_id: int, *, cancelled: bool = False, **kw: Any) -> ev.OrchestrationFailed:
    kind: Any = Cancelled(reason="operator") if cancelled else "OrchestrationFailed"
    details = ApplicationError(kind=kind, message="gave up")
    return ev.OrchestrationFailed(event_id=event_id, details=details, **kw)


def _ending(kind: str, event_id: int, at: int) -> ev.Event:
    if kind == "completed":
        return ev.OrchestrationCompleted(event_id=event_id, output='"done"', timestamp_ms=at)
    if kind == "continued_as_new":
        return ev.OrchestrationContinuedAsNew(event_id=event_id, input="1", timestamp_ms=at)
    return _failed(event_id, cancelled=kind == "cancelled", timestamp_ms=at)


def _stored_bytes(store: HistoryStore, instance_id: str, execution_id: int) -> int:
    return sum(
        len(row["event_data"].encode())
        for row in store.export_rows()
        if (row["instance_id"], row["execution_id"]) == (instance_id, execution_id)
    )


class CatalogConformance:
    """The execution catalog's contract (mixed into HistoryStoreConformance)."""

    def test_catalog_records_every_status(self, store_factory: Any) -> None:
        store: HistoryStore = store_factory(clock=fixed_clock)
        kinds = ["completed", "failed", "cancelled", "continued_as_new"]
        for n, kind in enumerate(kinds):
            start = started(timestamp_ms=CLOCK_MS + n)
            store.append(f"s-{kind}", 1, [start, scheduled(2)])
            store.append(f"s-{kind}", 1, [_ending(kind, 3, CLOCK_MS + 1000 + n)])
        store.append("s-running", 1, [started(), scheduled(2)])
        by_instance = {r.instance_id: r for r in store.catalog_executions()}
        assert {i: r.status for i, r in by_instance.items()} == {
            "s-completed": "completed",
            "s-failed": "failed",
            "s-cancelled": "cancelled",
            "s-continued_as_new": "continued_as_new",
            "s-running": "running",
        }
        done = by_instance["s-completed"]
        assert (done.name, done.version, done.execution_id) == ("Order", "1.0.0", 1)
        assert (done.started_ms, done.ended_ms, done.duration_ms) == (
            CLOCK_MS,
            CLOCK_MS + 1000,
            1000,
        )
        assert (done.last_event_id, done.event_count, done.shard) == (3, 3, DAY)
        assert done.bytes == _stored_bytes(store, "s-completed", 1)
        running = by_instance["s-running"]
        assert (running.ended_ms, running.duration_ms, running.last_event_id) == (None, None, 2)
        assert store.catalog_record("s-failed", 1) == by_instance["s-failed"]
        assert store.catalog_record("s-failed", 2) is None
        assert store.catalog_record("nobody", 1) is None
        assert list(store.catalog_mismatches()) == []

    def test_catalog_follows_a_continue_as_new_chain(self, store: HistoryStore) -> None:
        for execution in (1, 2, 3):
            batch: list[ev.Event] = [started(timestamp_ms=CLOCK_MS + execution)]
            if execution < 3:
                batch.append(_ending("continued_as_new", 2, CLOCK_MS + 10 + execution))
            store.append("loop", execution, batch)
        chain = store.catalog_executions(instance_like="loop")
        assert [(r.execution_id, r.status) for r in chain] == [
            (3, "running"),
            (2, "continued_as_new"),
            (1, "continued_as_new"),
        ]
        latest = store.catalog_executions(latest_only=True)
        assert [(r.instance_id, r.execution_id) for r in latest] == [("loop", 3)]
        assert store.catalog_executions(latest_only=True, status="continued_as_new") == []
        assert store.last_event_id("loop") == 1

    def test_catalog_filters_combine_and_page_in_a_stable_order(self, store: HistoryStore) -> None:
        for n in range(6):
            name = "Even" if n % 2 == 0 else "Odd"
            start = msgspec.structs.replace(started(timestamp_ms=CLOCK_MS + n * 1000), name=name)
            store.append(f"job_{n}", 1, [start])
        store.append("JOB%x", 1, [started(timestamp_ms=CLOCK_MS)])
        ids = [r.instance_id for r in store.catalog_executions()]
        assert ids == ["job_5", "job_4", "job_3", "job_2", "job_1", "JOB%x", "job_0"]
        assert [r.instance_id for r in store.catalog_executions(name="Odd")] == [
            "job_5",
            "job_3",
            "job_1",
        ]
        window = store.catalog_executions(since_ms=CLOCK_MS + 1000, until_ms=CLOCK_MS + 3000)
        assert [r.instance_id for r in window] == ["job_2", "job_1"]
        assert [r.instance_id for r in store.catalog_executions(limit=2, offset=1)] == [
            "job_4",
            "job_3",
        ]
        assert store.catalog_executions(limit=0) == []
        assert len(store.catalog_executions(instance_like="job%")) == 6  # case-sensitive
        assert [r.instance_id for r in store.catalog_executions(instance_like="JOB\\%_")] == [
            "JOB%x"
        ]
        assert [r.instance_id for r in store.catalog_executions(instance_like="job\\_1")] == [
            "job_1"
        ]
        assert len(store.catalog_executions(shard=DAY, status=["running", "failed"])) == 7
        assert store.catalog_executions(shard="root") == []
        with pytest.raises(ValueError, match="unknown status 'done'"):
            store.catalog_executions(status="done")
        with pytest.raises(ValueError, match="limit"):
            store.catalog_executions(limit=-1)

    def test_hostile_instance_ids_are_listed_and_matched_literally(
        self, store: HistoryStore
    ) -> None:
        hostile = [*HOSTILE, "100%_done\\", "a_b", "axb", "[*?]"]
        for n, instance_id in enumerate(hostile):
            store.append(instance_id, 1, [started(timestamp_ms=CLOCK_MS + n)])
        assert {r.instance_id for r in store.catalog_executions()} == set(hostile)
        for instance_id in hostile:
            literal = instance_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            found = store.catalog_executions(instance_like=literal)
            assert [r.instance_id for r in found] == [instance_id], instance_id
            assert store.catalog_record(instance_id, 1) is not None
        assert len(store.catalog_executions(instance_like="a_b")) == 2  # `_` is any one
        lone = store.catalog_executions(instance_like="100%\\")  # a lone \ is literal
        assert [r.instance_id for r in lone] == ["100%_done\\"]
        assert store.catalog_executions(since_ms=2**63 - 1) == []
        nul = msgspec.structs.replace(started(), name="a\x00b", version="\x00")
        store.append("nul-name", 1, [nul])  # the event keeps NUL; PostgreSQL text cannot
        record = store.catalog_record("nul-name", 1)
        assert record is not None and (record.name, record.version) == ("a\ufffdb", "\ufffd")
        assert store.catalog_executions(name="a\x00b") == [record]
        with pytest.raises(ValueError, match="since_ms"):
            store.catalog_executions(since_ms=2**64)

    def test_refusals_and_retries_leave_the_catalog_as_it_was(self, store: HistoryStore) -> None:
        store.append("r", 1, [started(), scheduled(2)])
        before = store.catalog_record("r", 1)
        with pytest.raises(ConcurrencyError):
            store.append("r", 1, [completed(3, 2)], expected_last_event_id=1)
        with pytest.raises(EventOrderError):
            store.append("r", 1, [completed(5, 2)])
        with pytest.raises(HistoryRuleError):
            store.append("r", 1, [completed(3, 99)])
        assert not store.append("r", 1, [scheduled(2)]).written  # an identical retry
        assert store.catalog_record("r", 1) == before
        store.append("r", 1, [completed(3, 2)], expected_last_event_id=2)
        after = store.catalog_record("r", 1)
        assert after is not None and before is not None
        assert (after.last_event_id, after.event_count) == (3, 3)
        assert after.bytes > before.bytes
        assert list(store.catalog_mismatches()) == []

    def test_a_rolled_back_transaction_leaves_no_catalog_row(self, store: HistoryStore) -> None:
        with pytest.raises(RuntimeError), store.transaction() as tx:
            tx.append("t", 1, [started()])
            raise RuntimeError("the runtime's own work failed")
        assert store.catalog_record("t", 1) is None
        with store.transaction() as tx:
            tx.append("t", 1, [started()])
            tx.append("t", 1, [scheduled(2)])
        record = store.catalog_record("t", 1)
        assert record is not None and record.event_count == 2

    def test_imported_and_legacy_rows_are_catalogued(self, store_factory: Any) -> None:
        source: HistoryStore = store_factory()
        source.append("copied", 1, [started(timestamp_ms=CLOCK_MS), scheduled(2)])
        target: HistoryStore = store_factory()
        target.import_rows(source.export_rows())
        assert target.catalog_record("copied", 1) == source.catalog_record("copied", 1)
        rows = list(legacy_rows())
        target.import_rows(rows)
        instance_id = rows[0]["instance_id"]
        old = target.catalog_record(instance_id, 1)
        assert old is not None and old.name is not None
        assert old.event_count == sum(r["instance_id"] == instance_id for r in rows)
        assert (old.started_ms, old.ended_ms, old.shard) == (None, None, "root")
        assert target.catalog_executions(since_ms=0) == [target.catalog_record("copied", 1)]
        assert len(target.catalog_executions(shard="root")) == len(
            {(r["instance_id"], r["execution_id"]) for r in rows}
        )
        assert list(target.catalog_mismatches()) == []

    def test_rebuild_and_catch_up_agree_with_appends(self, store: HistoryStore) -> None:
        for n in range(5):
            store.append(f"b{n}", 1, [started(), scheduled(2)])
        kept = store.catalog_executions()
        assert store.rebuild_catalog() == 5
        assert store.catalog_executions() == kept
        assert store.catalog_catch_up() == 0  # nothing written past the catalog
        store.append("b0", 1, [completed(3, 2)])
        assert store.catalog_catch_up() == 0
        assert list(store.catalog_mismatches()) == []

    def test_catalog_always_equals_a_rebuild(self, store: HistoryStore) -> None:
        """Any sequence of appends, retries, stale appends and endings: the
        kept catalog equals the one derived from the history."""
        check_catalog_model(store)


_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.integers(1, 2),
        st.sampled_from(["next", "retry", "stale", "end", "fail", "cancel"]),
    ),
    max_size=12,
)


def _batch(action: str, history: list[ev.Event]) -> list[ev.Event]:
    last = history[-1].event_id if history else 0
    if action == "retry" and history:
        return history[-1:]
    if action in ("end", "fail", "cancel") and history:
        kind = {"end": "completed", "fail": "failed", "cancel": "cancelled"}[action]
        return [_ending(kind, last + 1, CLOCK_MS + last)]
    return [started() if last == 0 else scheduled(last + 1)]


def check_catalog_model(store: HistoryStore) -> None:
    runs = iter(range(10**9))

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(steps=_STEPS)
    def run(steps: list[tuple[str, int, str]]) -> None:
        prefix = f"h{next(runs)}"
        stored: dict[tuple[str, int], list[ev.Event]] = {}
        for instance, execution, action in steps:
            key = (f"{prefix}-{instance}", execution)
            history = stored.setdefault(key, [])
            if history and history[-1].event_type in ev.TERMINAL_TYPES:
                continue
            last = history[-1].event_id if history else 0
            expected = last - 1 if action == "stale" and last > 0 else None
            try:
                result = store.append(
                    *key, _batch(action, history), expected_last_event_id=expected
                )
            except ConcurrencyError:
                continue
            if result.written:
                history.extend(result.events)
        assert list(store.catalog_mismatches()) == []
        for (instance_id, execution_id), history in stored.items():
            record = store.catalog_record(instance_id, execution_id)
            if not history:
                assert record is None
                continue
            assert record is not None
            assert (record.event_count, record.last_event_id) == (
                len(history),
                history[-1].event_id,
            )

    run()
