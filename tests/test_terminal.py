"""The terminal as a person uses it: `show` (pairings, durations, every execution,
following a running one), `tail`, hostile data in the terminal, the exporter's
`/healthz` and its feed lag."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import eventstore
from eventstore import events as ev
from eventstore.cli import main
from eventstore.metrics.exporter import FeedExporter, MetricsServer
from tests.conftest import V0A_JSONL
from tests.test_metrics_exporter import eventstore_script

T0 = 1_795_000_000_000
HOSTILE = "[red]boom[/red] [/] [b]x"


def started(event_id: int = 1, t: int = T0, name: str = "Order", payload: str = '"in"') -> ev.Event:
    return ev.OrchestrationStarted(
        event_id=event_id, name=name, version="1.0.0", input=payload, timestamp_ms=t
    )


def paired_history() -> list[ev.Event]:
    return [
        started(),
        ev.ActivityScheduled(event_id=2, name="Charge", input=HOSTILE, timestamp_ms=T0 + 5),
        ev.TimerCreated(event_id=3, fire_at_ms=T0 + 2000, timestamp_ms=T0 + 6),
        ev.ActivityCompleted(event_id=4, source_event_id=2, result='"ok"', timestamp_ms=T0 + 1255),
        ev.TimerFired(event_id=5, source_event_id=3, fire_at_ms=T0 + 2000, timestamp_ms=T0 + 2006),
        ev.OrchestrationCompleted(event_id=6, output='"done"', timestamp_ms=T0 + 2010),
    ]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def paired_db(tmp_path: Path) -> Path:
    path = tmp_path / "s.db"
    with eventstore.open(str(path)) as store:
        store.append("order-1", 1, paired_history())
    return path


def test_show_pairs_completions_with_their_scheduling_events(
    runner: CliRunner, paired_db: Path
) -> None:
    result = runner.invoke(main, ["show", str(paired_db), "order-1", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["event_id"]: r for r in json.loads(result.output)}
    assert rows[4]["source_event_id"] == 2
    assert rows[4]["source_event_type"] == "ActivityScheduled"
    assert rows[4]["duration_ms"] == 1250
    assert rows[5]["source_event_type"] == "TimerCreated" and rows[5]["duration_ms"] == 2000
    assert rows[2]["duration_ms"] is None and rows[2]["source_event_id"] is None
    table = runner.invoke(main, ["show", str(paired_db), "order-1"])
    assert table.exit_code == 0, table.output
    assert "of 2, 1.250s" in table.output and "of 3, 2.000s" in table.output


def test_show_prints_hostile_data_as_written(runner: CliRunner, paired_db: Path) -> None:
    """Event data is never read as rich markup: `[red]` is neither styled nor
    eaten, and a stray `[/]` does not fail the command."""
    with eventstore.open(str(paired_db)) as store:
        store.append(HOSTILE, 1, [started(payload=json.dumps(HOSTILE))])
    shown = runner.invoke(main, ["show", str(paired_db), "order-1"], terminal_width=400)
    assert shown.exit_code == 0, shown.output
    assert "Charge([red]boom[/red] [/] [b]x)" in shown.output
    listed = runner.invoke(main, ["ls", str(paired_db)], terminal_width=400)
    assert listed.exit_code == 0, listed.output
    assert HOSTILE in listed.output
    titled = runner.invoke(main, ["show", str(paired_db), HOSTILE], terminal_width=400)
    assert titled.exit_code == 0, titled.output
    assert f"{HOSTILE} execution 1" in titled.output


def test_show_on_a_terminal_styles_nothing_from_the_data(paired_db: Path) -> None:
    """Through a real pseudo-terminal (colours on), the data still reads as written."""
    import pty

    parent, child = pty.openpty()
    env = {**os.environ, "COLUMNS": "400", "TERM": "xterm-256color"}
    process = subprocess.Popen(
        [eventstore_script(), "show", str(paired_db), "order-1"],
        stdin=child,
        stdout=child,
        stderr=child,
        env=env,
    )
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(parent, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(parent)
    assert process.wait(timeout=60) == 0
    text = b"".join(chunks).decode()
    assert "[red]boom[/red] [/] [b]x" in text
    assert "\x1b[31mboom" not in text  # red never switched on for the data


def test_legacy_events_say_no_time_never_1970(runner: CliRunner, tmp_path: Path) -> None:
    target = str(tmp_path / "legacy.db")
    assert runner.invoke(main, ["import", target, str(V0A_JSONL)]).exit_code == 0
    with eventstore.open(target) as store:
        instance = next(s.instance_id for s in store.summaries() if s.events > 2)
    table = runner.invoke(main, ["show", target, instance], terminal_width=300)
    assert table.exit_code == 0, table.output
    assert "no time" in table.output and "1970" not in table.output
    rows = json.loads(runner.invoke(main, ["show", target, instance, "--json"]).output)
    completions = [r for r in rows if r["source_event_id"] is not None]
    assert completions, rows
    for row in completions:
        assert row["duration_ms"] is None and row["duration_unavailable"] == "no time"
        assert row["time"] is None


def test_show_all_executions(runner: CliRunner, duroxide_db: Path) -> None:
    result = runner.invoke(
        main, ["show", str(duroxide_db), "looper-7-0", "--all-executions", "--json"]
    )
    assert result.exit_code == 0, result.output
    timelines = json.loads(result.output)
    assert [t["execution_id"] for t in timelines] == [1, 2, 3, 4]
    with eventstore.open(str(duroxide_db), readonly=True) as store:
        for t in timelines:
            stored = store.read("looper-7-0", t["execution_id"])
            assert [r["event_id"] for r in t["timeline"]] == [e.event_id for e in stored]
    table = runner.invoke(main, ["show", str(duroxide_db), "looper-7-0", "--all-executions"])
    assert all(f"looper-7-0 execution {n}" in table.output for n in (1, 2, 3, 4))
    both = runner.invoke(
        main, ["show", str(duroxide_db), "looper-7-0", "--all-executions", "--follow"]
    )
    assert both.exit_code == 2 and "--all-executions takes neither" in both.output


class Lines:
    """A subprocess's stdout read line by line on a thread (waits have deadlines)."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [eventstore_script(), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, count: int, deadline: float = 60.0) -> list[str]:
        end = time.monotonic() + deadline
        while len(self.lines) < count and time.monotonic() < end:
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        assert len(self.lines) >= count, (self.lines, self.stderr_text())
        return self.lines

    def stderr_text(self) -> str:
        if self.process.poll() is None:
            return ""
        assert self.process.stderr is not None
        return self.process.stderr.read()

    def finish(self, deadline: float = 60.0) -> tuple[int, str]:
        code = self.process.wait(timeout=deadline)
        self._reader.join(timeout=deadline)
        assert self.process.stdout is not None and self.process.stderr is not None
        stderr = self.process.stderr.read()
        self.process.stdout.close()
        self.process.stderr.close()
        return code, stderr


