"""HistoryStore's execution-catalog methods (a base class of HistoryStore).

The execution catalog is one row per execution (store/catalog.py says what a
row holds and how it is derived); these are the calls users and the other
layers make: list with filters, one record, catch up after another program,
rebuild, compare with the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

from ..errors import InvalidEventError
from . import catalog_ops
from .catalog import STATUSES, ExecutionRecord, catalog_text, refresh
from .catalog_ops import CatalogMismatch
from .protocol import CatalogQuery, CatalogWriter, ExecutionCatalog
from .shard_key import shard_start_bounds

if TYPE_CHECKING:
    from .history import HistoryStore

__all__ = ["CatalogMethods"]


def _statuses(status: str | Iterable[str] | None) -> tuple[str, ...] | None:
    if status is None:
        return None
    wanted = (status,) if isinstance(status, str) else tuple(status)
    unknown = [s for s in wanted if s not in STATUSES]
    if unknown:
        raise ValueError(f"unknown status {unknown[0]!r}: one of {', '.join(STATUSES)}")
    return wanted


_INT64_MAX = 2**63 - 1


def _count(name: str, value: int | None, *, minimum: int) -> None:
    if value is not None and (type(value) is not int or value < minimum or value > _INT64_MAX):
        raise ValueError(f"{name} must be an integer from {minimum} to {_INT64_MAX}, not {value!r}")


def _within_shard(
    shard: str, since_ms: int | None, until_ms: int | None
) -> tuple[int | None, int | None]:
    """The time filter narrowed to the start times `derive_shard_key` puts in
    `shard` (store/shard_key.py): the same executions, since a record's shard
    is derived from its `started_ms`, but found through the catalog's index
    on `started_ms` (there is none on `shard`: it would cost every new
    execution's append an index entry and a page written to the log)."""
    bounds = shard_start_bounds(shard)
    if bounds is None:
        return since_ms, until_ms  # 'root' (no start time) or no day key
    lo, hi = bounds
    since_ms = lo if since_ms is None else max(since_ms, lo)
    if hi is not None:
        until_ms = hi if until_ms is None else min(until_ms, hi)
    return since_ms, until_ms


def _like(pattern: str | None) -> str | None:
    """The pattern with a trailing lone backslash escaped: every backend then
    reads it as a literal backslash (PostgreSQL would refuse the pattern)."""
    if pattern is None:
        return None
    if not isinstance(pattern, str):
        raise ValueError(f"instance_like must be a string, not {pattern!r}")
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    return pattern + "\\" if trailing % 2 else pattern


class CatalogMethods:
    """The execution catalog, as HistoryStore offers it."""

    _catalog_kept: bool
    """Whether appends keep the execution catalog's table (it exists)."""
    _catalog_backend: ExecutionCatalog | None
    """The backend, when it offers the catalog (asked once: a runtime-checkable
    isinstance costs tens of microseconds, more than a catalog read)."""

    def _init_catalog(self) -> None:
        backend = cast("HistoryStore", self).backend
        catalog = backend if isinstance(backend, ExecutionCatalog) else None
        self._catalog_backend = catalog
        self._catalog_kept = catalog is not None and catalog.catalog_kept()

    @property
    def keeps_catalog_table(self) -> bool:
        """True when this store can keep the execution catalog in a table of its
        own (False on a database duroxide created, where it is derived)."""
        backend = self._catalog_backend
        return backend is not None and backend.can_keep_catalog

    @property
    def catalog_table_kept(self) -> bool:
        """True when the catalog's table exists and appends keep it current."""
        return self._catalog_kept

    def catalog_executions(
        self,
        *,
        status: str | Iterable[str] | None = None,
        name: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        shard: str | None = None,
        instance_like: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        latest_only: bool = False,
    ) -> list[ExecutionRecord]:
        """Executions from the catalog, filtered; newest start first.

        Order: by `started_ms` descending, executions without a start time
        last, then by instance id and execution id (a stable order, so
        `limit`/`offset` page through it). Filters combine (AND): `status`
        one status or several (`STATUSES`); `name` the orchestration name;
        `since_ms` <= started_ms < `until_ms` (an execution without a start
        time matches neither); `shard` a day shard (`YYYY-MM-DD` or 'root');
        `instance_like` a case-sensitive SQL LIKE pattern on the instance id
        (`%` any run, `_` one character, backslash escapes); `latest_only`
        keeps each instance's highest execution before filtering.
        """
        _count("limit", limit, minimum=0)
        _count("offset", offset, minimum=0)
        for label, value in (("since_ms", since_ms), ("until_ms", until_ms)):
            _count(label, value, minimum=-(2**63))
        if isinstance(shard, str):
            since_ms, until_ms = _within_shard(shard, since_ms, until_ms)
        query = CatalogQuery(
            _statuses(status),
            catalog_text(name) if isinstance(name, str) else name,
            since_ms,
            until_ms,
            shard,
            _like(instance_like),
            limit,
            offset,
            latest_only,
        )
        return catalog_ops.list_records(cast("HistoryStore", self), query)

    def catalog_record(self, instance_id: str, execution_id: int) -> ExecutionRecord | None:
        """One execution's record; None when the store holds no rows for it."""
        if type(execution_id) is not int:
            raise InvalidEventError(f"execution_id must be an integer, not {execution_id!r}")
        return catalog_ops.record(cast("HistoryStore", self), instance_id, execution_id)

    def catalog_catch_up(self) -> int:
        """Catch the catalog up with rows written by another program (duroxide
        writing its own tables into this file) from the global feed; returns
        how many executions changed. Nothing to do (0) where the catalog is
        derived on every read, or the store is read-only."""
        return catalog_ops.catch_up(cast("HistoryStore", self))

    def rebuild_catalog(self) -> int:
        """Derive the catalog from the history again, in one transaction
        (creating its table on a store from before the catalog); returns how
        many executions it lists."""
        return catalog_ops.rebuild(cast("HistoryStore", self))

    def catalog_mismatches(self) -> Iterator[CatalogMismatch]:
        """Executions whose catalog row disagrees with the history (verify)."""
        return catalog_ops.compare(cast("HistoryStore", self))

    def _refresh_catalog(self, writer: Any, keys: Iterable[tuple[str | bytes, int]]) -> None:
        """Recompute the rows of the executions that rows were changed in, inside
        `writer`'s transaction (import, migrations, backfill, rollback)."""
        if not self._catalog_kept:
            return
        store = cast("HistoryStore", self)
        seen: set[tuple[str, int]] = set()
        for key in keys:
            instance_id, execution_id = key[0], key[1]
            if not isinstance(instance_id, str) or (instance_id, execution_id) in seen:
                continue
            seen.add((instance_id, execution_id))
            refresh(store, cast(CatalogWriter, writer), instance_id, execution_id)
