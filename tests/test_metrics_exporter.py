"""The exporter as users run it: the installed `eventstore` script, a live database
another process keeps appending to, a real Prometheus server scraping it, SIGTERM.

Waits have deadlines (a stuck process fails the test) but nothing asserts how
long anything took.
"""

from __future__ import annotations

import gc
import http.server
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import StoreFactory

DEADLINE = 90.0
T0 = 1_795_000_000_000
LIVE = 40  # executions the writer appends while the exporter runs

T = TypeVar("T")


def require_binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed: run `sudo bash scripts/system-deps.sh`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def eventstore_script() -> str:
    found = shutil.which("eventstore", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("the eventstore console script is not installed next to the interpreter")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], deadline: float = DEADLINE) -> T:
    """Call probe until it returns something other than None (fails after `deadline`)."""
    end = time.monotonic() + deadline
    last_error = "none"
    while time.monotonic() < end:
        try:
            found = probe()
        except OSError as exc:  # not listening yet, connection refused, 503 ...
            if isinstance(exc, urllib.error.HTTPError):
                exc.close()  # it holds the response's socket
            # Its text only: the exception itself would hold this frame through
            # its traceback, a cycle that frees the response only at some later
            # garbage collection (an "unclosed socket" in whichever test runs then).
            last_error = repr(exc)
            found = None
        if found is not None:
            return found
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what} (last error: {last_error})")


