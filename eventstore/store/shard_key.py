"""The one rule that puts an execution in a day shard.

An execution belongs to the shard of the UTC day of its `OrchestrationStarted`
timestamp, written `YYYY-MM-DD`. An execution whose start carries no timestamp
(legacy V0 rows read with `timestamp_ms` 0) belongs to the shard `'root'`
until `backfill-timestamps` gives it one and it is rebased. Every part of the
store that needs a shard (the catalog, the manifest, retention, the PostgreSQL
partitions) calls `derive_shard_key`; none derives it again.

It lives in the store layer because appends record an execution's shard in
their own transaction; `eventstore.lifecycle` re-exports it for its users.
"""

from __future__ import annotations

import datetime as _dt
from typing import Final

__all__ = ["ROOT_SHARD", "derive_shard_key"]

ROOT_SHARD: Final = "root"

_UTC: Final = _dt.UTC


def derive_shard_key(started_timestamp_ms: int | None) -> str:
    """`YYYY-MM-DD` (UTC) of an execution's start, or `'root'` without one.

    A timestamp of 0 or less, or none at all, means "no time recorded": the
    legacy generations have none, and 1970-01-01 would be a lie.
    """
    if not started_timestamp_ms or started_timestamp_ms <= 0:
        return ROOT_SHARD
    moment = _dt.datetime.fromtimestamp(started_timestamp_ms / 1000, tz=_UTC)
    return moment.strftime("%Y-%m-%d")