@pytest.fixture
def spawned() -> Iterator[list[Lines]]:
    started_: list[Lines] = []
    yield started_
    for lines in started_:
        if lines.process.poll() is None:
            lines.process.kill()
            lines.finish()


def test_show_follow_prints_a_running_execution_until_it_ends(
    tmp_path: Path, spawned: list[Lines]
) -> None:
    path = tmp_path / "s.db"
    history = paired_history()
    with eventstore.open(str(path)) as store:
        store.append("order-1", 1, history[:2])
        follow = Lines("show", str(path), "order-1", "--follow", "--json", "--interval", "20ms")
        spawned.append(follow)
        assert [json.loads(x)["event_id"] for x in follow.wait_for(2)] == [1, 2]
        store.append("order-1", 1, history[2:4], expected_last_event_id=2)
        rows = [json.loads(x) for x in follow.wait_for(4)]
        assert rows[3]["source_event_id"] == 2 and rows[3]["duration_ms"] == 1250
        store.append("order-1", 1, history[4:], expected_last_event_id=4)
    code, stderr = follow.finish()
    assert code == 0, stderr
    assert [json.loads(x)["event_id"] for x in follow.lines] == [1, 2, 3, 4, 5, 6]


def test_show_follow_goes_on_into_the_execution_it_continues_as(
    tmp_path: Path, spawned: list[Lines]
) -> None:
    path = tmp_path / "s.db"
    with eventstore.open(str(path)) as store:
        store.append("loop", 1, [started()])
        follow = Lines("show", str(path), "loop", "--follow", "--interval", "20ms")
        spawned.append(follow)
        follow.wait_for(1)
        store.append(
            "loop",
            1,
            [ev.OrchestrationContinuedAsNew(event_id=2, input="1", timestamp_ms=T0 + 1)],
            expected_last_event_id=1,
        )
        store.append("loop", 2, [started(t=T0 + 2, payload="1")])
        store.append(
            "loop",
            2,
            [ev.OrchestrationCompleted(event_id=2, output="2", timestamp_ms=T0 + 3)],
            expected_last_event_id=1,
        )
    code, stderr = follow.finish()
    assert code == 0, stderr
    text = "".join(follow.lines)
    assert "loop execution 1" in text and "loop execution 2" in text
    assert "OrchestrationCompleted" in text


