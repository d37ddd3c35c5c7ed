"""The catalog's whole-store operations: list, catch up, rebuild, compare.

Where the store keeps a catalog (a table eventstore created), listings read
it; where it does not (a database duroxide created, or a store from before
the catalog until `eventstore catalog rebuild`), the same records are derived
from the history page by page (`ExecutionCatalog.execution_summaries`) and
filtered here with the same meaning the SQL filters have.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final, NamedTuple

from ..errors import PositionsRenumberedError, StoreError
from .catalog import ExecutionRecord, as_row, from_row, record_from_summary, refresh
from .lifecycle_protocol import LooksUpCatalogEnds
from .protocol import CatalogQuery, CatalogWriter, ExecutionCatalog, FeedRow

if TYPE_CHECKING:
    from .history import HistoryStore

__all__ = [
    "CatalogMismatch",
    "catch_up",
    "compare",
    "derived_records",
    "like_pattern",
    "list_records",
    "rebuild",
]

_PAGE: Final = 2000
_FIRST_KEY: Final = ("", -1)


def _backend(store: HistoryStore) -> ExecutionCatalog | None:
    return store._catalog_backend


def like_pattern(pattern: str) -> re.Pattern[str]:
    """A SQL LIKE pattern as a regular expression: `%` any run, `_` one
    character, a backslash escapes the next; case-sensitive, whole string."""
    parts: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    if escaped:
        parts.append(re.escape("\\"))
    return re.compile("".join(parts), re.DOTALL)


def derived_records(store: HistoryStore) -> Iterator[ExecutionRecord]:
    """Every execution's record from the history, in key order (constant memory)."""
    backend = _backend(store)
    if backend is None:
        raise StoreError(f"{store.description} cannot list executions")
    after = _FIRST_KEY
    while True:
        page = backend.execution_summaries(after, _PAGE)
        if not page:
            return
        for summary in page:
            # An instance id that is not UTF-8 text (a hand-written row) comes
            # back as bytes: no execution of the catalog, verify names its rows.
            if isinstance(summary.instance_id, str):
                yield record_from_summary(store, summary)
        after = (page[-1].instance_id, page[-1].execution_id)


def _matches(record: ExecutionRecord, query: CatalogQuery, like: re.Pattern[str] | None) -> bool:
    started = record.started_ms
    return not (
        (query.status is not None and record.status not in query.status)
        or (query.name is not None and record.name != query.name)
        or (query.shard is not None and record.shard != query.shard)
        or (query.since_ms is not None and (started is None or started < query.since_ms))
        or (query.until_ms is not None and (started is None or started >= query.until_ms))
        or (like is not None and like.fullmatch(record.instance_id) is None)
    )


def _newest_first(record: ExecutionRecord) -> tuple[bool, int, str, int]:
    started = record.started_ms
    return (started is None, -(started or 0), record.instance_id, record.execution_id)


def _derived(store: HistoryStore, query: CatalogQuery) -> list[ExecutionRecord]:
    like = like_pattern(query.instance_like) if query.instance_like is not None else None
    records: list[ExecutionRecord] = []
    previous: ExecutionRecord | None = None
    for record in derived_records(store):
        if query.latest_only:
            # Key order: an instance's executions are adjacent, the latest last.
            if (
                previous is not None
                and previous.instance_id != record.instance_id
                and _matches(previous, query, like)
            ):
                records.append(previous)
            previous = record
        elif _matches(record, query, like):
            records.append(record)
    if previous is not None and _matches(previous, query, like):
        records.append(previous)
    records.sort(key=_newest_first)
    end = None if query.limit is None else query.offset + query.limit
    return records[query.offset : end]


def list_records(store: HistoryStore, query: CatalogQuery) -> list[ExecutionRecord]:
    """The records matching `query`, newest start first (then by key)."""
    backend = _backend(store)
    if backend is not None and backend.catalog_kept():
        return [from_row(row) for row in backend.catalog_rows(query)]
    return _derived(store, query)


def record(store: HistoryStore, instance_id: str, execution_id: int) -> ExecutionRecord | None:
    backend = _backend(store)
    if backend is None:
        return None
    if store._catalog_kept:  # known at open (and after a rebuild): one point read
        row = backend.catalog_row(instance_id, execution_id)
        return from_row(row) if row is not None else None
    page = backend.execution_summaries((instance_id, execution_id - 1), 1)
    if not page or (page[0].instance_id, page[0].execution_id) != (instance_id, execution_id):
        return None
    return record_from_summary(store, page[0])


def _feed_page(store: HistoryStore, position: int) -> tuple[list[FeedRow], int]:
    """A page of the feed after `position`, and the position it was read after."""
    try:
        return store.backend.feed(position, _PAGE * 5), position
    except PositionsRenumberedError:
        if not position:
            raise
    # The row the catalog was caught up to is gone: retention purged its
    # execution, and PostgreSQL's feed resumes only after a row it holds.
    # Read the feed from the start instead; executions the catalog has
    # current cost one comparison each.
    return store.backend.feed(0, _PAGE * 5), 0


