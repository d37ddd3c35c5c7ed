"""The exporter's HTTP server bounds its connections (issue 15 item 14).

Real sockets against a real MetricsServer: idle clients hold no thread and
no handler slot, so a scrape is served while a hundred of them are open;
requests beyond the handler bound are answered 503 at once, as are
connections beyond the waiting room's bound; idle ones are closed after the
idle timeout, and closing the server leaves no thread or connection behind.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from eventstore import events as ev
from eventstore.metrics.exporter import FeedExporter, MetricsServer
from tests.conftest import StoreFactory

T0 = 1_795_000_000_000
DEADLINE = 60.0
IDLE = 100


@contextlib.contextmanager
def running(server: MetricsServer) -> Iterator[MetricsServer]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


def connect(server: MetricsServer) -> socket.socket:
    host, port = server.server_address[:2]
    sock = socket.create_connection((str(host), int(port)), timeout=60)
    return sock


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def scrape(server: MetricsServer) -> str:
    with urllib.request.urlopen(server.url, timeout=60) as response:
        assert response.status == 200
        return str(response.read().decode())


def exporter_of(store_factory: StoreFactory) -> FeedExporter:
    store = store_factory()
    store.append(
        "i",
        1,
        [ev.OrchestrationStarted(event_id=1, name="W", version="1", input="", timestamp_ms=T0)],
    )
    exporter = FeedExporter(store)
    exporter.poll()
    return exporter


def _scrape_when_free(server: MetricsServer) -> str:
    """Scrape until the slots the closed clients held are free (each try is a real scrape)."""
    for _ in range(1000):
        try:
            return scrape(server)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code != 503:
                raise
    raise AssertionError("the server never freed its slots")


def wait_until(what: str, condition: Callable[[], bool]) -> None:
    """Poll `condition` (a deadline fails the test; nothing asserts how long it took)."""
    end = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def still_open(sock: socket.socket) -> bool:
    """The server has neither answered nor closed `sock` (nothing to read yet)."""
    sock.setblocking(False)
    try:
        sock.recv(1)
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)
    return False


@pytest.mark.parametrize("backend_name", ["sqlite-file"], indirect=True)
def test_idle_clients_hold_no_thread_and_scrapes_go_on(store_factory: StoreFactory) -> None:
    exporter = exporter_of(store_factory)
    base = threading.active_count()
    server = MetricsServer(exporter, "127.0.0.1", 0, idle_timeout=600, max_connections=4)
    # The accept loop and the waiting room; handlers come and go with requests.
    own = 2
    with running(server):
        idle = [connect(server) for _ in range(IDLE)]
        try:
            assert threading.active_count() <= base + own
            # Many more idle clients than handler slots, and the scraper is served.
            for _ in range(3):
                text = scrape(server)
                assert 'duroxide_orchestration_starts_total{initiated_by="client"' in text
            assert threading.active_count() <= base + own + 4
            assert all(still_open(sock) for sock in idle)
        finally:
            for sock in idle:
                sock.close()
    # server_close ended the room and every handler: nothing outlives the server.
    assert threading.active_count() == base


@pytest.mark.parametrize("backend_name", ["sqlite-file"], indirect=True)
def test_busy_handlers_are_bounded_and_excess_requests_get_503(
    store_factory: StoreFactory,
) -> None:
    exporter = exporter_of(store_factory)
    base = threading.active_count()
    server = MetricsServer(exporter, "127.0.0.1", 0, idle_timeout=600, max_connections=4)
    with running(server):
        # Four clients that stall mid-request: each holds a handler (and its slot).
        stalled = [connect(server) for _ in range(4)]
        try:
            for sock in stalled:
                sock.sendall(b"GET /metr")
            wait_until("four busy handlers", lambda: threading.active_count() == base + 6)
            flood = [connect(server) for _ in range(IDLE)]
            try:
                for sock in flood:
                    sock.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
                answers = [read_all(sock) for sock in flood]
            finally:
                for sock in flood:
                    sock.close()
            assert all(a.startswith(b"HTTP/1.0 503") for a in answers), answers[:3]
            assert threading.active_count() <= base + 6
        finally:
            for sock in stalled:
                sock.close()
        # Slots come back when clients leave: a scrape is served again.
        text = _scrape_when_free(server)
        assert "duroxide_orchestration_starts_total" in text


@pytest.mark.parametrize("backend_name", ["sqlite-file"], indirect=True)
def test_the_waiting_room_is_bounded(store_factory: StoreFactory) -> None:
    exporter = exporter_of(store_factory)
    server = MetricsServer(exporter, "127.0.0.1", 0, idle_timeout=600, max_waiting=10)
    with running(server):
        idle = [connect(server) for _ in range(10)]
        try:
            # Accepted in order: the ten are waiting when the eleventh comes.
            with connect(server) as eleventh:
                assert read_all(eleventh).startswith(b"HTTP/1.0 503")
            assert all(still_open(sock) for sock in idle)
        finally:
            for sock in idle:
                sock.close()
        assert "duroxide_orchestration_starts_total" in _scrape_when_free(server)


@pytest.mark.parametrize("backend_name", ["sqlite-file"], indirect=True)
def test_closing_the_server_cuts_off_a_stalled_client(store_factory: StoreFactory) -> None:
    exporter = exporter_of(store_factory)
    base = threading.active_count()
    server = MetricsServer(exporter, "127.0.0.1", 0, idle_timeout=600)
    # `idle` connects first: the accept loop takes connections in order, so
    # once `stalled` has a handler, `idle` is in the waiting room. Connected
    # second it could still be in the listen backlog at shutdown, and closing
    # the listening socket resets it (ConnectionResetError, not a close).
    with running(server), connect(server) as idle, connect(server) as stalled:
        stalled.sendall(b"GET /metr")
        wait_until("a busy handler", lambda: threading.active_count() == base + 3)
        server.shutdown()
        server.server_close()
        # Neither the handler nor the waiting room holds its client any longer.
        assert read_all(stalled) == b""
        assert read_all(idle) == b""
        # The accept loop's thread ends just after shutdown() returns.
        wait_until("the server's threads to end", lambda: threading.active_count() == base)


@pytest.mark.parametrize("backend_name", ["sqlite-file"], indirect=True)
def test_idle_connections_are_closed_after_the_timeout(store_factory: StoreFactory) -> None:
    exporter = exporter_of(store_factory)
    server = MetricsServer(exporter, "127.0.0.1", 0, idle_timeout=0.2, max_connections=8)
    with running(server):
        idle = [connect(server) for _ in range(8)]
        try:
            # Each one sent nothing: the server closes it without an answer.
            assert [read_all(sock) for sock in idle] == [b""] * 8
        finally:
            for sock in idle:
                sock.close()
        # Their slots were freed before they closed: a scrape is served at once.
        assert "duroxide_orchestration_starts_total" in scrape(server)


@pytest.mark.parametrize("backend_name", ["sqlite-memory"], indirect=True)
def test_options_are_validated(store_factory: StoreFactory) -> None:
    exporter = FeedExporter(store_factory())
    with pytest.raises(ValueError, match="max_connections"):
        MetricsServer(exporter, "127.0.0.1", 0, max_connections=0)
    with pytest.raises(ValueError, match="idle_timeout"):
        MetricsServer(exporter, "127.0.0.1", 0, idle_timeout=0)
    with pytest.raises(ValueError, match="max_waiting"):
        MetricsServer(exporter, "127.0.0.1", 0, max_waiting=0)