def test_ctrl_c_ends_a_follow_without_a_traceback(tmp_path: Path, spawned: list[Lines]) -> None:
    path = tmp_path / "s.db"
    with eventstore.open(str(path)) as store:
        store.append("order-1", 1, paired_history()[:2])
    follow = Lines("show", str(path), "order-1", "--follow", "--interval", "20ms")
    tail = Lines("tail", str(path), "--interval", "20ms")
    spawned.extend([follow, tail])
    follow.wait_for(1)
    tail.wait_for(2)
    for lines in (follow, tail):
        lines.process.send_signal(signal.SIGINT)
        code, stderr = lines.finish()
        assert code == 130
        assert "Traceback" not in stderr and "Aborted" not in stderr


def test_tail_prints_the_feed_and_follows_it(
    tmp_path: Path, duroxide_db: Path, spawned: list[Lines], runner: CliRunner
) -> None:
    def tail_positions(*args: str) -> list[int]:
        result = runner.invoke(main, ["tail", str(duroxide_db), "--no-follow", "--json", *args])
        assert result.exit_code == 0, result.output
        return [json.loads(line)["position"] for line in result.output.splitlines()]

    positions = tail_positions("--from-start")
    assert len(positions) == 154
    assert positions == sorted(positions) and len(set(positions)) == 154
    # As tail(1): the last 10 by default, -n to choose, then (here not) follow.
    assert tail_positions() == positions[-10:]
    assert tail_positions("-n", "3") == tail_positions("--lines", "3") == positions[-3:]
    assert tail_positions("-n", "0") == []
    assert tail_positions("-n", "500") == positions
    assert tail_positions("--after", str(positions[99])) == positions[100:]
    both = runner.invoke(main, ["tail", str(duroxide_db), "-n", "3", "--from-start"])
    assert both.exit_code == 2 and "choose one of -n/--lines, --after and --from-start" in (
        both.output
    )

    path = tmp_path / "s.db"
    history = paired_history()
    with eventstore.open(str(path)) as store:
        store.append("order-1", 1, history[:3])
        tail = Lines("tail", str(path), "--json", "--interval", "20ms", "-n", "2")
        spawned.append(tail)
        assert [json.loads(x)["event_id"] for x in tail.wait_for(2)] == [2, 3]
        store.append("order-1", 1, history[3:], expected_last_event_id=3)
        rows = [json.loads(x) for x in tail.wait_for(5)]
    assert [r["event_id"] for r in rows] == [2, 3, 4, 5, 6]
    assert rows[0]["event"]["input"] == HOSTILE
    tail.process.send_signal(signal.SIGINT)
    assert tail.finish()[0] == 130


