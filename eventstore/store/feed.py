"""The global feed: every event in commit order, read in pages.

Where the backend can pack a page (SQLite and PostgreSQL, `backend.feed_packed`)
and every row in it is plain V1, the page is decoded in one piece (`Codec.decode_feed`:
one decode, the columns checked in C); any other page goes row by row
through the one row check, so a bad row is named as always and the rows
before it are delivered first. `read_all` hands the records on with
`itertools.chain`, page by page.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Final

from ..errors import PositionsRenumberedError
from .protocol import FeedRow
from .results import FeedRecord, PlainFeedPage

if TYPE_CHECKING:
    from .history import HistoryStore

__all__ = ["pages", "plain_page", "plain_page_sized", "read_all"]

PAGE: Final = 1000
"""Rows per read of the global feed."""


def pages(
    store: HistoryStore, after: int, limit: int | None, page: int
) -> Iterator[Sequence[FeedRow]]:
    """The feed's stored rows after `after`, page by page (nothing decoded)."""
    remaining = limit
    while remaining is None or remaining > 0:
        size = page if remaining is None else min(page, remaining)
        rows = store.backend.feed(after, size)
        if rows:
            yield rows
        if len(rows) < size:
            return
        after = rows[-1][0]
        if remaining is not None:
            remaining -= len(rows)


def read_all(
    store: HistoryStore, after: int | FeedRecord, limit: int | None
) -> Iterator[FeedRecord]:
    """`HistoryStore.read_all`: the records of `_pages`, page after page.

    `chain` hands each page's records on in C, so a record costs the
    consumer no generator resume of ours (two nested generators cost about
    200 instructions per record, callgrind); `_pages` is a generator, so
    nothing is read, or checked, before the first record is asked for."""
    return chain.from_iterable(_pages(store, after, limit))


def _pages(
    store: HistoryStore, after: int | FeedRecord, limit: int | None
) -> Iterator[Iterable[FeedRecord]]:
    if isinstance(after, FeedRecord):
        key = store.backend.key_at(after.position)
        if key != (after.instance_id, after.execution_id, after.event.event_id):
            raise PositionsRenumberedError(
                f"position {after.position} no longer holds event {after.event.event_id} "
                f"of {after.instance_id!r} execution {after.execution_id}; "
                "re-read the feed from the start",
            )
        after = after.position
    remaining = limit
    while remaining is None or remaining > 0:
        size = PAGE if remaining is None else min(PAGE, remaining)
        page = plain_page(store, after, size)
        records: list[FeedRecord]
        if page is None:  # row by row: a bad row raises after the good ones before it
            records = []
            # chain reads this to its end before it asks for the next page.
            yield _kept(_rows(store, after, size), records)
        else:
            records = list(map(FeedRecord, *page))
            yield records
        if len(records) < size:
            return
        after = records[-1].position
        if remaining is not None:
            remaining -= len(records)


def _kept(records: Iterator[FeedRecord], kept: list[FeedRecord]) -> Iterator[FeedRecord]:
    """`records`, each also appended to `kept` as it is handed on."""
    for record in records:
        kept.append(record)
        yield record


def plain_page(store: HistoryStore, after: int, limit: int) -> PlainFeedPage | None:
    """`HistoryStore.plain_feed_page`: up to `limit` events after `after` in
    one piece, or None when the page must go row by row."""
    found = _plain(store, after, limit)
    return None if found is None else found[0]


def plain_page_sized(
    store: HistoryStore, after: int, limit: int
) -> tuple[PlainFeedPage, list[int]] | None:
    """`plain_page`, with each row's stored event_data size in bytes.

    The packed page holds every row's data joined by newlines (no row holds
    one, or the page is not packed), so the sizes are the pieces' lengths.
    """
    found = _plain(store, after, limit)
    if found is None:
        return None
    page, data = found
    return page, (list(map(len, data.split(b"\n"))) if page[0] else [])


def _plain(store: HistoryStore, after: int, limit: int) -> tuple[PlainFeedPage, bytes] | None:
    packed = store.backend.feed_packed(after, limit)
    if packed is None:
        return None
    positions, instance_ids, execution_ids, event_ids, types, data = packed
    events = store.codec.decode_feed(instance_ids, execution_ids, event_ids, types, data)
    if events is None:
        return None
    return (positions, instance_ids, execution_ids, events), data


def _rows(store: HistoryStore, after: int, size: int) -> Iterator[FeedRecord]:
    decode = store._decode
    for position, instance_id, execution_id, event_id, event_type, data, _ in store.backend.feed(
        after, size
    ):
        event = decode((event_id, event_type, data, position), instance_id, execution_id)
        yield FeedRecord(position, instance_id, execution_id, event)