class Exporter:
    """`eventstore metrics serve` as a subprocess, its stderr read by a thread."""

    def __init__(self, target: Path, *extra: str) -> None:
        self.process = subprocess.Popen(
            [
                eventstore_script(),
                "metrics",
                "serve",
                str(target),
                "--port",
                "0",
                "--interval",
                "100ms",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.url = wait_for("the exporter to listen", self._url)

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)
            self.lines.put(line)

    def _url(self) -> str | None:
        if self.process.poll() is not None:
            pytest.fail(f"the exporter exited: {''.join(self.stderr)}")
        try:
            line = self.lines.get(timeout=0.5)
        except queue.Empty:
            return None
        marker = "serving metrics on "
        return line.split(marker, 1)[1].strip() if marker in line else None

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with urllib.request.urlopen(self.url, timeout=10) as response:
            text = response.read().decode()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail("the exporter did not stop on SIGTERM")


@pytest.fixture
def exporter_factory() -> Iterator[Callable[..., Exporter]]:
    started: list[Exporter] = []

    def make(target: Path, *extra: str) -> Exporter:
        exporter = Exporter(target, *extra)
        started.append(exporter)
        return exporter

    yield make
    for exporter in started:
        if exporter.process.poll() is None:
            exporter.process.kill()
            exporter.process.wait()
        # The reader thread ends at EOF once the process is gone; then the
        # pipe is closed here rather than leaked to the garbage collector.
        exporter.reader.join(timeout=30)
        if exporter.process.stderr is not None:
            exporter.process.stderr.close()


def sample(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


WRITER = textwrap.dedent(
    """
    import sqlite3, sys, time
    import eventstore
    from eventstore import events as ev

    path, count, t0 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with eventstore.open(path) as store:
        for i in range(count):
            iid, start = f"live-{i}", t0 + i * 10_000
            store.append(iid, 1, [
                ev.OrchestrationStarted(event_id=1, name="Live", version="1.0.0", input="null",
                                        timestamp_ms=start),
                ev.ActivityScheduled(event_id=2, name="Step", input="1", timestamp_ms=start + 5),
            ])
            time.sleep(0.01)
            store.append(iid, 1, [
                ev.ActivityCompleted(event_id=3, source_event_id=2, result="1",
                                     timestamp_ms=start + 5 + 7 * i),
            ], expected_last_event_id=2)
            if i == count // 2:
                con = sqlite3.connect(path)
                con.execute(
                    "INSERT INTO history (instance_id, execution_id, event_id, event_type,"
                    " event_data) VALUES ('broken', 1, 1, 'OrchestrationStarted', '{oops')"
                )
                con.commit()
                con.close()
            time.sleep(0.01)
            store.append(iid, 1, [
                ev.OrchestrationCompleted(event_id=4, output="1", timestamp_ms=start + 1000 + i),
            ], expected_last_event_id=3)
    """
)


def test_serve_tails_a_live_database_then_stops_on_sigterm(
    duroxide_db: Path, exporter_factory: Callable[..., Exporter]
) -> None:
    """A duroxide-created database, read-only, while another process appends."""
    exporter = exporter_factory(duroxide_db)
    first = exporter.scrape()
    assert sample(first, "eventstore_rows_decoded_total", generation="V1") == 154
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(duroxide_db), str(LIVE), str(T0)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = writer.communicate(timeout=120)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0, output

    orch = {"orchestration_name": "Live", "version": "1.0.0", "status": "success"}

    def caught_up() -> dict[Any, float] | None:
        samples = exporter.scrape()
        done = sample(samples, "duroxide_orchestration_duration_seconds_count", **orch)
        return samples if done == LIVE else None

    samples = wait_for("the exporter to read every appended event", caught_up)
    assert sample(samples, "duroxide_orchestration_duration_seconds_sum", **orch) == (
        pytest.approx(sum((1000 + i) / 1000 for i in range(LIVE)), rel=1e-12)
    )
    step = {"activity_name": "Step", "outcome": "success", "tag": ""}
    assert sample(samples, "duroxide_activity_duration_seconds_count", **step) == LIVE
    assert sample(samples, "duroxide_activity_duration_seconds_sum", **step) == pytest.approx(
        sum(7 * i / 1000 for i in range(LIVE)), rel=1e-12, abs=1e-12
    )
    starts = {"orchestration_name": "Live", "version": "1.0.0", "initiated_by": "client"}
    assert sample(samples, "duroxide_orchestration_starts_total", **starts) == LIVE
    assert sample(samples, "eventstore_rows_decoded_total", generation="V1") == 154 + 4 * LIVE
    assert sample(samples, "eventstore_decode_errors_total") == 1
    assert sample(samples, "eventstore_metrics_open_executions") == 0
    assert sample(samples, "eventstore_exporter_rows_read_total") == 154 + 4 * LIVE + 1

    assert exporter.stop() == 0
    log = "".join(exporter.stderr)
    assert "'broken'" in log and "undecodable" in log
    assert "stopped" in log
    assert "Traceback" not in log


def test_sigterm_during_idle_wait_exits_zero(
    tmp_path: Path, exporter_factory: Callable[..., Exporter]
) -> None:
    import eventstore

    target = tmp_path / "empty.db"
    eventstore.open(str(target)).close()
    exporter = exporter_factory(target, "--interval", "1m")
    assert sample(exporter.scrape(), "eventstore_exporter_feed_position") == 0
    assert exporter.stop() == 0


def test_serve_refuses_a_busy_port_clearly(
    tmp_path: Path, exporter_factory: Callable[..., Exporter]
) -> None:
    import eventstore

    target = tmp_path / "s.db"
    eventstore.open(str(target)).close()
    first = exporter_factory(target)
    port = urllib.parse.urlsplit(first.url).port
    second = subprocess.run(
        [eventstore_script(), "metrics", "serve", str(target), "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    assert "cannot listen on 127.0.0.1" in second.stderr
    assert "Traceback" not in second.stderr
    assert first.stop() == 0


def test_prometheus_scrapes_the_exporter(
    duroxide_db: Path, tmp_path: Path, exporter_factory: Callable[..., Exporter]
) -> None:
    prometheus = require_binary("prometheus")
    exporter = exporter_factory(duroxide_db)
    target = urllib.parse.urlsplit(exporter.url).netloc
    config = tmp_path / "prometheus.yml"
    config.write_text(
        textwrap.dedent(
            f"""
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
            scrape_configs:
              - job_name: eventstore
                static_configs:
                  - targets: ["{target}"]
            """
        )
    )
    port = free_port()
    server = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def query(promql: str) -> list[dict[str, Any]] | None:
            if server.poll() is not None:
                pytest.fail(f"prometheus exited: {server.stderr.read() if server.stderr else ''}")
            url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode(
                {"query": promql}
            )
            with urllib.request.urlopen(url, timeout=10) as response:
                answer = json.load(response)
            assert answer["status"] == "success", answer
            result: list[dict[str, Any]] = answer["data"]["result"]
            return result or None

        count = wait_for(
            "prometheus to scrape the orchestration histogram",
            lambda: query("sum(duroxide_orchestration_duration_seconds_count)"),
        )
        assert float(count[0]["value"][1]) == 26
        by_status = query("sum by (status) (duroxide_orchestration_duration_seconds_count)")
        assert by_status is not None
        # The fixture: 16 executions completed, 4 failed (2 cancelled), 6 continued as new.
        assert {r["metric"]["status"]: float(r["value"][1]) for r in by_status} == {
            "success": 16,
            "failed": 4,
            "continuedAsNew": 6,
        }
        quantile = query(
            "histogram_quantile(0.5, sum by (le) (duroxide_activity_duration_seconds_bucket))"
        )
        assert quantile is not None
        assert 0 < float(quantile[0]["value"][1]) <= 300
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stderr is not None:
            server.stderr.close()
    assert exporter.stop() == 0


def test_serve_loop_on_every_backend(store_factory: StoreFactory) -> None:
    """The serving loop in process, on each backend (PostgreSQL wakes on LISTEN/NOTIFY)."""
    from eventstore import events as ev
    from eventstore.metrics.exporter import (
        FeedExporter,
        MetricsServer,
        PollResult,
        backend_waiter,
        serve,
    )

    store = store_factory()
    store.append(
        "w-0",
        1,
        [ev.OrchestrationStarted(event_id=1, name="W", version="1", input="", timestamp_ms=T0)],
    )
    exporter = FeedExporter(store)
    stop = threading.Event()
    ready: queue.Queue[str] = queue.Queue()

    def on_ready(server: MetricsServer, first: PollResult, seconds: float) -> None:
        assert first.rows == 1
        ready.put(server.url)

    thread = threading.Thread(
        target=serve,
        kwargs={
            "exporter": exporter,
            "port": 0,
            "interval": 0.05,
            "stop": stop,
            "on_ready": on_ready,
            "wait": backend_waiter(store),
        },
        daemon=True,
    )
    thread.start()
    try:
        url = ready.get(timeout=DEADLINE)
        assert url.startswith("http://127.0.0.1:")
        for i in range(1, 6):
            store.append(
                f"w-{i}",
                1,
                [
                    ev.OrchestrationStarted(
                        event_id=1, name="W", version="1", input="", timestamp_ms=T0
                    ),
                    ev.OrchestrationCompleted(event_id=2, output="", timestamp_ms=T0 + 250 * i),
                ],
            )

        def scraped() -> str | None:
            with urllib.request.urlopen(url, timeout=10) as response:
                text: str = response.read().decode()
            want = (
                'duroxide_orchestration_duration_seconds_count{orchestration_name="W",'
                'status="success",version="1"} 5.0'
            )
            return text if want in text else None

        text = wait_for("the served metrics to include the new executions", scraped)
        assert (
            'duroxide_orchestration_duration_seconds_sum{orchestration_name="W",'
            'status="success",version="1"} 3.75'
        ) in text
        assert "eventstore_metrics_open_executions 1.0" in text  # w-0 is still running
    finally:
        stop.set()
        thread.join(timeout=DEADLINE)
    assert not thread.is_alive()


def test_wait_for_leaves_no_response_of_a_failed_probe_behind() -> None:
    """Prometheus answers 503 while it starts: those answers are closed at once.

    Once wait_for kept each failed probe's HTTPError, unclosed, in a cycle with
    its own frame; the socket was freed by a later garbage collection, so
    another test (the serving loop's, next in this file) failed now and then
    with "unclosed socket". Here the collection is forced.
    """
    answers = iter([503, 503, 200])

    class Starting(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(next(answers))
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"ok\n")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Starting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"

    def probe() -> bytes:
        with urllib.request.urlopen(url, timeout=10) as response:
            return bytes(response.read())

    try:
        assert wait_for("the server to be ready", probe) == b"ok\n"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=DEADLINE)
    # A response left unclosed in a cycle would be finalized here, and its
    # ResourceWarning (warnings are errors) would fail this test.
    gc.collect()