def test_tail_names_a_row_that_does_not_decode_and_goes_on(
    runner: CliRunner, tmp_path: Path
) -> None:
    import sqlite3

    path = tmp_path / "s.db"
    with eventstore.open(str(path)) as store:
        store.append("a", 1, [started()])
    con = sqlite3.connect(path)
    with con:
        con.execute(
            "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
            " VALUES ('broken', 1, 1, 'OrchestrationStarted', '{oops')"
        )
    con.close()
    with eventstore.open(str(path)) as store:
        store.append("b", 1, [started()])
    result = runner.invoke(main, ["tail", str(path), "--no-follow"], terminal_width=300)
    assert result.exit_code == 0, result.output
    assert "'broken'" in result.output and "skipping undecodable row" in result.output
    assert "a #1/1" in result.output and "b #1/1" in result.output


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.load(exc)


def test_the_exporter_answers_healthz(paired_db: Path) -> None:
    with eventstore.open(str(paired_db), readonly=True) as store:
        exporter = FeedExporter(store)
        exporter.poll()
        server = MetricsServer(exporter, "127.0.0.1", 0)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = server.url.replace("/metrics", "/healthz")
            status, body = _get(url)
            assert status == 200
            assert body["status"] == "ok" and body["position"] == exporter.position > 0
            assert body["feed_lag_seconds"] == 0
            exporter.last_error = "database is locked"
            status, body = _get(url)
            assert status == 503
            assert body == {**body, "status": "failing", "error": "database is locked"}
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)


def test_feed_lag_grows_while_paging_a_backlog_and_is_zero_when_caught_up(
    tmp_path: Path,
) -> None:
    now = [100.0]
    path = tmp_path / "s.db"
    with eventstore.open(str(path)) as writer:
        for n in range(5):
            writer.append(f"i{n}", 1, [started()])
        with eventstore.open(str(path), readonly=True) as store:
            exporter = FeedExporter(store, page=2, clock=lambda: now[0])
            assert exporter.lag.seconds() == 0
            exporter._next_page()  # 2 of 5 rows: behind since this read began
            now[0] = 103.0
            assert exporter.lag.seconds() == 3.0
            exporter._next_page()
            now[0] = 104.5
            assert exporter.lag.seconds() == 4.5
            exporter._next_page()  # the fifth row, a short page: at the end
            assert exporter.lag.seconds() == 0
            last_head = now[0]
            now[0] = 110.0
            exporter.poll()  # nothing new: still caught up
            assert exporter.lag.seconds() == 0
            for n in range(5, 9):
                writer.append(f"i{n}", 1, [started()])
            now[0] = 120.0
            last_head = 110.0  # the empty poll above reached the end at 110
            exporter._next_page()  # rows committed since the last read at the end
            assert exporter.lag.seconds() == 120.0 - last_head
            exporter.poll()
            assert exporter.lag.seconds() == 0
            exporter.lag.hold_back(7.5)  # a reader withholding rows (PostgreSQL)
            assert exporter.lag.seconds() == 7.5
            text = exporter.exposition().decode()
            assert "eventstore_feed_lag_seconds 7.5" in text


def test_the_feed_lag_takes_in_what_postgresql_holds_back(postgres_target_factory: Any) -> None:
    """An event committed behind a transaction still open is held back by the
    feed; the exporter's lag is at least its age, and 0 once it is released."""
    import psycopg

    target = postgres_target_factory()
    with eventstore.open(target) as writer:
        writer.append("first", 1, [started()])
        with eventstore.open(target, readonly=True) as store:
            exporter = FeedExporter(store)
            exporter.poll()
            assert exporter.lag.seconds() == 0
            blocker = psycopg.connect(target.split("?")[0], autocommit=False)
            try:
                # An open transaction that took a transaction id before the
                # next append: the feed holds that append back behind it.
                blocker.execute("SELECT txid_current()")
                writer.append("second", 1, [started()])
                time.sleep(1.2)
                exporter.poll()
                held, age = store.feed_held_back()
                assert held == 1 and age is not None
                assert exporter.lag.seconds() >= min(age, 1.0)
            finally:
                blocker.rollback()
                blocker.close()
            exporter.poll()
            assert exporter.lag.seconds() == 0
