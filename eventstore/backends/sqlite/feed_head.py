"""The end of the SQLite feed (store.protocol.HasFeedHead), a base class of SQLiteBackend.

SQLite has one writer at a time and a reader sees only committed
transactions, so the feed in rowid order never gains a row below one already
seen: the newest rows are the feed's end, and resuming after the last of them
skips nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from ...store.protocol import FeedRow

__all__ = ["FeedHeadReads"]

_LAST: Final = (
    "SELECT rowid, instance_id, execution_id, event_id, event_type,"
    " CAST(event_data AS BLOB), created_at FROM history ORDER BY rowid DESC LIMIT ?"
)


class FeedHeadReads:
    _all: Callable[..., list[Any]]

    def feed_last(self, limit: int) -> list[FeedRow]:
        """The last `limit` rows in feed order (one backward walk of the rowid)."""
        rows = self._all(_LAST, (limit,), tolerant=True)
        rows.reverse()
        return rows