def _stale(backend: ExecutionCatalog, rows: list[FeedRow]) -> list[tuple[str, int]]:
    """The executions of a feed page whose catalog row ends before the page's
    last event for them (or that have none)."""
    newest: dict[tuple[str, int], int] = {}
    for _, instance_id, execution_id, event_id, *_rest in rows:
        if isinstance(instance_id, str) and type(execution_id) is int:
            key = (instance_id, execution_id)
            if event_id > newest.get(key, 0):
                newest[key] = event_id
    if isinstance(backend, LooksUpCatalogEnds):
        ends = backend.catalog_last_ids(list(newest))
        return [key for key, event_id in newest.items() if ends.get(key, 0) < event_id]
    stale = []
    for key, event_id in newest.items():
        row = backend.catalog_row(*key)
        if row is None or row[7] < event_id:
            stale.append(key)
    return stale


def catch_up(store: HistoryStore) -> int:
    """Bring the catalog up to the global feed; how many executions changed.

    Rows written without the catalog (another program, duroxide writing the
    file) show in the feed after the recorded position: each execution whose
    row ends before the feed's last event for it is recomputed from the
    history, under the write lock, and the position moves on, page by page.
    The store's own appends are current already and cost one comparison.

    It stops at the feed's end as it was when it began: rows committed
    meanwhile are the next catch-up's. Appenders keep the feed growing, and
    a catch-up reading to the moving end chased them for as long as they
    outran it (retention's catch-up did, beside four appending threads).
    """
    backend = _backend(store)
    if backend is None or not backend.catalog_kept() or store.readonly:
        return 0
    changed = 0
    position = backend.catalog_position()
    end = backend.feed_end()
    while True:
        rows, position = _feed_page(store, position)
        if not rows:
            return changed
        stale = _stale(backend, rows)
        position = rows[-1][0]
        with store.backend.writing() as writer:
            assert isinstance(writer, CatalogWriter)
            for instance_id, execution_id in stale:
                refresh(store, writer, instance_id, execution_id)
            writer.set_catalog_position(position)
        changed += len(stale)
        if position >= end:  # at the end it began with: stop, not one page more
            return changed


def rebuild(store: HistoryStore) -> int:
    """Replace the catalog by one derived from the history; how many executions it lists.

    One write transaction, under the write lock: readers see the old catalog
    or the new one, and no append of ours lands between the two. The feed
    position is read first, so that rows another program writes meanwhile
    are caught up later. On a store that keeps no catalog table (a database
    duroxide created) nothing is written: listings keep deriving it.
    """
    backend = _backend(store)
    if backend is None:
        raise StoreError(f"{store.description} keeps no execution catalog")
    if not store.keeps_catalog_table:
        return sum(1 for _ in derived_records(store))
    count = 0
    with store.backend.writing() as writer:
        assert isinstance(writer, CatalogWriter)
        writer.ensure_catalog()  # the first statement takes the write lock
        position = backend.feed_end()
        writer.catalog_clear()
        batch = []
        for derived in derived_records(store):
            batch.append(as_row(derived))
            if len(batch) >= _PAGE:
                writer.catalog_put(batch)
                count += len(batch)
                batch = []
        writer.catalog_put(batch)
        count += len(batch)
        writer.set_catalog_position(position)
    store._catalog_kept = True
    return count


class CatalogMismatch(NamedTuple):
    """An execution whose catalog row disagrees with its history (verify)."""

    instance_id: str
    execution_id: int
    message: str
    behind: bool = False
    """True when the history simply moved on without the catalog: rows another
    program appended (caught up by `catalog_catch_up`) or deleted (a rebuild
    drops them). False for any other disagreement: the catalog is wrong."""


def _diff(kept: ExecutionRecord, derived: ExecutionRecord) -> str:
    fields = [
        f"{name} {getattr(kept, name)!r} (history: {getattr(derived, name)!r})"
        for name in ExecutionRecord.__struct_fields__
        if getattr(kept, name) != getattr(derived, name)
    ]
    return "the catalog says " + ", ".join(fields)


def _kept_records(backend: ExecutionCatalog) -> Iterator[ExecutionRecord]:
    after = _FIRST_KEY
    while True:
        page = backend.catalog_page(after, _PAGE)
        if not page:
            return
        yield from map(from_row, page)
        after = (page[-1][0], page[-1][1])


def compare(store: HistoryStore) -> Iterator[CatalogMismatch]:
    """Every disagreement between the kept catalog and the history, in key order.

    Both sides stream in key order and are merged, so memory stays constant.
    Nothing when the store keeps no catalog (listings derive it)."""
    backend = _backend(store)
    if backend is None or not backend.catalog_kept():
        return
    kept_iter, derived_iter = _kept_records(backend), derived_records(store)
    kept, derived = next(kept_iter, None), next(derived_iter, None)
    while kept is not None or derived is not None:
        kept_key = (kept.instance_id, kept.execution_id) if kept is not None else None
        derived_key = (derived.instance_id, derived.execution_id) if derived is not None else None
        if derived_key is None or (kept_key is not None and kept_key < derived_key):
            assert kept is not None
            yield CatalogMismatch(
                kept.instance_id,
                kept.execution_id,
                "the catalog lists it, the history has no rows (deleted by another program?)",
                behind=True,
            )
            kept = next(kept_iter, None)
        elif kept_key is None or derived_key < kept_key:
            yield CatalogMismatch(
                *derived_key, "the history has it, the catalog does not list it", behind=True
            )
            derived = next(derived_iter, None)
        else:
            if kept != derived:
                assert kept is not None and derived is not None
                ahead = derived.last_event_id > kept.last_event_id
                yield CatalogMismatch(*derived_key, _diff(kept, derived), behind=ahead)
            kept, derived = next(kept_iter, None), next(derived_iter, None)
