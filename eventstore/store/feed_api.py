"""HistoryStore's reads from the end of the global feed (a base class of HistoryStore).

`eventstore tail` shows the last events and follows from there, as `tail -f`
does; a consumer that starts "from now" asks where now is. Both need the feed's
head: the position after which a reader resumes without skipping anything.
On PostgreSQL that is not the newest row: the feed shows only rows below the
snapshot's horizon (backends/postgres/writer.py), and a transaction still open
may yet commit rows that the feed places before a newer committed one. The
backend answers (`HasFeedHead.feed_last`, under the same horizon as its feed);
a backend without it is read to the end.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, cast

from .protocol import HasFeedHead
from .results import FeedRecord
from .row_types import RawRow

if TYPE_CHECKING:
    from .history import HistoryStore

__all__ = ["FeedHeadMethods", "check_count", "records"]


def check_count(count: object) -> int:
    """`count` of the last rows asked for, checked: a whole number from 0."""
    if type(count) is not int or count < 0:
        raise ValueError(f"count must be a whole number from 0, not {count!r}")
    return count


def records(store: HistoryStore, rows: list[RawRow]) -> list[FeedRecord]:
    """Feed rows decoded with the store's checks (DecodeError names a bad row)."""
    decode = store.decode_raw
    return [FeedRecord(r.position, r.instance_id, r.execution_id, decode(r).event) for r in rows]


class FeedHeadMethods:
    """The end of the global feed, as HistoryStore offers it."""

    def head_position(self) -> int:
        """The feed position of the last event a reader can see now (0: none).

        Resuming after it (`read_all(after=...)`, `wait_for_events`,
        `eventstore tail --after`) skips nothing: every event committed later,
        including those a PostgreSQL transaction open now commits, comes after
        it. One indexed read on SQLite and PostgreSQL.
        """
        rows = self.read_last_raw(1)
        return rows[-1].position if rows else 0

    def read_last_raw(self, count: int) -> list[RawRow]:
        """The last `count` rows of the global feed as stored, in commit order;
        the last of them is at `head_position()`. Fewer when the feed is shorter."""
        if check_count(count) == 0:
            return []
        store = cast("HistoryStore", self)
        backend = store.backend
        if isinstance(backend, HasFeedHead):
            return [RawRow._make(row) for row in backend.feed_last(count)]
        # Any other backend: the feed read to its end, keeping the last rows only.
        return list(deque(store.read_all_raw(), maxlen=count))

    def read_last(self, count: int) -> list[FeedRecord]:
        """`read_last_raw`, decoded: the last `count` events of the global feed
        in commit order (a row that does not decode raises DecodeError naming it)."""
        return records(cast("HistoryStore", self), self.read_last_raw(count))
