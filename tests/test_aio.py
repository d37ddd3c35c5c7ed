"""eventstore.aio and group commit: what groups form, what fails alone, what waits.

Real SQLite files; the asyncio tests run on pytest-asyncio's loop. Nothing
here times anything: groups are counted, rows are looked up through a
connection of their own.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

import eventstore
import eventstore.aio
from eventstore import ConcurrencyError, HistoryRuleError, MissingStartError, TargetError
from eventstore import events as ev
from eventstore.testing._model import completed, scheduled, started


def _stored(path: Path, instance_id: str) -> int:
    """Rows of an instance, as a separate connection sees them (committed ones only)."""
    con = sqlite3.connect(path)
    try:
        return int(
            con.execute(
                "SELECT count(*) FROM history WHERE instance_id = ?", (instance_id,)
            ).fetchone()[0]
        )
    finally:
        con.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "aio.db"


@pytest.mark.asyncio
async def test_tasks_appending_together_commit_in_one_group(path: Path) -> None:
    async with await eventstore.aio.open(str(path)) as store:
        results = await asyncio.gather(
            *(store.append(f"i{n}", 1, [started(), scheduled(2)]) for n in range(50))
        )
        assert all(r.written and r.last_event_id == 2 for r in results)
        assert store._group is not None and store._group.commits == 1
        assert await store.count() == 100
        assert [e.event_id for e in await store.read("i49")] == [1, 2]


@pytest.mark.asyncio
async def test_a_refused_append_fails_alone_and_its_group_commits(path: Path) -> None:
    async with await eventstore.aio.open(str(path)) as store:
        await store.append("busy", 1, [started()])
        commits = store._group.commits  # type: ignore[union-attr]
        calls = [
            store.append("ok0", 1, [started()]),
            store.append("busy", 1, [scheduled(2)], expected_last_event_id=0),
            store.append("ok2", 1, [started()]),
            store.append("nostart", 1, [scheduled(1)]),
            store.append("ok4", 1, [started()]),
            store.append("rule", 1, [started(), completed(2, 9)]),
        ]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        assert isinstance(outcomes[1], ConcurrencyError)
        assert isinstance(outcomes[3], MissingStartError)
        assert isinstance(outcomes[5], HistoryRuleError)
        assert store._group.commits == commits + 1  # type: ignore[union-attr]
        for n in (0, 2, 4):
            assert outcomes[n].written  # type: ignore[union-attr]
            assert _stored(path, f"ok{n}") == 1
        for name in ("nostart", "rule"):
            assert _stored(path, name) == 0
        assert _stored(path, "busy") == 1


@pytest.mark.asyncio
async def test_appends_in_one_group_see_the_ones_before_them(path: Path) -> None:
    async with await eventstore.aio.open(str(path)) as store:
        outcomes = await asyncio.gather(
            store.append("i", 1, [started()], expected_last_event_id=0),
            store.append("i", 1, [scheduled(2)], expected_last_event_id=1),
            store.append("i", 1, [scheduled(3)], expected_last_event_id=1),  # stale now
            store.append("i", 1, [scheduled(2)]),  # an identical retry of the second
            store.append("j", 1, [started()], expected_last_event_id=0),
            store.append("j", 1, [started(parent_instance="p")], expected_last_event_id=0),
            return_exceptions=True,
        )
        assert store._group is not None and store._group.commits == 1
        assert [getattr(o, "written", o) for o in outcomes[:2]] == [True, True]
        assert isinstance(outcomes[2], ConcurrencyError)
        assert not outcomes[3].written  # type: ignore[union-attr]
        assert isinstance(outcomes[5], ConcurrencyError)
        assert [e.event_id for e in await store.read("i")] == [1, 2]


@pytest.mark.asyncio
async def test_group_size_bounds_a_group(path: Path) -> None:
    async with await eventstore.aio.open(str(path), group_size=4) as store:
        await asyncio.gather(*(store.append(f"i{n}", 1, [started()]) for n in range(10)))
        assert store._group is not None and store._group.commits == 3
        assert await store.count() == 10


@pytest.mark.asyncio
async def test_an_await_returns_only_once_its_commit_is_visible(path: Path) -> None:
    seen: dict[str, int] = {}

    class Observer:
        def appended(self, events: list[ev.Event], seconds: float) -> None:
            seen[events[0].instance_id] = _stored(path, events[0].instance_id)

        def decode_failed(self, location: Any) -> None:
            pass

    async with await eventstore.aio.open(str(path), observer=Observer()) as store:

        async def append(n: int) -> int:
            await store.append(f"i{n}", 1, [started(), scheduled(2)])
            return _stored(path, f"i{n}")

        assert await asyncio.gather(*(append(n) for n in range(20))) == [2] * 20
    assert seen == {f"i{n}": 2 for n in range(20)}  # the observer, too, after the commit


@pytest.mark.asyncio
async def test_reads_see_commits_not_an_open_transaction(path: Path) -> None:
    async with await eventstore.aio.open(str(path)) as store:
        await store.append("keep", 1, [started()])
        async with store.transaction() as tx:
            await tx.append("pending", 1, [started()])
            await store.append("pending", 1, [scheduled(2)])  # this task's: joins it
            assert await store.read("pending") == []  # the read connection: commits only
            assert len(await store.read("keep")) == 1
        assert [e.event_id for e in await store.read("pending")] == [1, 2]


@pytest.mark.asyncio
async def test_appends_of_other_tasks_wait_for_an_open_transaction(path: Path) -> None:
    async with await eventstore.aio.open(str(path)) as store:
        with pytest.raises(RuntimeError):
            async with store.transaction() as tx:
                await tx.append("rolled-back", 1, [started()])
                other = asyncio.ensure_future(store.append("other", 1, [started()]))
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                assert not other.done()
                raise RuntimeError("the runtime's own work failed")
        assert (await other).written
        assert await store.read("rolled-back") == []


@pytest.mark.asyncio
async def test_a_cancelled_append_is_dropped_and_the_queue_goes_on(path: Path) -> None:
    async with await eventstore.aio.open(str(path)) as store:
        async with store.transaction():
            leader = asyncio.ensure_future(store.append("cancelled", 1, [started()]))
            await asyncio.sleep(0)
            follower = asyncio.ensure_future(store.append("follower", 1, [started()]))
            await asyncio.sleep(0)
            leader.cancel()
            await asyncio.sleep(0)
        with pytest.raises(asyncio.CancelledError):
            await leader
        assert (await follower).written
        assert await store.read("cancelled") == []
        assert _stored(path, "cancelled") == 0


@pytest.mark.asyncio
async def test_read_all_is_an_async_iterator_over_the_feed(path: Path) -> None:
    async with await eventstore.aio.open(str(path)) as store:
        await store.append("b", 1, [started(), scheduled(2)])
        await store.append("a", 1, [started()])
        feed = [r async for r in store.read_all()]
        assert [(r.instance_id, r.event.event_id) for r in feed] == [("b", 1), ("b", 2), ("a", 1)]
        rest = [r async for r in store.read_all(after=feed[0], limit=1)]
        assert [(r.instance_id, r.event.event_id) for r in rest] == [("b", 2)]
        assert await store.instances() == ["a", "b"]
        assert await store.executions("b") == [1]
        assert await store.last_event_id("b") == 2


@pytest.mark.asyncio
async def test_a_closed_store_refuses_work(path: Path) -> None:
    store = await eventstore.aio.open(str(path))
    await store.close()
    with pytest.raises(eventstore.StoreError):
        await store.read("i")
    with pytest.raises(eventstore.StoreError):
        await store.append("i", 1, [started()])


@pytest.mark.asyncio
async def test_open_refuses_what_it_cannot_do(path: Path) -> None:
    with pytest.raises(TargetError, match="group_commit"):
        await eventstore.aio.open(str(path), group_commit=True)
    with pytest.raises(TargetError, match=r"valid: .*group_commit, group_size"):
        await eventstore.aio.open(str(path), bogus=1)


def test_group_options_are_checked(path: Path) -> None:
    with pytest.raises(TargetError, match="group_size must be a positive integer"):
        eventstore.open(str(path), group_size=0)
    with pytest.raises(TargetError, match="group_commit must be True or False"):
        eventstore.open(str(path), group_commit="yes")


def test_threads_commit_in_groups_and_a_refusal_fails_alone(path: Path) -> None:
    store = eventstore.open(str(path), group_commit=True)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            store.append(f"t{k}", 1, [started()], expected_last_event_id=0)
            for j in range(20):
                batch = [scheduled(2 + 3 * j + x) for x in range(3)]
                store.append(f"t{k}", 1, batch, expected_last_event_id=1 + 3 * j)
            with pytest.raises(ConcurrencyError):
                store.append(f"t{k}", 1, [scheduled(99)], expected_last_event_id=5)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert store.count() == 8 * 61
        for k in range(8):
            assert [e.event_id for e in store.read(f"t{k}")] == list(range(1, 62))
    finally:
        store.close()


def test_a_thread_reads_while_another_holds_the_write_lock(path: Path) -> None:
    store = eventstore.open(str(path), group_commit=True)
    store.append("keep", 1, [started()])
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.transaction() as tx:
            tx.append("pending", 1, [started()])
            holding.set()
            release.wait(timeout=60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(timeout=60)
        read: list[int] = []
        reader = threading.Thread(target=lambda: read.append(len(store.read("keep"))))
        reader.start()
        reader.join(timeout=60)
        assert read == [1]  # it did not wait for the transaction to end
        assert store.read("pending") == []
    finally:
        release.set()
        holder.join()
    assert len(store.read("pending")) == 1
    store.close()


@pytest.mark.asyncio
async def test_an_append_failing_halfway_leaves_nothing_and_its_group_commits(path: Path) -> None:
    """301 events insert in two statements (300 rows each at most); a trigger of
    the runtime's own refuses the second, so the first statement's 300 rows must
    go with it: the append's savepoint is rolled back, not the group."""
    eventstore.open(str(path)).close()
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TRIGGER refuse_301 BEFORE INSERT ON history WHEN NEW.event_id = 301"
        " BEGIN SELECT RAISE(ABORT, 'the runtime refuses event 301'); END"
    )
    con.close()
    halfway = [started(), *(scheduled(n) for n in range(2, 302))]
    async with await eventstore.aio.open(str(path)) as store:
        outcomes = await asyncio.gather(
            store.append("before", 1, [started()]),
            store.append("halfway", 1, halfway),
            store.append("after", 1, [started()]),
            return_exceptions=True,
        )
        assert store._group is not None and store._group.commits == 1
        assert isinstance(outcomes[1], eventstore.ConflictError), outcomes[1]
        assert _stored(path, "halfway") == 0
        assert _stored(path, "before") == _stored(path, "after") == 1


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_postgres_tasks_append_on_the_async_pool(postgres_target_factory: Any) -> None:
    import psycopg

    async with await eventstore.aio.open(postgres_target_factory()) as store:
        outcomes = await asyncio.gather(
            *(store.append(f"i{n}", 1, [started(), scheduled(2)]) for n in range(20)),
            store.append("i0", 1, [scheduled(3)], expected_last_event_id=0),
            return_exceptions=True,
        )
        assert all(o.written for o in outcomes[:20])  # type: ignore[union-attr]
        # The racing append reaches the server before or after i0's start
        # commits (the first new execution of a day makes its partition in
        # a thread first): refused either way, by what it found stored.
        refusals = (ConcurrencyError, eventstore.EventOrderError, MissingStartError)
        assert isinstance(outcomes[20], refusals)
        async with store.transaction() as tx:
            assert isinstance(tx.connection, psycopg.AsyncConnection)
            await tx.connection.execute("CREATE TEMP TABLE runtime_work (n int)")
            await tx.append("i0", 1, [completed(3, 2)], expected_last_event_id=2)
            await store.append("i0", 1, [scheduled(4)])  # this task's: joins it
        assert [e.event_id for e in await store.read("i0")] == [1, 2, 3, 4]
        assert await store.count() == 42
        assert [r.event.event_id async for r in store.read_all(limit=3)] == [1, 2, 1]


