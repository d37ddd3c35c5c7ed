"""Where the PostgreSQL feed ends: its last row, and its head.

The feed runs in (transaction id, position) order and shows only rows below
the snapshot's horizon, `pg_snapshot_xmin` (writer.py argues why). Two ends
follow from that:

* `feed_end`: the last row of the table in that order, visible to the feed or
  not (the execution catalog's position, taken under the table's exclusive
  lock, where no transaction is open to commit below it);
* the head (`feed_last`, store.protocol.HasFeedHead): the last rows *below the
  horizon*. Every transaction with an id below the horizon has ended, so no
  row can ever arrive before the last of them; resuming after it skips
  nothing. The newest committed row is not the head while an older
  transaction is open: that transaction may still commit rows the feed places
  before it, and a reader resuming after the newest row would never see them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from psycopg import sql

from ...store.protocol import FeedRow

__all__ = ["HORIZON", "AsyncFeedHeadReads", "FeedHeadReads", "feed_end_query", "feed_last_query"]

HORIZON: Final = sql.SQL("(SELECT pg_snapshot_xmin(pg_current_snapshot()))")
"""The feed's horizon: the oldest transaction id still running (or the next one)."""


def feed_end_query(table: sql.Identifier, positioned: bool, ordered: bool) -> bytes:
    """The position of the table's last row in feed order (0: empty)."""
    end = "SELECT COALESCE(MAX(eventstore_position), 0) FROM {}"
    if ordered:
        end = (
            "SELECT COALESCE((SELECT eventstore_position FROM {} ORDER BY"
            " eventstore_xid DESC, eventstore_position DESC LIMIT 1), 0)"
        )
    query = sql.SQL(end if positioned else "SELECT COUNT(*) FROM {}").format(table)
    return query.as_bytes(None)


def feed_last_query(raw: sql.Composed, ordered: bool) -> bytes:
    """The feed's last rows, newest first (`LIMIT %s`): below the horizon on a
    table with transaction ids (one backward walk of the feed's index), in
    position order on one without."""
    if not ordered:
        return (raw + sql.SQL(" ORDER BY eventstore_position DESC LIMIT %s")).as_bytes(None)
    return (
        raw
        + sql.SQL(" WHERE eventstore_xid < ")
        + HORIZON
        + sql.SQL(" ORDER BY eventstore_xid DESC, eventstore_position DESC LIMIT %s")
    ).as_bytes(None)


class FeedHeadReads:
    """PostgresBackend's reads from the end of the feed."""

    _q: Any  # the backend's Queries
    _all: Callable[..., list[Any]]

    def feed_last(self, limit: int) -> list[FeedRow]:
        rows = self._all(self._q.feed_last, (limit,))
        rows.reverse()
        return rows


class AsyncFeedHeadReads:
    """AsyncPostgresBackend's reads from the end of the feed."""

    _q: Any
    _all: Callable[[bytes, Sequence[object]], Any]

    async def feed_last(self, limit: int) -> list[FeedRow]:
        rows: list[FeedRow] = await self._all(self._q.feed_last, (limit,))
        rows.reverse()
        return rows
