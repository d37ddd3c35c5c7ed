"""eventstore.aio reads follow archives exactly like the sync store.

SQLite (reads are the sync store's) and PostgreSQL (reads awaited on the
AsyncConnectionPool, the archive read in a thread): the same events after
retention, the same errors when the archive is gone or damaged, and a
reused execution id reads the table's rows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import eventstore
import eventstore.aio
from eventstore import events as ev
from eventstore.errors import ArchiveError, ArchiveMissingError
from eventstore.lifecycle.retention import RetentionPolicy, run_retention
from eventstore.testing.lifecycle_conformance import FIRST_DAY_MS, fill_days


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    factory: Callable[[], str] = request.getfixturevalue("postgres_target_factory")
    return factory()


def _retire(target: str, archive: Path) -> dict[tuple[str, int], list[Any]]:
    """Two days of executions; the first day's terminal ones archived and purged."""
    with eventstore.open(target) as store:
        fill_days(store, 2, 2)
        before = {(i, 1): store.read(i, 1) for i in ("i-0-0", "i-0-1", "i-1-0")}
        report = run_retention(store, RetentionPolicy(dt.date(2025, 11, 22), archive))
        assert report.purged_rows == 4
    return before


async def _read(target: str, *args: Any) -> list[ev.Event]:
    async with await eventstore.aio.open(target) as store:
        return await store.read(*args)


def test_async_reads_follow_the_archive(target: str, tmp_path: Path) -> None:
    before = _retire(target, tmp_path / "archive")

    async def main() -> None:
        async with await eventstore.aio.open(target) as store:
            for (instance, execution), events in before.items():
                assert await store.read(instance, execution) == events
            assert await store.read("i-0-0") == before[("i-0-0", 1)]
            assert await store.read("nobody") == []
            assert await store.executions("i-0-0") == []
            assert await store.executions("i-0-0", include_archived=True) == [1]
            assert "i-0-0" in await store.instances(include_archived=True)
            assert "i-0-0" not in await store.instances()

    asyncio.run(main())


def test_async_reads_raise_the_sync_stores_errors(target: str, tmp_path: Path) -> None:
    _retire(target, tmp_path / "archive")
    with eventstore.open(target) as store:
        (archive,) = store.lifecycle.archives()
    path = Path(archive.location)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="2025-11-21"):
        asyncio.run(_read(target, "i-0-0", 1))
    path.unlink()
    with pytest.raises(ArchiveMissingError) as caught:
        asyncio.run(_read(target, "i-0-0", 1))
    assert caught.value.shard == "2025-11-21" and archive.location in str(caught.value)


def test_async_read_of_a_reused_id_is_the_tables(target: str, tmp_path: Path) -> None:
    before = _retire(target, tmp_path / "archive")
    started = ev.OrchestrationStarted(
        event_id=1, name="Order", version="2.0.0", input="99", timestamp_ms=FIRST_DAY_MS
    )

    async def main() -> None:
        async with await eventstore.aio.open(target) as store:
            await store.append("i-0-0", 1, [started])
            again = await store.read("i-0-0", 1)
            assert len(again) == 1 and again != before[("i-0-0", 1)][:1]
            assert await store.read("i-0-0") == again

    asyncio.run(main())