@pytest.mark.asyncio
async def test_a_task_appending_in_a_loop_lets_the_loop_run(path: Path) -> None:
    """Lone appends commit without a turn of the loop, but not forever: a timer
    due now fires while one task appends 40 times in a row."""
    fired = asyncio.Event()
    asyncio.get_running_loop().call_later(0, fired.set)
    async with await eventstore.aio.open(str(path)) as store:
        await store.append("i", 1, [started()])
        for n in range(2, 42):
            await store.append("i", 1, [scheduled(n)], expected_last_event_id=n - 1)
            if n == 2:
                assert not fired.is_set()  # the first lone appends did not yield
        assert fired.is_set()
        assert store._group is not None and store._group.commits == 41


# -- with a legacy write generation (the dual-write window) ----------------------


@pytest.mark.asyncio
async def test_grouped_appends_dual_write_in_a_legacy_window(path: Path) -> None:
    """A group commit writes what a plain append writes: legacy rows, and each
    event's V1 form in the shadow table, in the group's transaction."""
    eventstore.open(str(path), write_generation="V0b").close()
    async with await eventstore.aio.open(str(path)) as store:
        await asyncio.gather(
            *(store.append(f"i{n}", 1, [started(), scheduled(2)]) for n in range(8))
        )
    con = sqlite3.connect(path)
    legacy = con.execute("SELECT count(*) FROM history WHERE event_data LIKE '{\"Orch%'").fetchone()
    shadows = con.execute("SELECT count(*) FROM eventstore_shadow").fetchone()
    con.close()
    assert legacy == (8,) and shadows == (16,)


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_postgres_async_refuses_a_legacy_write_generation(
    postgres_target_factory: Any,
) -> None:
    target = postgres_target_factory()
    eventstore.open(target, write_generation="V0b").close()
    with pytest.raises(eventstore.WriteGenerationError, match="writes V1 only"):
        await eventstore.aio.open(target)
