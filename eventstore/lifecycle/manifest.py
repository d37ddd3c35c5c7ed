"""The shard manifest: what each day shard holds, in the table and in archives.

Per shard: state (active: every execution in the table; archived: some in
archives, some still in the table; purged: none left in the table),
executions, running executions, rows, bytes, earliest and latest start,
generations present, and for archived shards the newest archive's location,
the rows all its archives hold and the newest checksum.

Retention records it (`record_shards`) after each run; `eventstore shards`
shows `shard_view`: the recorded archives merged with a census of what the
table holds now (from the execution catalog where the store keeps one, else
a scan of the history), so it is right even on a store no lifecycle job
touched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import msgspec

from ..errors import StoreError
from ..store import HistoryStore
from ..store.lifecycle_protocol import (
    ShardArchiveRow,
    ShardRow,
)
from .census import ShardTotals, shard_census

__all__ = ["record_shards", "shard_rows", "shard_view"]


def _archived(archives: list[ShardArchiveRow]) -> dict[str, tuple[int, str, str]]:
    """shard -> (rows in purged archives, newest location, newest checksum)."""
    found: dict[str, tuple[int, str, str]] = {}
    for a in archives:  # oldest first within a shard
        if a.state != "purged":
            continue
        rows = found.get(a.shard, (0, "", ""))[0]
        found[a.shard] = (rows + a.rows, a.location, a.checksum)
    return found


def shard_rows(
    totals: dict[str, ShardTotals], archives: list[ShardArchiveRow], now: str
) -> list[ShardRow]:
    """The manifest's rows from the table's totals and the recorded archives."""
    archived = _archived(archives)
    rows: list[ShardRow] = []
    for shard in sorted(set(totals) | set(archived)):
        t = totals.get(shard, ShardTotals())
        archive_rows, location, checksum = archived.get(shard, (0, None, None))
        if not archive_rows:
            state = "active"
        elif t.executions > 0:
            state = "archived"
        else:
            state = "purged"
        rows.append(
            ShardRow(
                shard,
                state,
                t.executions,
                t.running,
                t.rows,
                t.bytes,
                t.earliest_ms,
                t.latest_ms,
                msgspec.json.encode(sorted(t.generations)).decode(),
                location,
                archive_rows,
                checksum,
                now,
            )
        )
    return rows


def record_shards(store: HistoryStore, totals: dict[str, ShardTotals]) -> list[ShardRow]:
    """Write the manifest's rows (one short transaction)."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    rows = shard_rows(totals, store.lifecycle.archives(), now)
    gone = {r.shard for r in store.lifecycle.shards()} - {r.shard for r in rows}
    with store.lifecycle.writing() as w:
        w.ensure_lifecycle_tables()
        for shard in sorted(gone):
            w.drop_shard(shard)
        for row in rows:
            w.save_shard(row)
    return rows


def shard_view(
    store: HistoryStore, *, progress: Callable[[int], object] | None = None
) -> list[dict[str, Any]]:
    """The manifest as `eventstore shards --json` prints it (census of the table now)."""
    totals: dict[str, ShardTotals] = {}
    for info in shard_census(store, progress=progress):
        totals.setdefault(info.shard, ShardTotals()).add(info)
    try:
        archives = store.lifecycle.archives()
    except StoreError:
        archives = []
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return [_as_json(row) for row in shard_rows(totals, archives, now)]


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds")


def _as_json(row: ShardRow) -> dict[str, Any]:
    return {
        "shard": row.shard,
        "state": row.state,
        "executions": row.executions,
        "running": row.running,
        "rows": row.rows,
        "bytes": row.bytes,
        "earliest": _iso(row.earliest_ms),
        "latest": _iso(row.latest_ms),
        "generations": msgspec.json.decode(row.generations),
        "archive": row.archive_location,
        "archive_rows": row.archive_rows,
        "archive_checksum": row.archive_checksum,
    }
