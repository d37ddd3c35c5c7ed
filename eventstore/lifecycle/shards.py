"""Rebasing shard `root`: executions that gained a start time move to their day.

An execution whose `OrchestrationStarted` carries no timestamp (legacy rows)
is in shard `root`. `backfill-timestamps` gives those events the time of
their row; the census then derives their day (`derive_shard_key`), and
`rebase_shards` records the manifest again from it, in one transaction: a
run killed before the commit leaves the old manifest whole, and running it
again rebases. Until then lifecycle jobs treat `root` as one shard that no
date selects.
"""

from __future__ import annotations

from collections.abc import Callable

from ..store import HistoryStore
from ..store.shard_key import ROOT_SHARD
from .census import ShardTotals, census
from .manifest import record_shards

__all__ = ["rebase_shards"]

_MOVES_PER_TRANSACTION = 200


def _no_progress(label: str, total: int | None) -> Callable[[int], object]:
    return lambda n: None


def rebase_shards(
    store: HistoryStore,
    *,
    progress: Callable[[str, int | None], Callable[[int], object]] = _no_progress,
) -> tuple[int | None, int]:
    """Record every execution in the shard its start time names now.

    Returns shard root's executions as the manifest recorded them before
    (None: never recorded) and now.
    """
    with store.evolution.run_lock("shards rebase"):
        recorded = {row.shard: row for row in store.lifecycle.shards()}
        advance = progress("census", store.count())
        totals: dict[str, ShardTotals] = {}
        moves: list[tuple[str, int, str]] = []
        lifecycle = store.lifecycle
        partitioned = lifecycle.partitioned
        for info in census(store, progress=advance):
            totals.setdefault(info.shard, ShardTotals()).add(info)
            if partitioned and info.shard != ROOT_SHARD:
                # A partitioned table: rows still in the root partition move
                # to their day's (the backend only touches rows in root).
                moves.append((info.instance_id, info.execution_id, info.shard))
                if len(moves) >= _MOVES_PER_TRANSACTION:
                    lifecycle.move_to_shards(moves)
                    moves = []
        lifecycle.move_to_shards(moves)
        record_shards(store, totals)
    before = recorded[ROOT_SHARD].executions if ROOT_SHARD in recorded else None
    if before is None and recorded:
        before = 0
    now = totals[ROOT_SHARD].executions if ROOT_SHARD in totals else 0
    return before, now
