"""The feed's head (`HistoryStore.head_position`, `read_last`) where it is not
the newest row: PostgreSQL's horizon, and a backend without the capability.

The conformance suite (eventstore.testing.feed_conformance) covers the
contract on every backend; here, what only PostgreSQL does, and the store's
fallback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import eventstore
import eventstore.aio
from eventstore import events as ev
from eventstore.backends.sqlite.backend import SQLiteBackend
from eventstore.cli import main
from eventstore.store import HistoryStore
from eventstore.store.protocol import HasFeedHead


def _started() -> list[ev.Event]:
    return [ev.OrchestrationStarted(event_id=1, name="O", version="1", input="")]


@pytest.mark.postgres
def test_a_transaction_still_open_keeps_the_head_below_it(
    postgres_target_factory: Callable[[], str],
) -> None:
    """A transaction open now may commit rows the feed places before a newer
    committed one. The head stays below it, so a reader resuming from the head
    sees them; resuming after the newest row would lose them for good."""
    target = postgres_target_factory()
    with (
        eventstore.open(target) as slow,
        eventstore.open(target) as quick,
        eventstore.open(target, readonly=True) as reader,
    ):
        slow.append("first", 1, _started())
        first = reader.head_position()
        with slow.transaction():
            slow.append("held", 1, _started())  # takes a transaction id, stays open
            quick.append("later", 1, _started())  # a newer id, committed
            assert reader.head_position() == first
            assert [r.instance_id for r in reader.read_last(5)] == ["first"]
            assert reader.feed_held_back()[0] == 1
        feed = {r.instance_id: r.position for r in reader.read_all()}
        assert [r.instance_id for r in reader.read_all(after=first)] == ["held", "later"]
        # What a head at the newest committed row would have cost: "held" is
        # placed before "later", so resuming after "later" never shows it.
        assert [r.instance_id for r in reader.read_all(after=feed["later"])] == []
        assert [r.instance_id for r in reader.read_last(3)] == ["first", "held", "later"]
        assert reader.head_position() == reader.read_last(1)[0].position


@pytest.mark.postgres
def test_the_async_store_keeps_the_same_head(postgres_target_factory: Callable[[], str]) -> None:
    target = postgres_target_factory()

    async def run() -> tuple[int, int, list[str]]:
        async with await eventstore.aio.open(target) as store:
            empty = await store.head_position()
            await store.append("a", 1, _started())
            await store.append("b", 1, _started())
            last = [r.instance_id for r in await store.read_last(5)]
            return empty, await store.head_position(), last

    empty, head, last = asyncio.run(run())
    with eventstore.open(target, readonly=True) as sync:
        assert (empty, last) == (0, ["a", "b"])
        assert head == sync.head_position() == sync.read_last(1)[0].position


@pytest.mark.postgres
def test_tail_starts_below_a_transaction_still_open(
    postgres_target_factory: Callable[[], str],
) -> None:
    target = postgres_target_factory()
    runner = CliRunner()
    with eventstore.open(target) as slow, eventstore.open(target) as quick:
        slow.append("first", 1, _started())
        with slow.transaction():
            slow.append("held", 1, _started())
            quick.append("later", 1, _started())
            result = runner.invoke(main, ["tail", target, "--no-follow", "--json"])
    assert result.exit_code == 0, result.output
    assert '"instance_id": "first"' in result.output and "later" not in result.output


class _WithoutHead:
    """A backend that cannot read its feed from the end (a third party's)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "feed_last":
            raise AttributeError(name)
        return getattr(self._inner, name)


def test_a_backend_without_the_capability_is_read_to_the_end(tmp_path: Path) -> None:
    backend = _WithoutHead(SQLiteBackend(str(tmp_path / "s.db")))
    assert not isinstance(backend, HasFeedHead)
    store = HistoryStore(backend)  # type: ignore[arg-type]
    try:
        assert store.head_position() == 0 and store.read_last(3) == []
        for n in range(2500):  # more than a page of the feed
            store.append(f"i{n}", 1, _started())
        feed = list(store.read_all())
        assert store.read_last(3) == feed[-3:]
        assert store.head_position() == feed[-1].position
    finally:
        store.close()
