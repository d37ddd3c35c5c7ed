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

import datetime
import functools
from typing import Final

__all__ = ["ROOT_SHARD", "derive_shard_key", "shard_start_bounds"]

ROOT_SHARD: Final = "root"

_DAY_MS: Final = 86_400_000
_LAST_DAY: Final = 2_932_896
"""Days from 1970-01-01 to 9999-12-31, the last day a ten-character key names."""
_EPOCH_ORDINAL: Final = datetime.date(1970, 1, 1).toordinal()


def derive_shard_key(started_timestamp_ms: int | None) -> str:
    """`YYYY-MM-DD` (UTC) of an execution's start, or `'root'` without one.

    A timestamp of 0 or less, or none at all, means "no time recorded": the
    legacy generations have none, and 1970-01-01 would be a lie. The format
    allows any u64; a start past 9999-12-31 (a broken clock, a hostile row)
    goes to that last day's shard, so that every key has ten characters and
    keys sort in time order, which lifecycle jobs rely on. It never raises:
    every append of a new execution calls it.
    """
    if not started_timestamp_ms or started_timestamp_ms <= 0:
        return ROOT_SHARD
    return _day_key(min(started_timestamp_ms // _DAY_MS, _LAST_DAY))


def shard_start_bounds(shard: str) -> tuple[int, int | None] | None:
    """The start timestamps `derive_shard_key` puts in `shard`: `lo <= started
    < hi` (no `hi` for the last day, which also takes every later start).
    None for `'root'` (executions without a start time) and for anything that
    is no day key `derive_shard_key` writes.

    The catalog keeps one index on `started_ms` and none on `shard`: a
    listing by shard adds these bounds to its time filter, and they select
    exactly the executions `derive_shard_key` puts in that shard.
    """
    try:
        day = datetime.date.fromisoformat(shard)
    except (TypeError, ValueError):
        return None
    days = day.toordinal() - _EPOCH_ORDINAL
    if len(shard) != 10 or days < 0 or _day_key(days) != shard:
        return None  # not written by derive_shard_key (another spelling, before 1970)
    lo = days * _DAY_MS
    return (max(lo, 1), None) if days == _LAST_DAY else (max(lo, 1), lo + _DAY_MS)


@functools.lru_cache(maxsize=4096)
def _day_key(days: int) -> str:
    # Howard Hinnant's civil_from_days: the proleptic Gregorian date of a day
    # count since 1970-01-01, in integers (datetime's own conversion costs a
    # few microseconds per new execution; the cache makes a day's key once).
    z = days + 719_468
    era = z // 146_097
    day_of_era = z - era * 146_097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = shifted_month + 3 if shifted_month < 10 else shifted_month - 9
    year = year_of_era + era * 400 + (1 if month <= 2 else 0)
    return f"{year:04d}-{month:02d}-{day:02d}"
