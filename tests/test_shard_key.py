"""The shard key: the UTC day of an execution's start, or 'root' without one."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from eventstore.lifecycle import ROOT_SHARD, derive_shard_key
from eventstore.store.shard_key import shard_start_bounds


def test_no_timestamp_is_root() -> None:
    assert derive_shard_key(None) == ROOT_SHARD
    assert derive_shard_key(0) == ROOT_SHARD
    assert derive_shard_key(-5) == ROOT_SHARD


def test_day_boundaries_are_utc() -> None:
    last_ms_of_day = int(dt.datetime(2026, 11, 21, tzinfo=dt.UTC).timestamp() * 1000) - 1
    assert derive_shard_key(last_ms_of_day) == "2026-11-20"
    assert derive_shard_key(last_ms_of_day + 1) == "2026-11-21"


@given(st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2200, 1, 1)))
def test_key_is_the_utc_date(moment: dt.datetime) -> None:
    aware = moment.replace(tzinfo=dt.UTC)
    ms = int(aware.timestamp() * 1000)
    assert (
        derive_shard_key(ms) == dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).date().isoformat()
    )


@given(st.integers(min_value=1, max_value=253_402_300_799_999))
def test_every_millisecond_agrees_with_datetime(ms: int) -> None:
    expected = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).date()
    # float seconds can round a day's last millisecond up to the next day
    exact = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)
    assert derive_shard_key(ms) == exact.date().isoformat()
    assert abs((dt.date.fromisoformat(derive_shard_key(ms)) - expected).days) <= 1


@given(st.integers(min_value=253_402_300_800_000, max_value=2**64 - 1))
def test_past_year_9999_is_the_last_day_and_never_raises(ms: int) -> None:
    assert derive_shard_key(ms) == "9999-12-31"


def test_keys_sort_in_time_order() -> None:
    moments = [1, 86_400_000 * 365, 1_795_235_196_310, 253_402_300_799_999, 2**64 - 1]
    keys = [derive_shard_key(ms) for ms in moments]
    assert keys == sorted(keys)
    assert all(len(key) == 10 for key in keys)


@given(st.integers(min_value=1, max_value=2**64 - 1))
def test_a_shards_start_bounds_hold_exactly_its_starts(ms: int) -> None:
    """`shard_start_bounds` inverts `derive_shard_key`: the catalog lists a
    shard through its start-time index with these bounds."""
    key = derive_shard_key(ms)
    bounds = shard_start_bounds(key)
    assert bounds is not None
    lo, hi = bounds
    assert lo <= ms and (hi is None or ms < hi)
    assert derive_shard_key(lo) == key
    if lo > 1:
        assert derive_shard_key(lo - 1) != key
    if hi is not None:
        assert derive_shard_key(hi - 1) == key and derive_shard_key(hi) != key
    else:
        assert key == "9999-12-31"


def test_only_day_keys_have_start_bounds() -> None:
    assert shard_start_bounds(ROOT_SHARD) is None  # no start time: no bounds
    for other in ("", "20261208", "2026-1-08", "2026-02-30", "1969-12-31", "day", "2026-12-08 "):
        assert shard_start_bounds(other) is None
    assert shard_start_bounds("1970-01-01") == (1, 86_400_000)  # 0 is "no time"
