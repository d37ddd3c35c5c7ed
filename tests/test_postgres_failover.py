"""A primary and a hot standby with synchronous replication: reads on the standby,
and a standby that takes over when the primary is SIGKILLed during appends.

Each test starts its own pair (tests/postgres_server.py): initdb, a base
backup streaming from the primary, `synchronous_standby_names` so every
commit waits for the standby; both on 127.0.0.1, free ports. The store
reaches whichever is the primary through libpq's own failover: a multi-host
URL with `target_session_attrs=read-write`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

import eventstore
from eventstore import events as ev
from eventstore.cli import app as cli
from eventstore.errors import EventStoreError, ReadOnlyError
from eventstore.metrics.exporter import FeedExporter
from eventstore.store import FeedRecord, HistoryStore
from tests.postgres_server import PASSWORD, SUPERUSER, PostgresServer, ServerUnavailable

pytestmark = pytest.mark.postgres


class Pair:
    def __init__(self, primary: PostgresServer, standby: PostgresServer, dbname: str) -> None:
        self.primary, self.standby, self.dbname = primary, standby, dbname

    def url(self, server: PostgresServer) -> str:
        return server.url(self.dbname)

    def either(self, attrs: str = "read-write") -> str:
        """Both servers, libpq picking one with `target_session_attrs`."""
        hosts = f"127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
        return (
            f"postgresql://{SUPERUSER}:{PASSWORD}@{hosts}/{self.dbname}"
            f"?target_session_attrs={attrs}&connect_timeout=3"
        )


@pytest.fixture
def pair(postgres_server: PostgresServer) -> Iterator[Pair]:
    """A fresh primary with a synchronous hot standby (the session server
    only tells us the binaries are there)."""
    primary = PostgresServer().start()
    standby: PostgresServer | None = None
    try:
        url = primary.create_database()
        eventstore.open(url).close()  # the table, before the base backup
        standby = primary.start_standby("standby1")
        primary.make_synchronous("standby1")
    except ServerUnavailable:
        if standby is not None:
            standby.stop()
        primary.stop()
        raise
    yield Pair(primary, standby, url.rsplit("/", 1)[1])
    standby.stop()
    primary.stop()


def _execution(instance_id: str, first: int, size: int) -> list[ev.Event]:
    batch: list[ev.Event] = []
    for event_id in range(first, first + size):
        tag = json.dumps({"batch": f"{instance_id}:{first}", "size": size})
        if event_id == 1:
            batch.append(ev.OrchestrationStarted(event_id=1, name="F", version="1", input=tag))
        else:
            batch.append(ev.ActivityScheduled(event_id=event_id, name="W", input=tag))
    return batch


def _wait_replayed(standby: HistoryStore, count: int) -> None:
    deadline = time.monotonic() + 60
    while standby.count() < count:
        assert time.monotonic() < deadline, "the standby never replayed the appends"
        time.sleep(0.05)


def test_reading_commands_and_the_exporter_run_on_the_standby(pair: Pair) -> None:
    with eventstore.open(pair.either()) as primary:
        primary.append("a", 1, _execution("a", 1, 3))
        primary.append("b", 1, _execution("b", 1, 2))
        # Commits wait for the standby to flush, not to apply: wait for replay.
        with eventstore.open(pair.url(pair.standby), readonly=True) as standby:
            _wait_replayed(standby, 5)
            assert [r.instance_id for r in standby.read_all()] == ["a"] * 3 + ["b"] * 2
            assert standby.wait_for_events(0, 0) is True  # polls: a standby cannot LISTEN
            last = list(standby.read_all())[-1]
            assert standby.wait_for_events(last.position, 0.1) is False
            primary.append("c", 1, _execution("c", 1, 1))
            assert standby.wait_for_events(last.position, 30) is True
            exporter = FeedExporter(standby)
            assert exporter.poll().rows == 6
            assert b"eventstore_" in exporter.exposition()
            with pytest.raises(ReadOnlyError):
                standby.append("d", 1, _execution("d", 1, 1))
    # A store opened writable on the standby reads, and refuses appends with
    # the project's error (the server refuses them: it is in recovery).
    with eventstore.open(pair.url(pair.standby)) as on_standby:
        assert on_standby.count() == 6
        with pytest.raises(ReadOnlyError):
            on_standby.append("d", 1, _execution("d", 1, 1))
    runner = CliRunner()
    for command in (["ls"], ["show", "a"], ["stats"], ["verify"], ["export"]):
        result = runner.invoke(cli.main, [command[0], pair.url(pair.standby), *command[1:]])
        assert result.exit_code == 0, (command, result.output)
        assert "Traceback" not in result.output


class Appender:
    """Appends batches to a few executions until stopped, through the
    multi-host URL; records what returned, retries what failed."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acknowledged: list[tuple[str, int, int]] = []  # instance, first id, size
        self.failures: list[BaseException] = []
        self.foreign: list[BaseException] = []  # anything but the project's errors
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            with eventstore.open(self.url, connect_timeout=3) as store:
                n = 0
                while not self.stop.is_set():
                    instance_id = f"x{n % 7}"
                    last = self._last(store, instance_id)
                    size = 1 + n % 3
                    self._append(store, instance_id, last, size)
                    n += 1
        except BaseException as exc:  # reported by the test
            self.foreign.append(exc)

    def _last(self, store: HistoryStore, instance_id: str) -> int:
        while True:
            try:
                return store.last_event_id(instance_id, 1)
            except EventStoreError as exc:
                self.failures.append(exc)
                time.sleep(0.1)

    def _append(self, store: HistoryStore, instance_id: str, last: int, size: int) -> None:
        """The same batch until it is stored (an identical retry succeeds
        without writing when the failed attempt did commit)."""
        batch = _execution(instance_id, last + 1, size)
        while True:
            try:
                store.append(instance_id, 1, batch, expected_last_event_id=last)
            except EventStoreError as exc:
                self.failures.append(exc)
                time.sleep(0.1)
                continue
            self.acknowledged.append((instance_id, last + 1, size))
            return


