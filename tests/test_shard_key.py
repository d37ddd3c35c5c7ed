"""The shard key: the UTC day of an execution's start, or 'root' without one."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from eventstore.lifecycle import ROOT_SHARD, derive_shard_key


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
