"""The exporter's HTTP server bounds its connections (issue 15 item 14).

Real sockets against a real MetricsServer: idle clients cannot grow the
thread count, connections beyond the bound are answered 503 at once, idle
ones are closed after the idle timeout, and a scrape still works throughout.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from eventstore import events as ev
from eventstore.metrics.exporter import FeedExporter, MetricsServer
from tests.conftest import StoreFactory

T0 = 1_795_000_000_000


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


@pytest.mark.parametrize("backend_name", ["sqlite-file"], indirect=True)
def test_idle_clients_cannot_grow_the_thread_count(store_factory: StoreFactory) -> None:
    exporter = exporter_of(store_factory)
    server = MetricsServer(exporter, "127.0.0.1", 0, idle_timeout=600, max_connections=4)
    base = threading.active_count()
    idle: list[socket.socket] = []
    try:
        with running(server):
            idle = [connect(server) for _ in range(4)]
            # The next client queues behind the four: its 503 proves they hold every slot.
            with connect(server) as fifth:
                assert read_all(fifth).startswith(b"HTTP/1.0 503")
            assert threading.active_count() <= base + 1 + 4
            flood = [connect(server) for _ in range(100)]
            try:
                answers = [read_all(sock) for sock in flood]
            finally:
                for sock in flood:
                    sock.close()
            assert all(a.startswith(b"HTTP/1.0 503") for a in answers)
            assert threading.active_count() <= base + 1 + 4
            for sock in idle:
                sock.close()
            idle = []
            # Slots come back when clients leave: a scrape is served again.
            text = _scrape_when_free(server)
            assert 'duroxide_orchestration_starts_total{initiated_by="client"' in text
    finally:
        for sock in idle:
            sock.close()


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