def _tail(store: HistoryStore, last: FeedRecord | None, out: list[FeedRecord]) -> FeedRecord | None:
    for record in store.read_all(after=last if last is not None else 0):
        out.append(record)
        last = record
    return last


def test_the_standby_takes_over_after_the_primary_is_killed_during_appends(pair: Pair) -> None:
    appender = Appender(pair.either())
    thread = threading.Thread(target=appender.run)
    thread.start()
    seen: list[FeedRecord] = []
    last: FeedRecord | None = None
    reader = eventstore.open(pair.either(), connect_timeout=3)
    try:
        while len(appender.acknowledged) < 40:
            last = _tail(reader, last, seen)
            time.sleep(0.01)
        last = _tail(reader, last, seen)
        acknowledged_before = len(appender.acknowledged)
        pair.primary.kill()
        pair.standby.promote()
        while len(appender.acknowledged) < acknowledged_before + 40:
            assert thread.is_alive(), appender.foreign
            time.sleep(0.05)
        appender.stop.set()
        thread.join(120)
        assert not thread.is_alive() and not appender.foreign, appender.foreign
        # The reader resumes from its last record on the new primary.
        while True:
            try:
                last = _tail(reader, last, seen)
                break
            except EventStoreError:  # its pooled connections went with the primary
                time.sleep(0.1)
    finally:
        reader.close()
    _check_new_primary(pair, appender, seen)


def _check_new_primary(pair: Pair, appender: Appender, seen: list[FeedRecord]) -> None:
    with eventstore.open(pair.url(pair.standby)) as promoted:
        feed = list(promoted.read_all())
        assert seen == feed, "the reader skipped or repeated across the failover"
        stored: dict[str, list[ev.Event]] = {f"x{n}": promoted.read(f"x{n}", 1) for n in range(7)}
    for instance_id, first, size in appender.acknowledged:
        events = stored[instance_id]
        assert [e.event_id for e in events[first - 1 : first - 1 + size]] == list(
            range(first, first + size)
        ), f"acknowledged append {instance_id} {first}+{size} is not on the new primary"
    counted: dict[str, Any] = {}
    for events in stored.values():
        assert [e.event_id for e in events] == list(range(1, len(events) + 1))
        for event in events:
            tag = json.loads(event.input)  # type: ignore[union-attr]
            counted.setdefault(tag["batch"], [0, tag["size"]])[0] += 1
    assert all(found == size for found, size in counted.values()), "a batch is half there"
    # The failover was felt, and only as the project's errors (never a driver's).
    assert appender.failures
    assert all(isinstance(e, EventStoreError) for e in appender.failures)
    assert not any("psycopg" in type(e).__module__ for e in appender.failures)
