"""The feed head's part of the conformance suite (a base of HistoryStoreConformance).

`HistoryStore.head_position()` and `read_last()`: the position a reader
resumes after without skipping anything, and the events just before it,
wherever the suite runs (SQLite file and memory, PostgreSQL, group commit,
eventstore.aio). A backend without `store.protocol.HasFeedHead` passes
through the store's fallback, which reads the feed to its end.
"""

from __future__ import annotations

import pytest

from ..store import HistoryStore
from ._model import completed, scheduled, started

__all__ = ["FeedHeadConformance"]


class FeedHeadConformance:
    """Reading the global feed from its end."""

    def test_an_empty_feed_has_its_head_at_zero(self, store: HistoryStore) -> None:
        assert store.head_position() == 0
        assert store.read_last(10) == []
        assert store.read_last_raw(10) == []

    def test_the_head_is_the_last_event_the_feed_shows(self, store: HistoryStore) -> None:
        store.append("b", 1, [started(), scheduled(2)])
        store.append("a", 1, [started()])
        feed = list(store.read_all())
        head = store.head_position()
        assert head == feed[-1].position
        assert list(store.read_all(after=head)) == []
        # Resuming after the head gives exactly what is committed since.
        store.append("b", 1, [completed(3, 2)])
        store.append("c", 1, [started()])
        fresh = list(store.read_all(after=head))
        assert [(r.instance_id, r.event.event_id) for r in fresh] == [("b", 3), ("c", 1)]
        assert store.head_position() == fresh[-1].position

    def test_read_last_is_the_end_of_the_feed_in_commit_order(self, store: HistoryStore) -> None:
        for n in range(5):
            store.append(f"i{n}", 1, [started(), scheduled(2)])
        feed = list(store.read_all())
        for count in (1, 3, 10, 11, 50):
            assert store.read_last(count) == feed[-count:]
            raw = store.read_last_raw(count)
            assert [r.position for r in raw] == [r.position for r in feed[-count:]]
            assert [(r.instance_id, r.event_id) for r in raw] == [
                (r.instance_id, r.event.event_id) for r in feed[-count:]
            ]
        assert store.read_last(0) == [] and store.read_last_raw(0) == []

    def test_read_last_takes_a_whole_count(self, store: HistoryStore) -> None:
        for bad in (-1, 1.5, "3", None, True):
            with pytest.raises(ValueError, match="count must be a whole number"):
                store.read_last_raw(bad)  # type: ignore[arg-type]
