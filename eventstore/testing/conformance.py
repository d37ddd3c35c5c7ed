"""The backend conformance suite: the HistoryStore contract, shipped for any backend.

`HistoryStoreConformance` is a base class of test methods (append and read,
optimistic concurrency and idempotent retries, validation, transactions,
legacy rows, import and export, read-only handles, a Hypothesis model of the
contract). It is not collected by itself (its name does not start with
`Test`); a subclass whose name does is, and runs every test against the
stores its `create_store()` returns. It needs pytest and Hypothesis.

A third-party backend runs it like this (a `tests/test_my_backend.py`)::

    from eventstore import HistoryStore
    from eventstore.testing.conformance import HistoryStoreConformance

    class TestMyBackend(HistoryStoreConformance):
        def create_store(self, **options):
            # a fresh, EMPTY store per call; `options` are HistoryStore's
            # keywords (clock, codec, writer_version, observer)
            return HistoryStore(MyBackend(self.tmp_path / "db"), **options)

        def reopen_store(self, store, **options):
            # another handle on the same data; options may say readonly=True
            # (leave this out, and the read-only test is skipped)
            ...

Stores are closed after each test. `self.tmp_path` and `self.request` (the
pytest FixtureRequest) are set before a test runs, for hooks that need a
directory or other fixtures. Without overrides, the stores come from the
`history_store_factory` fixture of the eventstore pytest plugin, so the
backend is the one `--eventstore-backend` chooses (sqlite, memory, or a
postgresql:// URL): `class TestStore(HistoryStoreConformance): pass` checks a
PostgreSQL server's behaviour with `pytest --eventstore-backend=postgresql://...`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

import eventstore
from eventstore import (
    ConcurrencyError,
    ConflictError,
    DecodeError,
    EventOrderError,
    IdentityMismatchError,
    InvalidEventError,
    MissingStartError,
    ReadOnlyError,
    ValidationError,
)
from eventstore import events as ev

from ..samples import legacy_rows
from ..store import HistoryStore
from ._hostile import HOSTILE
from ._model import CLOCK_MS, check_append_model, completed, fixed_clock, scheduled, started
from .catalog_conformance import CatalogConformance
from .feed_conformance import FeedHeadConformance

__all__ = ["HOSTILE_INSTANCE_IDS", "HistoryStoreConformance", "StoreFactory"]

StoreFactory = Callable[..., HistoryStore]
"""`factory(**options)`: a fresh store; `factory(reopen=store, **options)`: another handle."""

LEGACY_OPEN = "legacy-v0a-hello-7-0"
"""A legacy sample history whose terminal event (id 9) the legacy test leaves out."""

HOSTILE_INSTANCE_IDS = HOSTILE


def legacy_sample() -> list[dict[str, Any]]:
    """Whole legacy rows (V0a and V0b) as `import_rows` takes them."""
    return list(legacy_rows())


def rowcount(store: HistoryStore) -> int:
    return store.count()


class HistoryStoreConformance(CatalogConformance, FeedHeadConformance):
    """The contract every backend keeps. Subclass it (name the subclass Test...).

    The execution catalog's tests come from `CatalogConformance`, the feed
    head's from `FeedHeadConformance`."""

    request: pytest.FixtureRequest
    tmp_path: Path

    def create_store(self, **options: Any) -> HistoryStore:
        """A fresh, empty store; `options` are HistoryStore's keywords.

        Default: the eventstore plugin's `history_store_factory` fixture."""
        factory: StoreFactory = self.request.getfixturevalue("history_store_factory")
        return factory(**options)

    def reopen_store(self, store: HistoryStore, **options: Any) -> HistoryStore:
        """Another handle on `store`'s data (`options` may hold readonly=True)."""
        factory: StoreFactory = self.request.getfixturevalue("history_store_factory")
        return factory(reopen=store, **options)

    @pytest.fixture(autouse=True)
    def _conformance_context(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.request = request
        self.tmp_path = tmp_path

    @pytest.fixture
    def store_factory(self) -> Iterator[StoreFactory]:
        opened: list[HistoryStore] = []

        def make(*, reopen: HistoryStore | None = None, **options: Any) -> HistoryStore:
            if reopen is None:
                store = self.create_store(**options)
            else:
                store = self.reopen_store(reopen, **options)
            opened.append(store)
            return store

        yield make
        for store in reversed(opened):
            store.close()

    @pytest.fixture
    def store(self, store_factory: StoreFactory) -> HistoryStore:
        return store_factory()

    def test_append_fills_identity_stamps_time_and_version(
        self, store_factory: StoreFactory
    ) -> None:
        store = store_factory(clock=fixed_clock, writer_version="1.2.3")
        result = store.append("order-7", 1, [started(), scheduled(2)], expected_last_event_id=0)
        assert result.written and result.last_event_id == 2
        for event in store.read("order-7"):
            assert event.instance_id == "order-7" and event.execution_id == 1
            assert event.timestamp_ms == CLOCK_MS and event.has_timestamp
            assert event.duroxide_version == "1.2.3"
        assert store.read("order-7") == result.events

    @pytest.mark.parametrize(
        "instance_id", HOSTILE_INSTANCE_IDS, ids=range(len(HOSTILE_INSTANCE_IDS))
    )
    def test_any_instance_id_round_trips_and_stays_data(
        self, store_factory: StoreFactory, instance_id: str
    ) -> None:
        """Instance ids reach SQL as values only (PostgreSQL binds the append's
        first statement client-side, so its quoting is tested here too)."""
        store = store_factory()
        store.append("neighbour", 1, [started()])
        store.append(instance_id, 1, [started()], expected_last_event_id=0)
        store.append(instance_id, 1, [scheduled(2)], expected_last_event_id=1)
        with pytest.raises(ConcurrencyError):
            store.append(instance_id, 1, [scheduled(3)], expected_last_event_id=1)
        assert [e.event_id for e in store.read(instance_id)] == [1, 2]
        assert {e.instance_id for e in store.read(instance_id)} == {instance_id}
        assert store.last_event_id(instance_id, 1) == 2
        assert sorted(store.instances()) == sorted(["neighbour", instance_id])
        assert store.count() == 3

    def test_given_timestamps_and_versions_are_kept(self, store: HistoryStore) -> None:
        store.append("i", 1, [started(timestamp_ms=5, duroxide_version="0.1.20")])
        (event,) = store.read("i")
        assert (event.timestamp_ms, event.duroxide_version) == (5, "0.1.20")

    def test_read_defaults_to_the_latest_execution(self, store: HistoryStore) -> None:
        store.append("i", 1, [started(), ev.OrchestrationContinuedAsNew(event_id=2, input="1")])
        store.append("i", 2, [started()])
        store.append("i", 2, [scheduled(2)])
        assert [e.event_id for e in store.read("i")] == [1, 2]
        assert store.read("i")[0].execution_id == 2
        assert [e.event_type for e in store.read("i", 1)][-1] == "OrchestrationContinuedAsNew"
        assert store.executions("i") == [1, 2]
        assert store.read("missing") == []
        assert store.executions("missing") == []

    def test_last_event_id_without_reading_the_history(self, store: HistoryStore) -> None:
        assert store.last_event_id("i") == 0
        store.append("i", 1, [started(), scheduled(2)])
        store.append("i", 2, [started()])
        assert store.last_event_id("i") == 1  # the latest execution
        assert store.last_event_id("i", 1) == 2
        assert store.last_event_id("i", 3) == 0

    def test_instances_lists_every_instance_once(self, store: HistoryStore) -> None:
        for name in ("b", "a", "c"):
            store.append(name, 1, [started()])
        store.append("a", 2, [started()])
        assert store.instances() == ["a", "b", "c"]

    def test_read_all_is_the_global_feed_in_commit_order(self, store: HistoryStore) -> None:
        store.append("b", 1, [started(), scheduled(2)])
        store.append("a", 1, [started()])
        store.append("b", 1, [completed(3, 2)])
        feed = list(store.read_all())
        assert [(r.instance_id, r.event.event_id) for r in feed] == [
            ("b", 1), ("b", 2), ("a", 1), ("b", 3)
        ]  # fmt: skip
        positions = [r.position for r in feed]
        assert positions == sorted(positions) and len(set(positions)) == 4
        for index, record in enumerate(feed):  # every record, and its position, resumes
            assert list(store.read_all(after=record)) == feed[index + 1 :]
            assert list(store.read_all(after=record.position)) == feed[index + 1 :]
        assert store.feed_held_back() == (0, None)  # nothing open: nothing held back
        assert list(store.read_all(after=feed[1], limit=1)) == feed[2:3]
        assert list(store.read_all(after=feed[-1])) == []

    def test_read_all_pages_through_large_feeds(self, store: HistoryStore) -> None:
        for n in range(30):
            store.append(f"i{n:02}", 1, [started(), *[scheduled(k) for k in range(2, 101)]])
        feed = list(store.read_all())
        assert len(feed) == 3000
        assert len({r.position for r in feed}) == 3000
        assert [r.instance_id for r in feed[::100]] == [f"i{n:02}" for n in range(30)]

    # -- optimistic concurrency and idempotency -----------------------------------------

    def test_expected_last_event_id_mismatch_raises(self, store: HistoryStore) -> None:
        store.append("i", 1, [started()], expected_last_event_id=0)
        with pytest.raises(ConcurrencyError) as caught:
            store.append("i", 1, [scheduled(3)], expected_last_event_id=2)
        assert (caught.value.expected, caught.value.actual) == (2, 1)
        with pytest.raises(ConcurrencyError):
            store.append("new", 1, [started()], expected_last_event_id=4)
        assert rowcount(store) == 1

    def test_retry_of_a_stored_batch_succeeds_without_writing(
        self, store_factory: StoreFactory
    ) -> None:
        ticks = iter(range(CLOCK_MS, CLOCK_MS + 1000))
        store = store_factory(clock=lambda: next(ticks))
        batch: list[ev.Event] = [started(), scheduled(2)]
        first = store.append("i", 1, batch, expected_last_event_id=0)
        store.append("i", 1, [completed(3, 2)], expected_last_event_id=2)
        # The acknowledgement of the first commit was lost: the runtime retries it,
        # with the same expected id, after a later batch already landed.
        retry = store.append("i", 1, batch, expected_last_event_id=0)
        assert not retry.written
        assert retry.events == first.events  # the stored, stamped events
        retry_any_expected = store.append("i", 1, batch, expected_last_event_id=17)
        assert not retry_any_expected.written
        assert rowcount(store) == 3

    def test_reused_ids_with_other_content_or_partial_overlap_raise(
        self, store: HistoryStore
    ) -> None:
        store.append("i", 1, [started(), scheduled(2)])
        with pytest.raises(ConcurrencyError):
            store.append("i", 1, [started(), scheduled(2, name="Other")])
        with pytest.raises(ConcurrencyError):
            store.append("i", 1, [scheduled(2), scheduled(3)])  # overlaps in part
        with pytest.raises(ConcurrencyError):
            store.append("i", 1, [started(timestamp_ms=99)])  # a different stamp is content
        assert rowcount(store) == 2

    def test_failed_batch_leaves_nothing_visible(self, store: HistoryStore) -> None:
        store.append("i", 1, [started()])
        bad_tail = ev.ActivityCompleted(event_id=3, source_event_id=2, result=7)  # type: ignore[arg-type]
        with pytest.raises(InvalidEventError):
            store.append("i", 1, [scheduled(2), bad_tail])
        assert [e.event_id for e in store.read("i")] == [1]

    # -- validation ------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("batch", "error"),
        [
            ([started(), started(1)], EventOrderError),
            ([started(2), scheduled(1)], EventOrderError),
            ([started(0)], EventOrderError),
            ([scheduled(1)], MissingStartError),
            ([started(instance_id="other")], IdentityMismatchError),
            ([started(execution_id=9)], IdentityMismatchError),
            ([started(), "not an event"], InvalidEventError),
            (
                [ev.OrchestrationStarted(event_id=1, name=5, version="1", input="1")],  # type: ignore[arg-type]
                InvalidEventError,
            ),
            (
                [ev.OrchestrationStarted(event_id="1", name="o", version="1", input="1")],  # type: ignore[arg-type]
                InvalidEventError,
            ),
            (
                [ev.OrchestrationStarted(event_id=1.0, name="o", version="1", input="1")],  # type: ignore[arg-type]
                InvalidEventError,
            ),
            ([started(timestamp_ms=-5)], InvalidEventError),
            (
                [started(), ev.ActivityFailed(event_id=2, source_event_id=1, details="boom")],  # type: ignore[arg-type]
                InvalidEventError,
            ),
        ],
    )
    def test_invalid_batches_raise_validation_errors_and_write_nothing(
        self, store: HistoryStore, batch: list[Any], error: type[ValidationError]
    ) -> None:
        with pytest.raises(error) as caught:
            store.append("i", 1, batch)
        assert isinstance(caught.value, ValidationError)
        assert "instance 'i'" in str(caught.value)
        assert rowcount(store) == 0

    def test_ids_before_the_last_stored_id_are_refused(self, store: HistoryStore) -> None:
        store.append("i", 1, [started(), scheduled(2)])
        with pytest.raises(ConcurrencyError):  # reuses a stored id with other content
            store.append("i", 1, [completed(2, 1)], expected_last_event_id=2)
        assert rowcount(store) == 2

    @pytest.mark.parametrize("bad", [("", 1), ("i", 0), ("i", -1), (None, 1)])
    def test_bad_instance_or_execution_arguments(
        self, store: HistoryStore, bad: tuple[Any, Any]
    ) -> None:
        with pytest.raises(InvalidEventError):
            store.append(bad[0], bad[1], [started()])

    def test_oversized_events_are_refused_on_append(self, store_factory: StoreFactory) -> None:
        store = store_factory(codec=eventstore.Codec(max_event_bytes=500))
        with pytest.raises(InvalidEventError, match="exceeds"):
            store.append("i", 1, [started(), scheduled(2, data="x" * 600)])
        assert rowcount(store) == 0

    def test_gaps_in_ids_are_refused_within_and_across_batches(self, store: HistoryStore) -> None:
        with pytest.raises(EventOrderError, match="event 5: event id 5 where 2 comes next"):
            store.append("i", 1, [started(), scheduled(5)])
        store.append("i", 1, [started(), scheduled(2)])
        with pytest.raises(EventOrderError, match="event 9: event id 9 where 3 comes next"):
            store.append("i", 1, [completed(9, 2)], expected_last_event_id=2)
        assert [e.event_id for e in store.read("i")] == [1, 2]

    @pytest.mark.parametrize("size", [300, 301, 701])
    def test_a_batch_larger_than_one_statement_appends_whole(
        self, store_factory: StoreFactory, size: int
    ) -> None:
        # SQLite inserts at most 300 rows per statement: these batches take one,
        # two and three statements, in one transaction.
        store = store_factory(clock=fixed_clock, writer_version="2.0.0")
        batch: list[ev.Event] = [started()]
        batch += [scheduled(n, data=f'"{n}"') for n in range(2, size + 1)]
        result = store.append("big", 1, batch, expected_last_event_id=0)
        assert result.last_event_id == size
        expected = [
            msgspec.structs.replace(
                e,
                instance_id="big",
                execution_id=1,
                timestamp_ms=CLOCK_MS,
                duroxide_version="2.0.0",
            )
            for e in batch
        ]
        assert result.events == expected
        assert store.read("big") == expected
        with pytest.raises(ConcurrencyError):
            more = [scheduled(n) for n in range(size + 1, size + 400)]
            store.append("big", 1, more, expected_last_event_id=7)
        assert store.last_event_id("big") == size

    # -- transactions --------------------------------------------------------------------

    def test_transaction_commits_appends_and_own_work_together(self, store: HistoryStore) -> None:
        with store.transaction() as tx:
            tx.append("i", 1, [started()], expected_last_event_id=0)
            tx.append("i", 1, [scheduled(2)], expected_last_event_id=1)
            assert tx.connection is not None
        assert len(store.read("i")) == 2

    def test_transaction_rolls_back_as_one(self, store: HistoryStore) -> None:
        store.append("keep", 1, [started()])
        with pytest.raises(RuntimeError), store.transaction() as tx:
            tx.append("i", 1, [started()])
            raise RuntimeError("the runtime's own work failed")
        assert store.read("i") == []
        assert rowcount(store) == 1

    def test_failed_append_inside_a_transaction_leaves_the_rest(self, store: HistoryStore) -> None:
        with store.transaction() as tx:
            tx.append("i", 1, [started()])
            with pytest.raises(ConcurrencyError):
                tx.append("i", 1, [scheduled(2)], expected_last_event_id=0)
            tx.append("i", 1, [scheduled(2)], expected_last_event_id=1)
        assert [e.event_id for e in store.read("i")] == [1, 2]

    # -- legacy rows, import and export ---------------------------------------------------

    def test_imported_legacy_rows_read_through_the_compatibility_layer(
        self, store: HistoryStore
    ) -> None:
        # The sample without its terminal event, so that V1 can continue it.
        rows = [r for r in legacy_sample() if (r["instance_id"], r["event_id"]) != (LEGACY_OPEN, 9)]
        report = store.import_rows(rows)
        assert report.inserted == len(rows)
        for instance_id in store.instances():
            for execution_id in store.executions(instance_id):
                events = store.read(instance_id, execution_id)
                assert events and all(not e.has_timestamp for e in events)
                assert all(e.instance_id == instance_id for e in events)
        # Appending V1 after legacy rows continues the same history.
        last = store.read(LEGACY_OPEN)[-1].event_id
        store.append(LEGACY_OPEN, 1, [ev.OrchestrationCompleted(event_id=last + 1, output='"v1"')])
        assert store.read(LEGACY_OPEN)[-1].has_timestamp

    def test_export_import_is_lossless(self, store_factory: StoreFactory) -> None:
        source = store_factory()
        source.import_rows(legacy_sample())
        source.append("fresh", 1, [started(), scheduled(2)])
        exported = list(source.export_rows())
        target = store_factory()
        target.import_rows(exported)
        again = list(target.export_rows())
        assert [{k: v for k, v in r.items()} for r in again] == exported
        # Importing the same rows again is a no-op; a clashing row is refused whole.
        assert target.import_rows(exported).skipped_identical == len(exported)
        clash = dict(exported[0], event_data=exported[1]["event_data"])
        with pytest.raises((ConflictError, DecodeError)):
            target.import_rows([*exported[:1], clash])
        assert target.count() == len(exported)

    def test_import_refuses_undecodable_rows_naming_the_line(self, store: HistoryStore) -> None:
        rows = legacy_sample()[:5]
        rows[3] = dict(rows[3], event_data='{"truncated":')
        with pytest.raises(DecodeError) as caught:
            store.import_rows(rows)
        assert "line 4" in str(caught.value)
        assert rowcount(store) == 0

    def test_import_refuses_rows_whose_columns_disagree(self, store: HistoryStore) -> None:
        (row,) = legacy_sample()[:1]
        with pytest.raises(DecodeError, match="disagree"):
            store.import_rows([dict(row, event_type="ActivityScheduled")])

    # -- readonly ------------------------------------------------------------------

    def test_readonly_store_cannot_write(self, store_factory: StoreFactory) -> None:
        writable = store_factory()
        writable.append("i", 1, [started()])
        readonly = store_factory(reopen=writable, readonly=True)
        assert len(readonly.read("i")) == 1
        with pytest.raises(ReadOnlyError):
            readonly.append("i", 1, [scheduled(2)])
        with pytest.raises(ReadOnlyError):
            readonly.import_rows([])
        with pytest.raises(ReadOnlyError), readonly.transaction():
            pass
        assert writable.count() == 1

    def test_observer_hears_of_transaction_appends_only_after_commit(
        self,
        store_factory: StoreFactory,
    ) -> None:
        heard: list[list[int]] = []

        class Observer:
            def appended(self, events: Any, seconds: float) -> None:
                heard.append([e.event_id for e in events])

            def decoded(self, generation: Any, count: int) -> None: ...

            def decode_failed(self, location: Any) -> None: ...

        store = store_factory(observer=Observer())
        store.append("i", 1, [started()])
        assert heard == [[1]]
        with pytest.raises(RuntimeError), store.transaction() as tx:
            tx.append("i", 1, [scheduled(2)])
            assert heard == [[1]]
            raise RuntimeError("rolled back")
        assert heard == [[1]]
        with store.transaction() as tx:
            tx.append("i", 1, [scheduled(2)])
            tx.append("i", 1, [completed(3, 2)])
            assert heard == [[1]]
        assert heard == [[1], [2], [3]]

    def test_a_row_disagreeing_with_its_columns_is_a_row_mismatch(
        self, store: HistoryStore
    ) -> None:
        (row,) = legacy_sample()[:1]
        with pytest.raises(eventstore.RowMismatchError, match="disagree"):
            store.import_rows([dict(row, event_type="ActivityScheduled")])
        with pytest.raises(DecodeError) as caught:
            store.import_rows([dict(row, event_data='{"broken"')])
        assert not isinstance(caught.value, eventstore.RowMismatchError)

    def test_appends_retries_and_conflicts_match_a_model(self, store_factory: StoreFactory) -> None:
        """Random appends, stale expected ids and retried slices (Hypothesis)."""
        check_append_model(store_factory(clock=fixed_clock))
