"""Converting an existing PostgreSQL store into the partitioned layout.

`eventstore shards partition TARGET` (and `partition_store`): a store made
before partitioning was the default, or without it, keeps its unpartitioned
history table until converted. The conversion is offline: it holds the
table's write key for its whole run, so appends wait (and fail with
StoreBusyError after their lock timeout); stop the writers first, and
restart them afterwards (a process opened before keeps writing without
naming the shard, into the root partition, until it reopens the store).
Reads go on until the final swap, a short transaction.

Here: the run lock (no retention, migration or rebase meanwhile) and the
execution catalog (which says each execution's shard: created when the
store has none, caught up with other programs' rows otherwise); the copy
itself is the backend's (`backends/postgres/convert.py`), resumable: a run
killed anywhere is finished by running it again.
"""

from __future__ import annotations

from collections.abc import Callable

from ..store import HistoryStore

__all__ = ["drop_purged_partitions", "partition_store"]

BATCH_ROWS = 10_000
"""Rows copied per transaction."""


def _no_progress(label: str, total: int | None) -> Callable[[int], object]:
    return lambda n: None


def partition_store(
    store: HistoryStore,
    *,
    batch: int = BATCH_ROWS,
    progress: Callable[[str, int | None], Callable[[int], object]] = _no_progress,
) -> int:
    """Convert the store's history table (module docstring); the rows it
    holds, or -1 when it was partitioned already."""
    lifecycle = store.lifecycle
    if lifecycle.partitioned:
        return -1
    with store.evolution.run_lock("shards partition"):
        if store.keeps_catalog_table:
            # Each row goes to its execution's shard, which the catalog says.
            if store.catalog_table_kept:
                store.catalog_catch_up()
            else:
                store.rebuild_catalog()
        return lifecycle.convert_to_partitioned(batch, progress)


def drop_purged_partitions(store: HistoryStore, dropped: list[str]) -> list[str]:
    """On a table partitioned by shard, drop the partition of every shard the
    manifest records as purged (its rows deleted one by one) and `dropped`
    does not name (retention dropped it whole); the shards dropped now. The
    rows are gone already, so this only returns the space at once. It runs
    after the manifest is written, and again on every run, so a run killed
    anywhere in it (a detach left pending too) is finished by the next."""
    lifecycle = store.lifecycle
    if not lifecycle.partitioned:
        return []
    return [
        row.shard
        for row in lifecycle.shards()
        if row.shard not in dropped
        and row.state == "purged"
        and lifecycle.drop_partition(row.shard)
    ]
