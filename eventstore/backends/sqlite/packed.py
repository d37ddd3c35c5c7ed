"""Reads that SQLite packs into one row: a page of the global feed.

The driver turns every fetched column of every row into a Python object;
for the feed that was seven objects per event, more than the decode itself.
Here SQLite concatenates a page of rows in C and the driver builds a handful
of strings; the codec decodes the data with one call and checks each event
against its columns with whole-list comparisons (`Codec.decode_feed`).

Nothing here trusts the packing: a page is returned only when every key
column has the type eventstore writes (text instance ids and types, integer
ids; the data is read as bytes either way) and when positions strictly
increase (given by their bounds when the page has no gap); the codec then
takes it only when it splits into exactly one line per row (no row holds a
newline). Any other page is read row by row by the
caller, where the one row check names what is wrong.
"""

from __future__ import annotations

import sqlite3
from typing import Final

import msgspec

from ...store.protocol import PackedFeed

__all__ = ["packed_feed"]

_INT_LIST: Final = msgspec.json.Decoder(list[int])

# The separator is a newline literal: `char(10)` would be a function call per
# row and aggregate.
# The page's positions come as their count and bounds: a page of rowids
# is contiguous unless rows were deleted, and then the bounds say which
# positions it holds (they are distinct, so `count == last - first + 1` leaves
# no room for a gap). Only a page with a gap asks again for the positions
# themselves (`_PACKED_FEED_POSITIONS`). Turning every position into text and
# back cost about 300 instructions per event.
_COLUMNS: Final = (
    " total(typeof(instance_id) <> 'text' OR typeof(execution_id) <> 'integer'"
    " OR typeof(event_id) <> 'integer' OR typeof(event_type) <> 'text'),"
    " group_concat(instance_id, '\n'), group_concat(execution_id),"
    " group_concat(event_id), group_concat(event_type, '\n'),"
    " CAST(group_concat(event_data, '\n') AS BLOB)"
)
_PAGE: Final = (
    " FROM (SELECT rowid AS pos, instance_id, execution_id, event_id, event_type, event_data"
    " FROM history WHERE rowid > ? ORDER BY rowid LIMIT ?)"
)
_PACKED_FEED: Final = "SELECT count(*), min(pos), max(pos)," + _COLUMNS + _PAGE
_PACKED_FEED_POSITIONS: Final = "SELECT count(*), group_concat(pos), NULL," + _COLUMNS + _PAGE

# The common page first: the `limit` positions right after `after`, a range
# of the rowid, aggregated without the subquery that LIMIT needs (SQLite runs
# that as a co-routine, copying every column of every row once more: 2.2k
# instructions per event). When the range holds `limit` rows it holds every
# position in it, so the page is whole and has no gap; fewer (the feed's end,
# or deleted rows) and the page is asked for as above.
_PACKED_RANGE: Final = (
    "SELECT count(*), min(rowid), max(rowid)," + _COLUMNS + " FROM history"
    " WHERE rowid > ?1 AND rowid <= ?1 + ?2"
)


def packed_feed(con: sqlite3.Connection, after: int, limit: int) -> PackedFeed | None:
    """Up to `limit` feed rows after `after` in one piece, or None when the
    page must be read row by row."""
    try:
        ((count, first, last, odd, instances, executions, event_ids, types, data),) = con.execute(
            _PACKED_RANGE, (after, limit)
        ).fetchall()
        if count != limit:  # the feed's end, or a gap: the page as LIMIT takes it
            ((count, first, last, odd, instances, executions, event_ids, types, data),) = (
                con.execute(_PACKED_FEED, (after, limit)).fetchall()
            )
        listed = None
        if count and last - first + 1 != count:  # a gap: the positions themselves
            ((count, listed, last, odd, instances, executions, event_ids, types, data),) = (
                con.execute(_PACKED_FEED_POSITIONS, (after, limit)).fetchall()
            )
    except (sqlite3.Error, OverflowError):
        return None  # undecodable text, or an `after` past 64 bits: the row path says
    if count == 0:
        return PackedFeed([], [], [], [], [], b"")
    if odd:
        return None
    instance_ids = instances.split("\n")
    event_types = types.split("\n")
    if len(instance_ids) != count or len(event_types) != count:
        return None
    try:
        positions = (
            list(range(first, last + 1)) if last is not None else _INT_LIST.decode(f"[{listed}]")
        )
        feed = PackedFeed(
            positions,
            instance_ids,
            _INT_LIST.decode(f"[{executions}]"),
            _INT_LIST.decode(f"[{event_ids}]"),
            event_types,
            data,
        )
    except msgspec.DecodeError:
        return None
    if len(positions) != count or (last is None and positions != sorted(set(positions))):
        return None
    return feed
